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

// Command image builds Go commands as static binaries and writes them, one layer, into an image tarball that
// `ctr images import` (and `docker load`) read. No Docker daemon, no registry, no base image: the binaries are all
// the image holds.
//
//	go run ./hack/image -o bin/xdpgen-image.tar -tag ghcr.io/xdpgen/xdpgen:dev manager=./cmd/manager agent=./cmd/agent
//
// Each NAME=PACKAGE becomes /NAME in the image; the first one is the entrypoint unless -entrypoint says otherwise.
// By default the image is for this machine's architecture, written as a docker-archive tarball (what the local
// cluster imports). With -format oci and one -platform per architecture (cross-compiled), it is an image index
// over all of them, written as an OCI layout tarball (hack/ociarchive): the release's archive, which
// hack/push pushes.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xdpgen/xdpgen/hack/ociarchive"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type binary struct{ name, pkg string }

// platforms is the repeatable -platform flag.
type platforms []v1.Platform

func (p *platforms) String() string { return fmt.Sprint(*p) }

func (p *platforms) Set(s string) error {
	pl, err := v1.ParsePlatform(s)
	if err != nil || pl.OS != "linux" || pl.Architecture == "" {
		return fmt.Errorf("want linux/ARCH, such as linux/arm64")
	}
	// The variant Go builds for (GOARM64 v8.0), as registries and runtimes name arm64 images.
	if pl.Architecture == "arm64" && pl.Variant == "" {
		pl.Variant = "v8"
	}
	*p = append(*p, *pl)
	return nil
}

func run() error {
	var out, tag, entrypoint, ldflags, format string
	var plats platforms
	flag.StringVar(&out, "o", "", "Image tarball to write.")
	flag.StringVar(&tag, "tag", "", "Image reference, such as ghcr.io/xdpgen/xdpgen:dev.")
	flag.StringVar(&entrypoint, "entrypoint", "", "Entrypoint (default: the first binary).")
	flag.StringVar(&ldflags, "ldflags", "", "Linker flags for every binary, after -s -w, such as the -X flags that stamp the version.")
	flag.Var(&plats, "platform", "linux/ARCH to build for; repeat it for more than one (-format oci). Default: linux/"+runtime.GOARCH+".")
	flag.StringVar(&format, "format", "docker", "docker: a docker-archive tarball of one platform; oci: an OCI layout tarball of an image index.")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: image -o OUT.tar -tag REF [-format docker|oci] [-platform linux/ARCH]... [-entrypoint /NAME] [-ldflags FLAGS] NAME=PACKAGE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if out == "" || tag == "" || flag.NArg() == 0 {
		flag.Usage()
		return fmt.Errorf("-o, -tag and at least one NAME=PACKAGE are required")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", tag, err)
	}
	if len(plats) == 0 {
		_ = plats.Set("linux/" + runtime.GOARCH)
	}
	switch {
	case format != "docker" && format != "oci":
		return fmt.Errorf("-format %q: want docker or oci", format)
	case format == "docker" && len(plats) > 1:
		return fmt.Errorf("-format docker holds one platform, not %d: use -format oci for an image index", len(plats))
	}
	var bins []binary
	for _, arg := range flag.Args() {
		n, pkg, ok := strings.Cut(arg, "=")
		if !ok || n == "" || pkg == "" || strings.Contains(n, "/") {
			return fmt.Errorf("%q: want NAME=PACKAGE, such as manager=./cmd/manager", arg)
		}
		bins = append(bins, binary{n, pkg})
	}
	if entrypoint == "" {
		entrypoint = "/" + bins[0].name
	}

	tmp, err := os.MkdirTemp("", "xdpgen-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var img v1.Image
	for _, pl := range plats {
		if img, err = imageFor(pl, bins, entrypoint, ldflags, filepath.Join(tmp, pl.Architecture)); err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	var digest v1.Hash
	if format == "oci" {
		err = ociarchive.Write(out, ref, idx, epoch())
		digest, _ = idx.Digest()
	} else {
		// Write next to the target and rename, so an interrupted build never leaves a truncated image behind.
		partial := out + ".tmp"
		if err = tarball.WriteToFile(partial, ref, img); err != nil {
			os.Remove(partial)
		} else {
			err = os.Rename(partial, out)
		}
		digest, _ = img.Digest()
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fi, _ := os.Stat(out)
	fmt.Printf("image: wrote %s (%s, %s, %s, %.1f MB)\n", out, ref, plats, digest, float64(fi.Size())/1e6)
	return nil
}

// imageFor builds the binaries for a platform in dir and makes the image of them.
func imageFor(pl v1.Platform, bins []binary, entrypoint, ldflags, dir string) (v1.Image, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, b := range bins {
		path := filepath.Join(dir, b.name)
		if err := build(b.pkg, path, pl.Architecture, ldflags); err != nil {
			return nil, err
		}
		files[b.name] = path
	}
	layer, err := layerOf(bins, files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = pl.OS, pl.Architecture, pl.Variant
	cfg.Created = v1.Time{Time: epoch()}
	cfg.Config.Entrypoint = []string{entrypoint}
	cfg.Config.Env = []string{"PATH=/"}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.source": "https://github.com/xdpgen/xdpgen"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	return img, nil
}

// build compiles pkg for linux/arch as a static binary (the image has no libc), without symbols, with the
// caller's ldflags after.
func build(pkg, out, arch, ldflags string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w "+ldflags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for linux/%s: %w", pkg, arch, err)
	}
	return nil
}

// layerOf puts each binary at /NAME, executable by anyone (the manager runs as a non-root user), with a fixed
// time so that the same binaries give the same layer.
func layerOf(bins []binary, files map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, b := range bins {
		data, err := os.ReadFile(files[b.name])
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: b.name, Mode: 0o755, Size: int64(len(data)), ModTime: epoch(), Typeflag: tar.TypeReg,
			Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// epoch is SOURCE_DATE_EPOCH when set (reproducible builds), else the Unix epoch.
func epoch() time.Time {
	var s int64
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		_, _ = fmt.Sscan(v, &s) // not a number: the Unix epoch, as when unset
	}
	return time.Unix(s, 0).UTC()
}
