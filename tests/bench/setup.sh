#!/usr/bin/env bash
# Installs what tests/bench/serve.sh starts and measures with, from Debian's packages, if any
# is missing: dnsperf, h2load (nghttp2-client), the peers knotd (knot), nsd, named (bind9)
# and dnsdist, dig and kdig for readiness checks and AXFR, matplotlib for the plot.
# The hickory-dns peer is built by serve.sh itself with cargo, once.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin
packages=(dnsperf nghttp2-client knot nsd bind9 dnsdist bind9-dnsutils knot-dnsutils
  python3-matplotlib openssl iproute2 util-linux)
tools=(dnsperf h2load knotd nsd named dnsdist dig kdig openssl ip unshare)
missing=0
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing=1
done
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || missing=1
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "tests/bench/setup.sh: missing benchmark tools; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
