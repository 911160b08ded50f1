#!/usr/bin/env bash
# Create .peers/mlserver: Seldon MLServer in a virtual environment of its own (its pins clash
# with Lumen's). Run once; the benchmark suite uses it when started with --peers.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.peers/mlserver
if [[ -x "$VENV/bin/mlserver" ]]; then
    echo "$VENV already set up"; exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# uvloop<0.22: with 0.22+ MLServer's inference worker dies at start (no current event loop).
"$VENV/bin/pip" install --quiet 'mlserver==1.7.1' 'onnxruntime==1.23.2' 'tokenizers==0.22.1' \
    'numpy<2.4' 'uvloop<0.22'
"$VENV/bin/mlserver" --help >/dev/null
echo "MLServer ready in $VENV"
