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

package main

import (
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xdpgen/xdpgen/hack/ociarchive"
)

// TestPush pushes an archive of a two-platform index to a registry (go-containerregistry's, in process, over
// HTTP on 127.0.0.1): to the name the archive holds, and to another; each pulled back has the archive's digest,
// both platforms, and every blob.
func TestPush(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of this machine's
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.oci.tar")
	tag, err := name.NewTag(host + "/xdpgen/xdpgen:v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ociarchive.Write(archive, tag, idx, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ to, pulled string }{
		{"", host + "/xdpgen/xdpgen:v1.0.0"},
		{host + "/elsewhere/xdpgen:v1.0.0", host + "/elsewhere/xdpgen:v1.0.0"},
	} {
		if err := push(archive, c.to); err != nil {
			t.Fatalf("push to %q: %v", c.to, err)
		}
		ref, err := name.ParseReference(c.pulled)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", c.pulled, err)
		}
		if got, _ := pulled.Digest(); got != want {
			t.Errorf("%s: digest %s, want the archive's %s", c.pulled, got, want)
		}
		m, err := pulled.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var plats []string
		for _, d := range m.Manifests {
			plats = append(plats, d.Platform.String())
			img, err := pulled.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				rc, err := l.Compressed()
				if err != nil {
					t.Fatalf("%s %s: a layer: %v", c.pulled, d.Platform, err)
				}
				rc.Close()
			}
		}
		if strings.Join(plats, ",") != "linux/amd64,linux/arm64" {
			t.Errorf("%s: platforms %v, want linux/amd64, linux/arm64", c.pulled, plats)
		}
	}

	if err := push(archive, "not a reference"); err == nil || !strings.Contains(err.Error(), `destination "not a reference"`) {
		t.Errorf("push to a bad reference: %v, want it refused by name", err)
	}
}
