#!/usr/bin/env bash
# `make release`: everything a user installs, into $DIST (emptied first), from the working tree:
#
#   xdpgen-image.oci.tar        the image (/manager, /agent) for linux/amd64 and linux/arm64: an OCI layout tarball
#                               of one image index named $IMAGE, for `make push` and `ctr images import`
#   install.yaml                config/default with the image set to $IMAGE (kubebuilder's build-installer)
#   crds.yaml                   the CRDs alone (config/crd), which `helm upgrade` leaves as they are: the chart's
#                               README says to apply them first
#   xdpgen-$CHART_VERSION.tgz   the chart, appVersion $VERSION (so its image tag), image.repository $IMAGE's
#   xdpgen-linux-{amd64,arm64}  the CLI, static
#   SHA256SUMS                  of each of the above, for `sha256sum -c`
#
# Every binary is static, built with -trimpath and stamped by $LDFLAGS (`--version`); archive entries are dated
# $SOURCE_DATE_EPOCH (helm dates the chart's by it too): one commit and toolchain give the same bytes.
#
# Environment (set by the Makefile): DIST, VERSION, CHART_VERSION, IMAGE (REPOSITORY:TAG), LDFLAGS, HELM, KUBECTL, GO.
set -euo pipefail

: "${DIST:?}" "${VERSION:?}" "${CHART_VERSION:?}" "${IMAGE:?}" "${LDFLAGS:?}" "${HELM:?}" "${KUBECTL:?}" "${GO:=go}"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
repository=${IMAGE%:*}
[ "$repository:$VERSION" = "$IMAGE" ] || { echo "release: IMAGE=$IMAGE must be tagged with VERSION=$VERSION" >&2; exit 1; }
# The chart's default image, which the release stamps (the README and values.yaml name it too).
chart_repository=ghcr.io/xdpgen/xdpgen
platforms=(linux/amd64 linux/arm64)

case "$(realpath -m "$DIST")" in
/ | "$root" | "$HOME") echo "release: DIST=$DIST would be emptied: name a folder of its own" >&2; exit 1 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$DIST"
mkdir -p "$DIST"

echo "release: image $IMAGE for ${platforms[*]}"
platform_flags=()
for p in "${platforms[@]}"; do platform_flags+=(-platform "$p"); done
"$GO" run ./hack/image -format oci "${platform_flags[@]}" -o "$DIST/xdpgen-image.oci.tar" -tag "$IMAGE" \
	-ldflags "$LDFLAGS" manager=./cmd/manager agent=./cmd/agent

for p in "${platforms[@]}"; do
	echo "release: CLI for $p"
	CGO_ENABLED=0 GOOS=${p%/*} GOARCH=${p#*/} "$GO" build -trimpath -ldflags "-s -w $LDFLAGS" \
		-o "$DIST/xdpgen-${p%/*}-${p#*/}" ./cmd/xdpgen
done

echo "release: install.yaml (config/default, image $IMAGE)"
# A kustomization of our own around config/default, which stays as committed. Both the manager's and the agents'
# kustomizations set the image to $chart_repository:dev: this sets it again. (Kustomize takes no absolute path.)
mkdir "$tmp/install"
cat >"$tmp/install/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $(realpath --relative-to="$tmp/install" "$root/config/default")
images:
- name: $chart_repository
  newName: $repository
  newTag: $VERSION
EOF
"$KUBECTL" kustomize "$tmp/install" >"$DIST/install.yaml"
grep -q "image: $IMAGE\$" "$DIST/install.yaml" || { echo "release: install.yaml does not use $IMAGE" >&2; exit 1; }
if grep -n "image: $chart_repository:dev\$" "$DIST/install.yaml"; then
	echo "release: install.yaml still names the development image" >&2
	exit 1
fi

echo "release: crds.yaml (config/crd)"
"$KUBECTL" kustomize config/crd >"$DIST/crds.yaml"

echo "release: chart $CHART_VERSION (appVersion $VERSION, image.repository $repository)"
cp -r charts/xdpgen "$tmp/xdpgen"
sed -i "s|^  repository: $chart_repository\$|  repository: $repository|" "$tmp/xdpgen/values.yaml"
grep -q "^  repository: $repository\$" "$tmp/xdpgen/values.yaml" ||
	{ echo "release: charts/xdpgen/values.yaml has no image.repository $chart_repository to stamp" >&2; exit 1; }
"$HELM" package "$tmp/xdpgen" --version "$CHART_VERSION" --app-version "$VERSION" --destination "$DIST"

(cd "$DIST" && sha256sum -- * >SHA256SUMS)
echo "release: $DIST:"
(cd "$DIST" && ls -l)
