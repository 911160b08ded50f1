#!/usr/bin/env bash
# Generates the Python gRPC stubs (with mypy stubs) for every .proto under protos/ into protos/gen/.
# `scripts/gen_protos.sh --check` regenerates into a temporary folder and fails if the committed
# stubs have drifted from the .proto files.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# protoc finds the mypy-protobuf plugins on PATH.
export PATH="$(cd "$(dirname "$PY")" && pwd):$PATH"
out=protos/gen
if [[ "${1:-}" == "--check" ]]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
else
  rm -rf protos/gen/lumen protos/gen/inference
fi
mkdir -p "$out"
mapfile -t files < <(cd protos && find lumen inference -name '*.proto' | sort)
(cd protos && "../$PY" -m grpc_tools.protoc -I. \
  --python_out="$( [[ $out = /* ]] && echo "$out" || echo "../$out")" \
  --grpc_python_out="$( [[ $out = /* ]] && echo "$out" || echo "../$out")" \
  --mypy_out="$( [[ $out = /* ]] && echo "$out" || echo "../$out")" \
  --mypy_grpc_out="$( [[ $out = /* ]] && echo "$out" || echo "../$out")" \
  "${files[@]}" 2> >(grep -v '^Writing mypy' >&2))
# Packages for the generated modules.
for d in "$out/lumen" "$out/lumen/v1" "$out/inference"; do touch "$d/__init__.py"; done
if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r -q -x '__pycache__' "$out/lumen" protos/gen/lumen || ! diff -r -q -x '__pycache__' "$out/inference" protos/gen/inference; then
    echo "protos/gen is out of date: run 'make protos' and commit the result" >&2
    exit 1
  fi
  echo "protos/gen matches the .proto files"
fi
