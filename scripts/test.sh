#!/usr/bin/env bash
# The project's test command (`make test`; CI runs exactly this): static checks, then unit and
# integration tests against a real Kafka and mongod that the tests start on their own ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
PY=.venv/bin/python

echo "== static checks"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/lint-imports  # services never import one another; shared/ imports none of them
scripts/gen_protos.sh --check
(cd protos && ../.venv/bin/buf lint)
monitoring/check.sh

echo "== tests"
set +e
"$PY" -m pytest "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit $status
