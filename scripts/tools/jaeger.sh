#!/usr/bin/env bash
# Prints the path of the pinned Jaeger binary (v2: the all-in-one trace store with OTLP receivers
# and the query UI/API), building it once from the Go module proxy into var/tools/bin (the
# version is scripts/tools/jaeger/go.mod's; keep JAEGER_VERSION equal to it). The Go
# module and build caches live under var/cache/go, so a second run (or a rebuild after
# `rm var/tools/bin/jaeger`) is quick. Used by scripts/bootstrap.sh, `lumen up` and the tests;
# needs Go >= 1.24 on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
JAEGER_VERSION=v1.75.0
bin_dir=$PWD/var/tools/bin
jaeger=$bin_dir/jaeger
stamp=$bin_dir/.jaeger.version

built() { [[ -x $jaeger && -f $stamp && "$(cat "$stamp")" == "$JAEGER_VERSION" ]]; }

if built; then
  echo "$jaeger"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "Jaeger $JAEGER_VERSION is built with 'go install' and Go is not on PATH: install Go 1.24 or newer." >&2
  exit 3
fi
mkdir -p "$bin_dir" var/cache/go
# One build at a time, even when several test sessions start together.
exec 9>"$bin_dir/.jaeger.lock"
flock 9
if ! built; then
  echo "building Jaeger $JAEGER_VERSION into var/tools/bin (once; several minutes)..." >&2
  # Built as a tool of scripts/tools/jaeger/go.mod (go.sum pins every module): Jaeger's own
  # go.mod has replace directives, which `go install <pkg>@<version>` refuses.
  repo=$PWD
  (cd scripts/tools/jaeger &&
    GOBIN=$bin_dir GOFLAGS="-trimpath -mod=readonly" GOMODCACHE=$repo/var/cache/go/mod \
      GOCACHE=$repo/var/cache/go/build \
      go install -ldflags "-s -w" github.com/jaegertracing/jaeger/cmd/jaeger) >&2
  echo "$JAEGER_VERSION" >"$stamp"
fi
echo "$jaeger"
