#!/usr/bin/env bash
# The OpenAPI document as a client sees it: lint it with Redocly's recommended rules (any error
# fails), generate TypeScript types from it with openapi-typescript, and type-check a small
# typed client (scripts/openapi-client/) against them. The document is built in process
# (scripts/openapi-document.ts): no server is started; Redis must answer at REDIS_URL.
# ACTIONS / BUILTIN_ACTIONS in the environment put those actions in the document.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

node --import tsx scripts/openapi-document.ts "$work/openapi.json"
npx --no-install redocly lint --extends=recommended --format=stylish "$work/openapi.json"
cp scripts/openapi-client/client.ts scripts/openapi-client/tsconfig.json "$work/"
# Defaults describe what the service fills in, not what a client must send.
npx --no-install openapi-typescript "$work/openapi.json" --default-non-nullable=false -o "$work/schema.d.ts"
npx --no-install tsc -p "$work"
echo "OpenAPI document: lint clean, generated client compiles"
