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

##@ Kubernetes binaries

##@ Test

# Privileged (root/BPF/netns) tests skip when unprivileged; XDPGEN_REQUIRE_PRIVILEGED=1 turns every such skip
# into a failure (CI sets it). envtest suites find etcd and kube-apiserver through KUBEBUILDER_ASSETS.
export KUBEBUILDER_ASSETS ?= $(ENVTEST_ASSETS)

.PHONY: test
test: envtest-assets ## Run every test: unit, BPF in the real kernel, netns traffic, envtest against a real API server.
	$(GO) test -count=1 -timeout 30m ./...

##@ Build
