#!/usr/bin/env bash
# Regenerates dashboard.schema.json from Grafana's own dashboard types: the TypeScript types of
# the npm package @grafana/schema (generated there from Grafana's CUE schema) are converted to
# JSON Schema by ts-json-schema-generator, which closes every object (additionalProperties:
# false), so an unknown or misspelt key fails validation. Needs npm and network once; the
# result is committed and the tests use it offline.
set -euo pipefail
SCHEMA_VERSION=13.2.3
GENERATOR_VERSION=2.4.0
TYPESCRIPT_VERSION=5.9.3
out="$(cd "$(dirname "$0")" && pwd)/dashboard.schema.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "@grafana/schema@$SCHEMA_VERSION" >/dev/null
tar xzf "grafana-schema-$SCHEMA_VERSION.tgz"
npm install --silent --no-audit --no-fund "ts-json-schema-generator@$GENERATOR_VERSION" "typescript@$TYPESCRIPT_VERSION" >/dev/null
npx ts-json-schema-generator --path package/dist/types/raw/dashboard/x/types.gen.d.ts \
  --type Dashboard --no-type-check -o "$out"
echo "wrote $out"
