/*
Copyright 2026 The xdpgen Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command man writes the man pages of the xdpgen CLI and of the kubectl plugin, one per command (xdpgen.1,
// xdpgen-udp.1, ..., kubectl-xdpgen.1, kubectl-xdpgen-results.1), from their cobra commands.
//
//	go run ./hack/man -dir docs/man -date 2026-11-01
//
// The pages' date is a flag, not the time of the run, so that regenerating them changes them only when the
// commands changed (make verify-man).
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	plugin "github.com/xdpgen/xdpgen/cmd/kubectl-xdpgen/app"
	"github.com/xdpgen/xdpgen/cmd/xdpgen/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "man:", err)
		os.Exit(1)
	}
}

func run() error {
	var dir, date string
	flag.StringVar(&dir, "dir", "", "Directory to write the pages into.")
	flag.StringVar(&date, "date", "", "The pages' date, YYYY-MM-DD.")
	flag.Parse()
	if dir == "" || date == "" || flag.NArg() > 0 {
		flag.Usage()
		return fmt.Errorf("-dir and -date are required, and nothing else")
	}
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return fmt.Errorf("-date %q: want YYYY-MM-DD: %w", date, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pluginRoot := plugin.NewRootCommand()
	// kubectl's flags default the cache under the home folder of whoever runs this.
	if f := pluginRoot.PersistentFlags().Lookup("cache-dir"); f != nil {
		f.DefValue = "$HOME/.kube/cache"
	}
	for _, root := range []*cobra.Command{app.NewRootCommand(), pluginRoot} {
		root.DisableAutoGenTag = true // the tag holds the time of the run
		// cobra adds --version and the completion command only when it executes.
		root.InitDefaultVersionFlag()
		root.InitDefaultCompletionCmd()
		escapePlaceholders(root)
		header := &doc.GenManHeader{Section: "1", Date: &day, Source: "xdpgen", Manual: "xdpgen manual"}
		if err := doc.GenManTree(root, header, dir); err != nil {
			return err
		}
	}
	return nil
}

// placeholder is an argument's name in angle brackets, such as <ifname>.
var placeholder = regexp.MustCompile(`<([a-z][a-z-]*)>`)

// escapePlaceholders escapes the angle brackets of the placeholders in the texts cobra renders as Markdown, which
// would otherwise take "<ifname>" for an HTML tag and drop it from the page. Other brackets, such as the shell
// redirections in the completion command's help, are code.
func escapePlaceholders(cmd *cobra.Command) {
	escape := func(s string) string { return placeholder.ReplaceAllString(s, `\<$1\>`) }
	cmd.Use, cmd.Short, cmd.Long = escape(cmd.Use), escape(cmd.Short), escape(cmd.Long)
	for _, c := range cmd.Commands() {
		escapePlaceholders(c)
	}
}
