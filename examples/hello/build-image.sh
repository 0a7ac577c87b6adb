#!/usr/bin/env bash
# Builds the images the examples, tests and benchmarks use, from Debian's
# static busybox: corral-busybox:latest (a rootfs imported as an image) and
# corral-hello:latest (a tiny web server on port 80). No registry is needed.
set -euo pipefail
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' - corral-busybox:latest >/dev/null
docker build -q -t corral-hello:latest "$here" >/dev/null
echo "built corral-busybox:latest and corral-hello:latest"
