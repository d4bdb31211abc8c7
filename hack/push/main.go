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

// Command push pushes the image index of a release's OCI layout tarball (hack/image -format oci) to a registry,
// unchanged: the pushed index and its images have the digests of the archive's. Credentials come from the docker
// config (~/.docker/config.json, $DOCKER_CONFIG), as for docker and crane; a registry on localhost or a private
// address is spoken to over plain HTTP, as crane does.
//
//	go run ./hack/push dist/xdpgen-image.oci.tar                                 # to the name the archive holds
//	go run ./hack/push dist/xdpgen-image.oci.tar registry.example.com/xdpgen:v1  # to another
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xdpgen/xdpgen/hack/ociarchive"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: push ARCHIVE.tar [REF]")
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	to := ""
	if flag.NArg() == 2 {
		to = flag.Arg(1)
	}
	if err := push(flag.Arg(0), to); err != nil {
		fmt.Fprintln(os.Stderr, "push:", err)
		os.Exit(1)
	}
}

// push pushes the archive's image index to the reference to, or to the name the archive holds when to is empty.
func push(archive, to string) error {
	a, err := ociarchive.Open(archive)
	if err != nil {
		return err
	}
	defer a.Close()
	var ref name.Reference = a.Ref
	if to != "" {
		if ref, err = name.ParseReference(to); err != nil {
			return fmt.Errorf("destination %q: %w", to, err)
		}
	}
	digest, err := a.Index.Digest()
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(ref, a.Index, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("push %s to %s: %w", archive, ref, err)
	}
	fmt.Printf("push: %s@%s\n", ref, digest)
	return nil
}
