#!/usr/bin/env bash
# The example project as a user has it: Ricochet packed (`npm pack` builds it), installed from the
# tarball into a copy of examples/greeter in a temporary directory, then the example's own
# type-check and tests. Run by CI; needs Redis on REDIS_URL (default 127.0.0.1:6379).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
# The example's tests and its `npm start` below use the shared Redis under prefixes of their own,
# removed at the end like the temporary directory.
prefixes=("{greeter-test-$$}" "{greeter-start-$$}")
cleanup() {
  rm -rf "$work"
  command -v redis-cli >/dev/null || return 0
  local url="${REDIS_URL:-redis://127.0.0.1:6379}" prefix
  for prefix in "${prefixes[@]}"; do
    redis-cli -u "$url" --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null
  done
}
trap cleanup EXIT
(cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null && rm -rf dist)
tarball="$(ls "$work"/ricochet-*.tgz)"
cp -r "$root/examples/greeter" "$work/greeter"
cd "$work/greeter"
rm -rf node_modules package-lock.json
npm pkg set "dependencies.ricochet=file:$tarball"
npm install --no-audit --no-fund --loglevel=error
npm run typecheck
QUEUE_PREFIX="${prefixes[0]}" npm test

# `npm start` as the example's README says: zero-config mode with the project's actions. It must
# listen and offer page-title and word-stats (the OpenAPI document is public).
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
# Its own process group (setsid), so that stopping it stops npm, the shell and ricochet alike,
# and its own queue prefix, so that it never touches another deployment's jobs.
PORT="$port" HOST=127.0.0.1 DATA_DIR="$work/data" MANAGED_REDIS=off QUEUE_PREFIX="${prefixes[1]}" setsid npm start > "$work/start.log" 2>&1 &
server=$!
trap 'kill -- -"$server" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 120); do grep -qs "ricochet is listening" "$work/start.log" && break; sleep 0.5; done
actions="$(curl -fsS "http://127.0.0.1:$port/openapi.json" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const d=JSON.parse(s);console.log(Object.keys(d.components.schemas).filter(k=>/Submission$/.test(k)).sort().join(","))})')"
kill -- -"$server"; wait "$server" || true
for _ in $(seq 1 50); do pgrep -g "$server" >/dev/null || break; sleep 0.1; done
if pgrep -g "$server" >/dev/null; then echo "npm start left processes behind"; exit 1; fi
echo "npm start offers: $actions"
[ "$actions" = "PageTitleSubmission,WordStatsSubmission" ] || { cat "$work/start.log"; exit 1; }
