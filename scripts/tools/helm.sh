#!/usr/bin/env bash
# Prints the path of the pinned Helm binary, building it once from the Go module proxy into
# var/tools/bin (about 5-10 minutes on 2 cores the first time; later calls return at once).
# Used by tests/deploy; needs Go >= 1.24 on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
HELM_VERSION=v3.22.0
bin_dir=$PWD/var/tools/bin
helm=$bin_dir/helm

current_version() { "$helm" version --template '{{.Version}}' 2>/dev/null || true; }

if [[ -x $helm && "$(current_version)" == "$HELM_VERSION" ]]; then
  echo "$helm"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "Helm $HELM_VERSION is built with 'go install' and Go is not on PATH: install Go 1.24 or newer." >&2
  exit 3
fi
mkdir -p "$bin_dir"
# One build at a time, even when several test sessions start together.
exec 9>"$bin_dir/.helm.lock"
flock 9
if [[ ! -x $helm || "$(current_version)" != "$HELM_VERSION" ]]; then
  echo "building Helm $HELM_VERSION into var/tools/bin (once)..." >&2
  GOBIN=$bin_dir GOFLAGS=-trimpath go install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
fi
echo "$helm"
