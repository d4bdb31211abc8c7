# xdpgen: a Kubernetes-native XDP live-frame packet generator.
# `make help` lists every target.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Data plane

##@ Operator

# controller-gen is pinned in go.mod as a `go tool`. It reads only the operator's packages, so a package elsewhere
# that does not build (work in progress) cannot break the manifests.
CONTROLLER_GEN ?= $(GO) tool controller-gen

.PHONY: manifests
manifests: ## Generate the CRDs (config/crd/bases) and the manager's ClusterRole (config/rbac/role.yaml) from the markers.
	$(CONTROLLER_GEN) rbac:roleName=xdpgen-manager crd webhook paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: ## Generate DeepCopy methods (api/v1alpha1/zz_generated.deepcopy.go).
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."

.PHONY: verify-manifests
verify-manifests: manifests generate ## Fail when the generated API code or manifests differ from what is committed.
	git diff --exit-code -- api/ config/
	@untracked="$$(git ls-files --others --exclude-standard -- api/ config/)"; \
	if [ -n "$$untracked" ]; then echo "generated files not committed:"; echo "$$untracked"; exit 1; fi

.PHONY: manager
manager: ## Build the controller manager into bin/manager.
	CGO_ENABLED=0 $(GO) build -o $(BIN)/manager ./cmd/manager

##@ Kubernetes binaries

# etcd and the Kubernetes binaries, built from the Go module proxy by hack/build-k8s.sh (the wrapper modules
# hack/etcd and hack/kube pin the versions; the script fails if these disagree with their go.mod files). Cached in
# bin/ by version: the first build takes ~15 min on 2 cores (kube-apiserver alone ~8), later runs well under 1 s.
K8S_VERSION := v1.37.2
ETCD_VERSION := v3.7.3
K8S_BIN := $(BIN)/k8s/$(K8S_VERSION)
ENVTEST_ASSETS := $(K8S_BIN)
BUILD_K8S := K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) K8S_BIN=$(K8S_BIN) GO=$(GO) hack/build-k8s.sh

.PHONY: envtest-assets
envtest-assets: ## Build etcd and kube-apiserver for envtest into bin/k8s/<version> (first time ~10 min).
	$(BUILD_K8S) etcd kube-apiserver

.PHONY: k8s-bins
k8s-bins: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl into bin/k8s/<version>.
	$(BUILD_K8S)

.PHONY: kubectl
kubectl: ## Build kubectl (matching the control plane's version) into bin/k8s/<version>.
	$(BUILD_K8S) kubectl

##@ Test

# Privileged (root/BPF/netns) tests skip when unprivileged; XDPGEN_REQUIRE_PRIVILEGED=1 turns every such skip
# into a failure (CI sets it). envtest suites find etcd and kube-apiserver through KUBEBUILDER_ASSETS.
export KUBEBUILDER_ASSETS ?= $(ENVTEST_ASSETS)

.PHONY: test
test: envtest-assets ## Run every test: unit, BPF in the real kernel, netns traffic, envtest against a real API server.
	$(GO) test -count=1 -timeout 30m ./...

##@ Build
