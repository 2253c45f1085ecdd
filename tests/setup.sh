#!/usr/bin/env bash
# Installs the real programs the tests and benchmarks start, from Debian's packages, if
# any is missing: kdig (knot-dnsutils), dig (bind9-dnsutils), named and tsig-keygen (bind9,
# bind9-utils), pebble (the ACME test CA), lego and knotd (benchmark peers), ip (iproute2:
# BIND listens only on addresses an interface carries, so tests add 127.x aliases), and
# for the docker tests busybox (busybox-static: the containers' shell; `cluster docker` puts
# it, kdig and pebble in the image it builds); openssl (the benchmarks); unbound, the
# resolver tests/it/resolver.rs puts in front of certzone; strace (the keygen tests inject
# faults into the real binary with it);
# for the attack tests (tests/it/exposure.rs, tests/it/attacks.rs) dnsperf (floods), python3
# with python3-h2 (tests/attack/*.py write HTTP/2 frames by hand) and prlimit (util-linux:
# a node with 256 open files); prometheus and promtool (prometheus: tests/it/monitoring.rs
# scrapes a cluster with it and checks dist/prometheus/alerts.yml); python3-markdown (the
# layout test renders README.md and checks that its tables come out as tables).
set -euo pipefail
packages=(knot-dnsutils bind9-dnsutils bind9 bind9-utils pebble lego knot iproute2 busybox-static openssl
  unbound strace dnsperf python3 python3-h2 util-linux certbot python3-certbot-dns-rfc2136 prometheus
  python3-markdown)
tools=(kdig dig nsupdate named tsig-keygen pebble lego certbot knotd ip busybox openssl unbound strace
  dnsperf prlimit prometheus promtool)
missing=0
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing=1
done
/usr/bin/python3 -c 'import h2, hpack, hyperframe, markdown' 2>/dev/null || missing=1
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "tests/setup.sh: missing test tools; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
