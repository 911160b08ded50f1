#!/usr/bin/env bash
# Installs what Lumen needs into .venv from the lock file: uv (once, into var/tools), then
# every locked Python dependency including the offline model-training extra. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
export UV_PYTHON_DOWNLOADS=never   # use the machine's Python 3.11; never fetch an interpreter

python=${LUMEN_PYTHON:-$(command -v python3.11 || command -v python3 || true)}
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "Lumen needs Python 3.11 (found: ${python:-none}). Install it, or set LUMEN_PYTHON." >&2
  exit 3
fi

uv=$(command -v uv || true)
if [[ -z "$uv" ]] || [[ "$("$uv" --version | awk '{print $2}')" != "$UV_VERSION" ]]; then
  if [[ ! -x var/tools/bin/uv ]]; then
    echo "installing uv $UV_VERSION into var/tools..."
    "$python" -m venv var/tools
    var/tools/bin/pip install --quiet "uv==$UV_VERSION"
  fi
  uv=var/tools/bin/uv
fi
"$uv" sync --frozen --extra train --python "$python" --quiet

# Prometheus and promtool (Debian package `prometheus`): the local platform's metrics server and
# the monitoring checks of `make test`. Installed only when missing; never started as a service.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing prometheus (Debian package) for the monitoring stack..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # The package's start-up of a system service is refused where no init system runs; harmless.
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || true
    command -v promtool >/dev/null || { echo "could not install the prometheus package" >&2; exit 3; }
  else
    echo "Prometheus is missing: install the Debian/Ubuntu package 'prometheus' (sudo apt-get install prometheus)." >&2
  fi
fi

# Jaeger (the local trace store `lumen up` and the integration tests start), built once with Go
# from the module proxy into var/tools/bin; the Go caches stay in var/cache/go, so later runs
# return at once. Without Go the platform runs with tracing off and the tracing tests say so.
if command -v go >/dev/null; then
  bash scripts/tools/jaeger.sh >/dev/null
else
  echo "Go is missing: the local trace store (Jaeger) is not built; install Go 1.24 or newer." >&2
fi
