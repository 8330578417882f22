#!/usr/bin/env bash
# The example project as a user has it: Ricochet packed (`npm pack` builds it), installed from the
# tarball into a copy of examples/greeter in a temporary directory, then the example's own
# type-check and tests. Run by CI; needs Redis on REDIS_URL (default 127.0.0.1:6379).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null && rm -rf dist)
tarball="$(ls "$work"/ricochet-*.tgz)"
cp -r "$root/examples/greeter" "$work/greeter"
cd "$work/greeter"
rm -rf node_modules package-lock.json
npm pkg set "dependencies.ricochet=file:$tarball"
npm install --no-audit --no-fund --loglevel=error
npm run typecheck
npm test
