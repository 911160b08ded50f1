#!/usr/bin/env bash
# Static checks of the monitoring config, run by scripts/test.sh: promtool check config,
# check rules and the alert unit tests (each alert firing and not firing).
set -euo pipefail
cd "$(dirname "$0")/prometheus"
promtool=${PROMTOOL:-$(command -v promtool || true)}
if [[ -z "$promtool" ]]; then
  echo "promtool not found: install the Debian package 'prometheus' (scripts/bootstrap.sh does it as root)" >&2
  exit 1
fi
run() {  # quiet on success, the whole output on failure
  local out
  if ! out=$("$promtool" "$@" 2>&1); then
    echo "$out" >&2
    echo "FAILED: promtool $*" >&2
    exit 1
  fi
}
run check config prometheus.yml
run check rules rules/*.yml
run test rules tests/*.yml
echo "monitoring: promtool config, rules and $(ls tests/*.yml | wc -l) rule test file(s) OK"
