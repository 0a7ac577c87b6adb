#!/usr/bin/env bash
# `bash images/build.sh`: container images of corral itself, made here and pushed nowhere. First
# corral-runtime:VERSION, a root filesystem imported as an image (as the test images are: no registry):
# Debian's static busybox (a shell), Node 22 and the libraries it links, the CA certificates, and corral
# installed from `npm pack`'s tarball as `npm install -g` does. Then corral-server:VERSION and
# corral-agent:VERSION from server.Dockerfile and agent.Dockerfile on it, each checked to run.
# With --check, the two run together on this engine (both on the host's network): the server's container,
# an agent's joining it with a token from `corral host add`, and a stack brought up and removed through them.
# CORRAL_IMAGE_NODE=/path/to/node picks the Node (default: the one scripts/node22.mjs finds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
node=${CORRAL_IMAGE_NODE:-$(cd "$root" && node scripts/node22.mjs -p process.execPath 2>/dev/null || cat node_modules/.cache/corral/node22)}
node=$(readlink -f "$node")
busybox=$(command -v busybox) || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
version=$(node -p 'require(process.argv[1]).version' "$root/package.json")
tmp=$(mktemp -d /tmp/corral-images.XXXXXX)
finish() {
  status=$?
  if [ $status -ne 0 ]; then
    for c in corral-image-check-server corral-image-check-agent; do echo "--- $c (tail)"; docker logs "$c" 2>&1 | tail -n 15 || true; done
  fi
  docker rm -f corral-image-check-server corral-image-check-agent >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit $status
}
trap finish EXIT

tarball=$(cd "$root" && npm pack --silent --pack-destination "$tmp" | tail -n 1)
rootfs="$tmp/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc/ssl" "$rootfs/tmp" "$rootfs/root" "$rootfs/usr/local/bin" "$rootfs/var/lib/corral"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"; done
mkdir -p "$rootfs/usr/bin" && ln -s ../../bin/busybox "$rootfs/usr/bin/env" # (corral's #!/usr/bin/env node)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
chmod 700 "$rootfs/var/lib/corral" # (corral keeps its data in a folder of its own user's alone)
cp "$node" "$rootfs/usr/local/bin/node"
# the shared libraries Node links, where the loader looks for them
for lib in $(ldd "$node" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
[ -d /etc/ssl/certs ] && cp -rL /etc/ssl/certs "$rootfs/etc/ssl/certs"
PATH="$(dirname "$node"):$PATH" npm install -g --prefix "$rootfs/usr/local" --no-audit --no-fund --loglevel=error "$tmp/$tarball" >/dev/null
tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/bin:/bin' -c 'ENV HOME=/root' - "corral-runtime:$version" >/dev/null
docker tag "corral-runtime:$version" corral-runtime:latest

for part in server agent; do
  docker build -q -t "corral-$part:$version" --build-arg "RUNTIME=corral-runtime:$version" -f "$here/$part.Dockerfile" "$here" >/dev/null
  got=$(docker run --rm --entrypoint corral "corral-$part:$version" --version)
  [ "$got" = "$version" ] || { echo "corral-$part:$version: corral --version printed '$got'" >&2; exit 1; }
  echo "built corral-$part:$version ($(docker image inspect -f '{{.Size}}' "corral-$part:$version" | awk '{ printf "%d MB", $1 / 1e6 }'))"
done

[ "${1:-}" = "--check" ] || exit 0
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
mkdir -p "$tmp/data" && chmod 700 "$tmp/data"
docker run -d --name corral-image-check-server --network host -v "$tmp/data:/var/lib/corral" \
  --entrypoint corral "corral-server:$version" server --listen 127.0.0.1 --port "$port" --no-agent >/dev/null
for i in $(seq 1 120); do
  docker logs corral-image-check-server 2>&1 | grep -q "corral server on" && break
  [ "$i" = 120 ] && { docker logs corral-image-check-server 2>&1 | tail -n 20; echo "the server's container did not start" >&2; exit 1; }
  sleep 0.5
done
cli() { CORRAL_URL="http://127.0.0.1:$port" CORRAL_TOKEN="$(cat "$tmp/data/token")" node "$root/packages/cli/bin/corral.js" "$@"; }
join=$(cli host add image-check | sed -n 2p) # (its second line is the token)
engine=${DOCKER_HOST:-unix:///var/run/docker.sock}
# (a server listening on loopback hands local agents its queues over a socket in its data folder: shared here)
docker run -d --name corral-image-check-agent --network host -v "${engine#unix://}:/var/run/docker.sock" -v "$tmp/data/run:/var/lib/corral/run" \
  "corral-agent:$version" --join "http://127.0.0.1:$port" --token "$join" --overlay off --address 127.0.0.1 >/dev/null
for i in $(seq 1 120); do
  docker logs corral-image-check-agent 2>&1 | grep -q "corral agent image-check connected" && break
  [ "$i" = 120 ] && { echo "the agent's container did not join" >&2; exit 1; }
  sleep 0.5
done
mkdir -p "$tmp/stack" && printf 'services:\n  web:\n    image: corral-busybox:latest\n    command: ["sh", "-c", "trap \x27exit 0\x27 TERM; while true; do sleep 1; done"]\n    cap_drop: [ALL]\n' >"$tmp/stack/docker-compose.yml"
(cd "$tmp/stack" && CORRAL_URL="http://127.0.0.1:$port" CORRAL_TOKEN="$(cat "$tmp/data/token")" timeout 120 node "$root/packages/cli/bin/corral.js" up -d -s image-check >/dev/null)
running=$(docker ps --filter label=io.corral.stack=image-check --format '{{.Names}}')
[ "$running" = "image-check-web-1" ] || { echo "through the images, Docker runs '$running'" >&2; exit 1; }
cli rm --type stack image-check >/dev/null
echo "corral-server and corral-agent ran a stack together: ok"
