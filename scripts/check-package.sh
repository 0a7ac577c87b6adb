#!/usr/bin/env bash
# `bash scripts/check-package.sh`: corral as a user installs it. npm pack; the tarball installed into a
# temporary prefix as `npm install -g` does (its runtime dependencies only, from the registry); then, through
# the installed `corral`, from a folder outside the checkout: --version, a server on the local Docker engine
# (DOCKER_HOST), and up / ps / rm of a stack, checked against what Docker runs. Needs Node 22+ on PATH first
# (CI puts npm's node@22 there) and the test images (npm run images).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/corral-pack.XXXXXX)
server=""
finish() {
  status=$?
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ $status -eq 0 ] || { echo "--- server log (tail)"; tail -n 30 "$tmp/server.log" 2>/dev/null || true; }
  rm -rf "$tmp"
  exit $status
}
trap finish EXIT

cd "$root"
tarball=$(npm pack --silent --pack-destination "$tmp" | tail -n 1)
echo "packed $tarball ($(du -k "$tmp/$tarball" | cut -f1) KiB)"
npm install -g --prefix "$tmp/prefix" --no-audit --no-fund --loglevel=error "$tmp/$tarball" >/dev/null
corral="$tmp/prefix/bin/corral"

mkdir -p "$tmp/elsewhere" && cd "$tmp/elsewhere"
want=$(node -p 'require(process.argv[1]).version' "$root/package.json")
got=$("$corral" --version)
[ "$got" = "$want" ] || { echo "corral --version printed '$got', the package is $want" >&2; exit 1; }
echo "corral --version: $got (installed in $tmp/prefix, run from $PWD)"
# no TypeScript at run time: the installed package holds no .ts and no tsx
if find "$tmp/prefix/lib/node_modules/corral" -name '*.ts' -not -name '*.d.ts' -not -path '*/node_modules/*/node_modules/*' | grep -q . || [ -d "$tmp/prefix/lib/node_modules/corral/node_modules/tsx" ]; then
  echo "the installed package carries TypeScript sources or tsx" >&2
  exit 1
fi

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
"$corral" server --data "$tmp/data" --port "$port" --host-id pack-check >"$tmp/server.log" 2>&1 &
server=$!
for i in $(seq 1 120); do
  grep -q "corral server on" "$tmp/server.log" 2>/dev/null && break
  [ "$i" = 120 ] && { echo "the installed corral server did not start" >&2; exit 1; }
  sleep 0.5
done
export CORRAL_URL="http://127.0.0.1:$port" CORRAL_TOKEN="$(cat "$tmp/data/token")"

cat >docker-compose.yml <<'EOF'
services:
  web:
    image: corral-busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
EOF
"$corral" up -d -s pack-check
"$corral" ps pack-check
running=$(docker ps --filter label=io.corral.stack=pack-check --format '{{.Names}}')
[ "$running" = "pack-check-web-1" ] || { echo "after up, Docker runs '$running'" >&2; exit 1; }
"$corral" rm --type stack pack-check
left=$(docker ps -a --filter label=io.corral.stack=pack-check --format '{{.Names}}')
[ -z "$left" ] || { echo "after rm, Docker still has '$left'" >&2; exit 1; }
echo "up, ps and rm through the installed corral: ok"
