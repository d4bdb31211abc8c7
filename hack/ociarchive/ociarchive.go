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

// Package ociarchive writes a multi-platform image (an image index) as a tarball of an OCI image layout, and reads
// it back: the image archive of a release. `ctr images import` reads it (the install test imports it into the
// local cluster's containerd), and so does hack/push, which pushes it to a registry unchanged (same digests).
//
// The layout's index.json holds one descriptor, of the image index, named by two annotations: the full reference
// in containerd's io.containerd.image.name (which ctr reads), the tag in the OCI spec's
// org.opencontainers.image.ref.name (as BuildKit writes them).
package ociarchive

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

const (
	// NameAnnotation holds the image's full reference (containerd's importer reads it).
	NameAnnotation = "io.containerd.image.name"
	// RefNameAnnotation holds the tag (the OCI image layout's annotation).
	RefNameAnnotation = "org.opencontainers.image.ref.name"
)

// Write writes idx, named ref, as an OCI layout tarball at path (through a temporary file beside it, so that an
// interrupted write leaves no truncated archive). Entries are sorted and dated mtime, owned by root: the same
// index gives the same bytes.
func Write(path string, ref name.Tag, idx v1.ImageIndex, mtime time.Time) error {
	dir, err := os.MkdirTemp("", "ociarchive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		NameAnnotation:    ref.Name(),
		RefNameAnnotation: ref.TagStr(),
	})); err != nil {
		return fmt.Errorf("write the image index into the OCI layout: %w", err)
	}
	partial := path + ".tmp"
	if err := tarDir(dir, partial, mtime); err != nil {
		os.Remove(partial)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(partial, path)
}

// tarDir writes the regular files and directories under dir into a tarball at out, in lexical order.
func tarDir(dir, out string, mtime time.Time) error {
	var paths []string
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return err
	}); err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
		default:
			return fmt.Errorf("%s: neither a file nor a directory", p)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(tw, p); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// Archive is an OCI layout tarball unpacked into a temporary directory, which Close removes.
type Archive struct {
	// Index is the image index index.json names; Ref its name (NameAnnotation).
	Index v1.ImageIndex
	Ref   name.Tag
	dir   string
}

// Open unpacks the OCI layout tarball at path and finds its one named image index.
func Open(path string) (*Archive, error) {
	dir, err := os.MkdirTemp("", "ociarchive-")
	if err != nil {
		return nil, err
	}
	a := &Archive{dir: dir}
	if err := a.open(path); err != nil {
		a.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

func (a *Archive) open(path string) error {
	if err := untar(path, a.dir); err != nil {
		return err
	}
	p, err := layout.FromPath(a.dir)
	if err != nil {
		return fmt.Errorf("not an OCI image layout: %w", err)
	}
	outer, err := p.ImageIndex()
	if err != nil {
		return err
	}
	m, err := outer.IndexManifest()
	if err != nil {
		return err
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return fmt.Errorf("index.json lists %d manifests, want one image index", len(m.Manifests))
	}
	desc := m.Manifests[0]
	if a.Ref, err = name.NewTag(desc.Annotations[NameAnnotation]); err != nil {
		return fmt.Errorf("the image index's %s annotation: %w", NameAnnotation, err)
	}
	a.Index, err = outer.ImageIndex(desc.Digest)
	return err
}

// Close removes the unpacked layout.
func (a *Archive) Close() error { return os.RemoveAll(a.dir) }

// untar unpacks the regular files and directories of an OCI layout tarball into dir, refusing any other entry
// and any path that leaves dir.
func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		clean := filepath.Clean(filepath.FromSlash(hdr.Name))
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			return fmt.Errorf("entry %q leaves the archive", hdr.Name)
		}
		target := filepath.Join(dir, clean)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q is neither a file nor a directory", hdr.Name)
		}
	}
}

func writeFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
