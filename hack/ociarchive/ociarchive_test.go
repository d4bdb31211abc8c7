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

package ociarchive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestWriteOpen writes an index of two images and reads it back: the same digest, the name, each image whole;
// writing it again gives the same bytes.
func TestWriteOpen(t *testing.T) {
	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := name.MustParseReference("registry.example.com/team/xdpgen:v1.2.3").(name.Tag)
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.tar"), filepath.Join(dir, "second.tar")
	mtime := time.Unix(1_700_000_000, 0)
	for _, p := range []string{first, second} {
		if err := Write(p, ref, idx, mtime); err != nil {
			t.Fatal(err)
		}
	}
	a, b := readFile(t, first), readFile(t, second)
	if !bytes.Equal(a, b) {
		t.Errorf("two writes of one index differ (%d and %d bytes)", len(a), len(b))
	}
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(mtime) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("entry %s: mtime %v uid %d gid %d, want %v, 0, 0", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, mtime)
		}
	}
	if len(names) < 3 || names[0] != "blobs/" || names[len(names)-2] != "index.json" || names[len(names)-1] != "oci-layout" {
		t.Errorf("entries %v: want blobs/..., index.json, oci-layout in lexical order", names)
	}

	arch, err := Open(first)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arch.Close() })
	if arch.Ref.String() != ref.String() {
		t.Errorf("name %s, want %s", arch.Ref, ref)
	}
	want, _ := idx.Digest()
	got, err := arch.Index.Digest()
	if err != nil || got != want {
		t.Errorf("index digest %s (%v), want %s", got, err, want)
	}
	m, err := arch.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		img, err := arch.Index.Image(d.Digest)
		if err != nil {
			t.Fatalf("image %s: %v", d.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("image %s: a layer: %v", d.Digest, err)
			}
			rc.Close()
		}
	}
}

// TestOpenRefuses: an archive entry outside the layout, and a layout with no named index, are refused by name.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "evil.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644})
	_ = tw.Close()
	if err := os.WriteFile(evil, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(evil); err == nil || !strings.Contains(err.Error(), `"../escape" leaves the archive`) {
		t.Errorf("Open of an entry outside: %v, want it refused", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Errorf("the entry was written outside")
	}

	// A layout whose index carries no name.
	idx, err := random.Index(256, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	unnamedDir := t.TempDir()
	p, err := layout.Write(unnamedDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	unnamed := filepath.Join(dir, "unnamed.tar")
	if err := tarDir(unnamedDir, unnamed, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(unnamed); err == nil || !strings.Contains(err.Error(), NameAnnotation) {
		t.Errorf("Open of an unnamed index: %v, want it refused for want of %s", err, NameAnnotation)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
