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

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/xdpgen/xdpgen/hack/ociarchive"
	"github.com/xdpgen/xdpgen/test/manifest"
)

const (
	// releaseVersion is what the test's release stamps: the image tag, the binaries' --version, the chart's
	// appVersion; the chart's version is it without the v.
	releaseVersion = "v0.0.0-e2e"
	releaseChart   = "xdpgen-0.0.0-e2e.tgz"
)

// TestInstallRelease makes a release and pushes it (`make push REGISTRY=...` into a folder of its own, to a
// registry in process: go-containerregistry's, on 127.0.0.1), checks its artifacts, imports its image archive
// (both architectures, one index) into every node, and installs xdpgen from those artifacts alone, in place of
// the kustomize installation of the other tests, the two ways the README's "Install a release" says:
//
//   - kubectl apply --server-side -f install.yaml (with the local cluster's changes of config/local, as an overlay:
//     image never pulled, API server on the host's 127.0.0.1): the manager and the agents run the release's image,
//     whose binaries say the release's version, and a run completes; kubectl delete removes it;
//   - helm install of the packaged chart (with hack/helm/local-cluster-values.yaml), then the upgrade of the
//     chart's README (the release's crds.yaml applied over Helm's, helm upgrade): the same, then helm uninstall.
//
// The artifacts: every file is in SHA256SUMS with its sum; the archive's index names the release's image (in the
// registry given) and holds linux/amd64 and linux/arm64 images of static binaries of that architecture with the
// BPF objects embedded; the registry serves that index, digest for digest; the CLI is there for both
// architectures; install.yaml and the chart name the release's image and version; crds.yaml holds the chart's
// CRDs; the chart carries its README; a second `make release` writes the same bytes.
func TestInstallRelease(t *testing.T) {
	e := requireCluster(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	registryPath := strings.TrimPrefix(reg.URL, "http://") + "/team"
	image := registryPath + "/xdpgen:" + releaseVersion
	dist := filepath.Join(t.TempDir(), "dist")
	start := time.Now()
	cmd := exec.Command("make", "-s", "-C", e.root, "push", "DIST="+dist, "VERSION="+releaseVersion, "REGISTRY="+registryPath)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir()) // none of this machine's credentials
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make push: %v\n%s", err, out)
	}
	t.Logf("make push (make release, then the push) in %.1f s", time.Since(start).Seconds())

	archive := filepath.Join(dist, "xdpgen-image.oci.tar")
	t.Run("artifacts", func(t *testing.T) {
		checkSums(t, dist)
		checkImageArchive(t, e.root, archive, image)
		checkPushed(t, archive, image)
		for _, arch := range []string{"amd64", "arm64"} {
			cli := readFile(t, filepath.Join(dist, "xdpgen-linux-"+arch))
			checkStaticELF(t, "xdpgen-linux-"+arch, cli, arch)
			checkEmbedsBPF(t, e.root, "xdpgen-linux-"+arch, cli)
		}
		checkImages(t, "install.yaml", string(readFile(t, filepath.Join(dist, "install.yaml"))), image)
		chart := e.helm(t, "template", "xdpgen", filepath.Join(dist, releaseChart))
		checkImages(t, releaseChart, chart, image)
		if readme := e.helm(t, "show", "readme", filepath.Join(dist, releaseChart)); !strings.Contains(readme, "`helm upgrade` does not upgrade the CRDs") {
			t.Errorf("helm show readme %s: want the chart's README with its upgrade path", releaseChart)
		}
		chartCRDs := byName(manifest.Decode(t, e.helm(t, "show", "crds", filepath.Join(dist, releaseChart))))
		if diff := cmp.Diff(chartCRDs, byName(manifest.DecodeFile(t, filepath.Join(dist, "crds.yaml")))); diff != "" || len(chartCRDs) != 3 {
			t.Errorf("crds.yaml differs from the chart's %d CRDs (-chart +crds.yaml):\n%s", len(chartCRDs), diff)
		}
		out, err := exec.Command(filepath.Join(dist, "xdpgen-linux-amd64"), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "xdpgen "+releaseVersion+" (commit ") {
			t.Errorf("xdpgen-linux-amd64 --version: %q (%v), want xdpgen %s (commit ...", out, err, releaseVersion)
		}
	})
	// As the README says: the same commit (and toolchain) gives the same bytes.
	t.Run("reproducible", func(t *testing.T) {
		again := filepath.Join(t.TempDir(), "dist")
		cmd := exec.Command("make", "-s", "-C", e.root, "release", "DIST="+again, "VERSION="+releaseVersion, "REGISTRY="+registryPath)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make release: %v\n%s", err, out)
		}
		first, second := readFile(t, filepath.Join(dist, "SHA256SUMS")), readFile(t, filepath.Join(again, "SHA256SUMS"))
		if !bytes.Equal(first, second) {
			t.Errorf("two releases of one commit differ:\n%s\n%s", first, second)
		}
	})

	start = time.Now()
	if err := e.cluster.ImportImage(context.Background(), archive); err != nil {
		t.Fatal(err)
	}
	t.Logf("imported the release's image archive on every node in %.1f s", time.Since(start).Seconds())

	// In place of the kustomize installation, which the cleanup puts back whatever happens.
	kustomization := filepath.Join(e.root, kustomization)
	kustomized := manifest.Decode(t, e.kubectlOK(t, "kustomize", kustomization))
	t.Cleanup(func() { e.restoreKustomization(t, kustomization) })
	e.kubectlOK(t, "delete", "-k", kustomization, "--ignore-not-found", "--wait=true", "--timeout=120s")
	e.waitGone(t, kustomized, 2*time.Minute)

	t.Run("install.yaml", func(t *testing.T) {
		overlay := localOverlay(t, e.root, filepath.Join(dist, "install.yaml"))
		installed := manifest.Decode(t, e.kubectlOK(t, "kustomize", overlay))
		if err := e.applyKustomization(overlay); err != nil {
			t.Fatal(err)
		}
		e.kubectlOK(t, "-n", namespace, "rollout", "status", "deployment/xdpgen-controller-manager", "--timeout=120s")
		e.checkRunsRelease(t, image)
		e.runToCompletion(t, "e2e-release-yaml", 22, false)
		e.kubectlOK(t, "delete", "-k", overlay, "--ignore-not-found", "--wait=true", "--timeout=120s")
		e.waitGone(t, installed, 2*time.Minute)
	})

	t.Run("chart", func(t *testing.T) {
		chart := filepath.Join(dist, releaseChart)
		localValues := filepath.Join(e.root, "hack", "helm", "local-cluster-values.yaml")
		out := e.helm(t, "install", "xdpgen", chart, "-f", localValues, "--wait", "--timeout=2m")
		if !strings.Contains(out, "STATUS: deployed") {
			t.Errorf("helm install %s: want the release deployed", releaseChart)
		}
		if out := e.helm(t, "list", "-o", "yaml"); !strings.Contains(out, "chart: xdpgen-0.0.0-e2e") ||
			!strings.Contains(out, "app_version: "+releaseVersion) {
			t.Errorf("helm list: want chart xdpgen-0.0.0-e2e, app_version %s", releaseVersion)
		}
		// The chart README's upgrade: the release's CRDs (which helm upgrade leaves), then helm upgrade.
		e.kubectlOK(t, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(dist, "crds.yaml"))
		e.helm(t, "upgrade", "xdpgen", chart, "-f", localValues, "--wait", "--timeout=2m")
		e.checkRunsRelease(t, image)
		e.runToCompletion(t, "e2e-release-chart", 23, false)
		e.helm(t, "uninstall", "xdpgen", "--wait", "--timeout=2m")
		e.waitGone(t, []*unstructured.Unstructured{namespaceObject()}, 2*time.Minute)
	})
}

func byName(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		m[o.GetName()] = o
	}
	return m
}

// restoreKustomization puts the other tests' installation back, once whatever is left of the release's is gone.
func (e *clusterEnv) restoreKustomization(t *testing.T, kustomization string) {
	_, _ = exec.Command(e.helmBinary(t), "uninstall", "xdpgen", "--ignore-not-found", "--wait", "--timeout=2m",
		"--kubeconfig", e.cluster.Kubeconfig()).CombinedOutput()
	_, _ = e.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s")
	e.waitGone(t, []*unstructured.Unstructured{namespaceObject()}, 2*time.Minute)
	if err := e.applyKustomization(kustomization); err != nil {
		t.Errorf("restore the kustomize installation: %v", err)
		return
	}
	if out, err := e.run("-n", namespace, "rollout", "status", "deployment/xdpgen-controller-manager", "--timeout=120s"); err != nil {
		t.Errorf("restore the kustomize installation: %v\n%s", err, out)
	}
}

// localOverlay is a kustomization around a copy of install.yaml with config/local's patches: what the local
// cluster needs of any installation (image never pulled, API server on the host's 127.0.0.1), nothing else of the
// repository's.
func localOverlay(t *testing.T, root, installYAML string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"install.yaml": installYAML}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [install.yaml]\npatches:\n"
	for _, p := range []string{"manager_local.yaml", "agent_local.yaml"} {
		files[p] = filepath.Join(root, "config", "local", p)
		k += "- path: " + p + "\n"
	}
	files["kustomization.yaml"] = ""
	for name, src := range files {
		b := []byte(k)
		if src != "" {
			b = readFile(t, src)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// imageLine is a container's image in a manifest.
var imageLine = regexp.MustCompile(`(?m)^\s*(?:- )?image: *(\S+)$`)

// checkImages checks that every image a manifest names is the release's, the manager's and the agents' at least.
func checkImages(t *testing.T, what, manifest, image string) {
	t.Helper()
	images := imageLine.FindAllStringSubmatch(manifest, -1)
	if len(images) < 2 {
		t.Errorf("%s names %d images, want the manager's and the agents'", what, len(images))
	}
	for _, m := range images {
		if m[1] != image {
			t.Errorf("%s names image %s, want %s", what, m[1], image)
		}
	}
}

// checkRunsRelease checks that the manager and every node's agent run the release's image, and that its binaries
// say the release's version.
func (e *clusterEnv) checkRunsRelease(t *testing.T, image string) {
	t.Helper()
	if got := e.kubectlOK(t, "-n", namespace, "get", "deployment", "xdpgen-controller-manager", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); got != image {
		t.Errorf("the manager's image is %q, want %q", got, image)
	}
	out := e.kubectlOK(t, "-n", namespace, "exec", "deployment/xdpgen-controller-manager", "--", "/manager", "--version")
	if !strings.HasPrefix(out, "manager "+releaseVersion+" (commit ") {
		t.Errorf("/manager --version in the manager's pod: %q, want manager %s (commit ...", out, releaseVersion)
	}
	for _, n := range e.cluster.Nodes() {
		pod := e.waitAgentRunning(t, n.Name, 2*time.Minute)
		if img := pod.Spec.Containers[0].Image; img != image {
			t.Errorf("agent pod %s on %s runs %q, want %q", pod.Name, n.Name, img, image)
		}
		out := e.kubectlOK(t, "-n", namespace, "exec", pod.Name, "--", "/agent", "--version")
		if !strings.HasPrefix(out, "agent "+releaseVersion+" (commit ") {
			t.Errorf("/agent --version in %s: %q, want agent %s (commit ...", pod.Name, out, releaseVersion)
		}
	}
}

// checkSums checks that SHA256SUMS lists every other file of the release with its SHA-256.
func checkSums(t *testing.T, dist string) {
	t.Helper()
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, en := range entries {
		if en.Name() != "SHA256SUMS" {
			files = append(files, en.Name())
		}
	}
	want := []string{"crds.yaml", "install.yaml", releaseChart, "xdpgen-image.oci.tar", "xdpgen-linux-amd64", "xdpgen-linux-arm64"}
	sort.Strings(want)
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("the release holds %v, want %v and SHA256SUMS", files, want)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(string(readFile(t, filepath.Join(dist, "SHA256SUMS")))), "\n") {
		sum, file, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q: want SUM  FILE", line)
		}
		h := sha256.Sum256(readFile(t, filepath.Join(dist, file)))
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: %s has %s, want %x", file, sum, h)
		}
		listed = append(listed, file)
	}
	if strings.Join(listed, " ") != strings.Join(files, " ") {
		t.Errorf("SHA256SUMS lists %v, want %v", listed, files)
	}
}

// checkImageArchive checks the release's image archive: one index named image, with a linux/amd64 and a
// linux/arm64 image, each of static binaries /manager and /agent of its architecture, the agent with the BPF
// objects embedded.
func checkImageArchive(t *testing.T, root, archive, image string) {
	t.Helper()
	a, err := ociarchive.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Ref.String() != image {
		t.Errorf("the archive names %s, want %s", a.Ref, image)
	}
	m, err := a.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range m.Manifests {
		plats = append(plats, d.Platform.String())
		img, err := a.Index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OS != "linux" || cfg.Architecture != d.Platform.Architecture {
			t.Errorf("%s: the image's config says %s/%s", d.Platform, cfg.OS, cfg.Architecture)
		}
		files := imageFiles(t, img)
		for _, bin := range []string{"manager", "agent"} {
			checkStaticELF(t, d.Platform.String()+" /"+bin, files[bin], d.Platform.Architecture)
		}
		checkEmbedsBPF(t, root, d.Platform.String()+" /agent", files["agent"])
	}
	if strings.Join(plats, ",") != "linux/amd64,linux/arm64/v8" {
		t.Errorf("the archive's index holds %v, want linux/amd64 and linux/arm64/v8", plats)
	}
}

// imageFiles reads the regular files of an image's layers.
func imageFiles(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if hdr.Typeflag == tar.TypeReg {
				if files[hdr.Name], err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
			}
		}
		rc.Close()
	}
	return files
}

// checkStaticELF checks that b is an executable for linux/arch with no dynamic loader (static).
func checkStaticELF(t *testing.T, what string, b []byte, arch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Errorf("%s: not an ELF file: %v", what, err)
		return
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want || f.Type != elf.ET_EXEC {
		t.Errorf("%s: an ELF %s for %s, want an executable for %s", what, f.Type, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: dynamically linked (%s), want static", what, p.Type)
		}
	}
}

// checkEmbedsBPF checks that a binary holds the BPF objects of bpf/ that send (bpf2go embeds them).
func checkEmbedsBPF(t *testing.T, root, what string, b []byte) {
	t.Helper()
	for _, obj := range []string{"udp_bpfel.o", "tcp_bpfel.o"} {
		if !bytes.Contains(b, readFile(t, filepath.Join(root, "bpf", obj))) {
			t.Errorf("%s does not embed bpf/%s", what, obj)
		}
	}
}

// checkPushed pulls image from the registry: the archive's index, digest for digest, and every image in it.
func checkPushed(t *testing.T, archive, image string) {
	t.Helper()
	a, err := ociarchive.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	want, _ := a.Index.Digest()
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", image, err)
	}
	if got, _ := pulled.Digest(); got != want {
		t.Errorf("pushed index %s, want the archive's %s", got, want)
	}
	m, err := pulled.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 2 {
		t.Errorf("the pushed index lists %d images, want 2", len(m.Manifests))
	}
	for _, d := range m.Manifests {
		if err := readLayers(pulled, d.Digest); err != nil {
			t.Errorf("the pushed %s: %v", d.Platform, err)
		}
	}
}

// readLayers reads every layer of an image of an index (go-containerregistry checks each against its digest).
func readLayers(idx v1.ImageIndex, digest v1.Hash) error {
	img, err := idx.Image(digest)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
