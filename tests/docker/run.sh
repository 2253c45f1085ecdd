#!/usr/bin/env bash
# The docker scenarios of issue 6: builds the one image every container runs from files on
# this machine (release certzone, /usr/bin/pebble, kdig, busybox and the shared libraries
# they load), then runs scenarios.py, which brings the cluster up and takes it down.
# Needs: docker with its daemon, docker-compose (v1), python3, openssl, and the Debian
# packages pebble, knot-dnsutils and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
# CERTZONE=PATH uses a binary already built (CI passes the one `cargo test` built: a plain
# `cargo build` would compile the crate again without the test-only feature set).
if [ -z "${CERTZONE:-}" ]; then
  cargo build --release --locked --quiet
  CERTZONE=$target/release/certzone
fi
[ -x "$CERTZONE" ] || { echo "run.sh: $CERTZONE is not an executable" >&2; exit 1; }

image=$target/docker/image
rm -rf "$image"
mkdir -p "$image/rootfs/bin" "$image/rootfs/tmp"
programs=("$CERTZONE" /usr/bin/pebble /usr/bin/kdig)
cp "$CERTZONE" "$image/rootfs/bin/certzone"
cp /usr/bin/pebble /usr/bin/kdig /usr/bin/busybox "$image/rootfs/bin/"
# busybox's applets (sh, sleep, date, ...) as links, the way a busybox system has them.
for applet in $(/usr/bin/busybox --list); do
  [ -e "$image/rootfs/bin/$applet" ] || ln -s busybox "$image/rootfs/bin/$applet"
done
# Each library at the path the loader looks for it; the loader itself is one of them.
ldd "${programs[@]}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && NF == 2 { print $1 }' |
  sort -u | while read -r lib; do cp --parents -L "$lib" "$image/rootfs"; done
cp tests/docker/Dockerfile "$image/"
# The legacy builder (no BuildKit here) warns on every build: its output only on failure.
old=$(docker images --quiet certzone-test)
if ! built=$(docker build --quiet --tag certzone-test "$image" 2>&1); then
  echo "$built" >&2
  exit 1
fi
# The image this one replaces, so that runs do not pile up copies of it.
if [ -n "$old" ] && [ "$old" != "$(docker images --quiet certzone-test)" ]; then
  docker rmi "$old" >/dev/null 2>&1 || true
fi

CERTZONE=$(realpath "$CERTZONE")
export CERTZONE
exec python3 -u tests/docker/scenarios.py
