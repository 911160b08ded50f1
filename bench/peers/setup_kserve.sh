#!/usr/bin/env bash
# Create .peers/kserve: KServe's Python model server in a virtual environment of its own.
# Optional peer: the suite runs it with --peers when this folder exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.peers/kserve
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import kserve' 2>/dev/null; then
    echo "$VENV already set up"; exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet 'kserve==0.21.0' 'onnxruntime==1.23.2' 'numpy<2.4'
"$VENV/bin/python" -c 'import kserve' >/dev/null
echo "KServe ready in $VENV"
