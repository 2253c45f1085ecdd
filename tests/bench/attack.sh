#!/usr/bin/env bash
# Slow clients, side by side (issue 12): the attack of tests/it/attacks.rs -- thousands of idle
# TCP connections and TLS connections stopped half-way through their ClientHello, from many
# loopback source addresses, re-opened as soon as closed -- against certzone (TCP, DoT,
# DoH), Knot 3.2 (TCP; it has no DoT/DoH) and BIND 9.18 (TCP, DoT, DoH), one after the
# other in one run. Meanwhile kdig asks each attacked transport once a second; the table
# gives each server's fraction answered within 1 s, and the same without the attack.
#
#   tests/bench/attack.sh                   # 30 s per server, 6000 connections, 200 sources
#   SECONDS_PER=10 SERVERS="certzone knot" tests/bench/attack.sh
#
# Knobs: SERVERS (subset of "certzone knot bind"), SECONDS_PER (attack length, 30),
# CONNECTIONS (6000), SOURCES (200), CERTZONE (binary; default: cargo build --release),
# KEEP=1 (keep the work directory). Writes target/bench/attack.txt. Runs in a private
# network namespace (addresses 127.0.9.x); needs knotd, named, kdig, openssl, python3.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

SERVERS=${SERVERS:-certzone knot bind}
SECONDS_PER=${SECONDS_PER:-30}
CONNECTIONS=${CONNECTIONS:-6000}
SOURCES=${SOURCES:-200}
for knob in SECONDS_PER CONNECTIONS SOURCES; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive integer, not '${!knob}'"
done
for s in $SERVERS; do
  [[ " certzone knot bind " == *" $s "* ]] || die "unknown server '$s' (known: certzone knot bind)"
done
PATH=$PATH:/usr/sbin:/sbin
PY=/usr/bin/python3
for tool in knotd named kdig openssl; do
  command -v "$tool" >/dev/null || die "missing $tool (tests/setup.sh installs it)"
done

if [[ " $SERVERS " == *" certzone "* ]] && [ -z "${CERTZONE:-}" ]; then
  (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
  CERTZONE=$root/target/release/certzone
fi

if [ -z "${CERTZONE_BENCH_IN_NETNS:-}" ]; then
  if [ "$(id -u)" = 0 ]; then ns=(unshare --net); else ns=(unshare --map-root-user --net); fi
  export CERTZONE SERVERS SECONDS_PER CONNECTIONS SOURCES KEEP CERTZONE_BENCH_IN_NETNS=1
  exec "${ns[@]}" -- bash "${BASH_SOURCE[0]}" "$@"
fi
ip link set lo up || die "cannot bring lo up in the network namespace"
for i in 1 2 3; do
  ip addr add "127.0.9.$i/32" dev lo 2>/dev/null || true
done
ulimit -n "$(ulimit -Hn)"

declare -A IP=([certzone]=127.0.9.1 [knot]=127.0.9.2 [bind]=127.0.9.3)
declare -A TRANSPORTS=([certzone]="tcp dot doh" [knot]="tcp" [bind]="tcp dot doh")
DNS_PORT=5300
DOT_PORT=8530
DOH_PORT=4430
CERT_NAME=ns1.example.test
bench_workdir attack
cp "$root/zones/example.test.zone" "$work/example.test.zone"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench attack CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null ||
  die "openssl: cannot make the CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$CERT_NAME" \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null || die "openssl: cannot make the key"
printf 'subjectAltName = DNS:%s\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n' \
  "$CERT_NAME" >"$work/tls.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/tls.ext" -out "$work/tls.pem" 2>/dev/null ||
  die "openssl: cannot sign the certificate"
chmod 600 "$work/ca.key" "$work/tls.key"

start_certzone() {
  local ip=${IP[certzone]}
  cat >"$work/certzone.toml" <<EOF
state-dir = "certzone-state"
[listen]
tcp = ["$ip:$DNS_PORT"]
udp = ["$ip:$DNS_PORT"]
tls = ["$ip:$DOT_PORT"]
https = ["$ip:$DOH_PORT"]
[tls]
names = ["$CERT_NAME"]
source = "files"
cert-file = "$work/tls.pem"
key-file = "$work/tls.key"
[[zone]]
name = "example.test."
file = "$work/example.test.zone"
EOF
  "$CERTZONE" run --config "$work/certzone.toml" >"$work/certzone.log" 2>&1 &
  PID=$!
}

start_knot() {
  local ip=${IP[knot]}
  mkdir -p "$work/knot"
  cat >"$work/knot.conf" <<EOF
server:
    rundir: "$work/knot"
    listen: $ip@$DNS_PORT
log:
  - target: stderr
    any: warning
database:
    storage: "$work/knot"
template:
  - id: default
    storage: "$work/knot"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: example.test
    file: "$work/example.test.zone"
EOF
  knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
  PID=$!
}

start_bind() {
  local ip=${IP[bind]}
  mkdir -p "$work/bind"
  cat >"$work/named.conf" <<EOF
tls attack-tls { cert-file "$work/tls.pem"; key-file "$work/tls.key"; };
http attack-http { endpoints { "/dns-query"; }; };
options {
  directory "$work/bind";
  pid-file "$work/bind/named.pid";
  session-keyfile "$work/bind/session.key";
  listen-on port $DNS_PORT { $ip; };
  listen-on port $DOT_PORT tls attack-tls { $ip; };
  listen-on port $DOH_PORT tls attack-tls http attack-http { $ip; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
zone "example.test" { type primary; file "$work/example.test.zone"; };
EOF
  named -g -c "$work/named.conf" >"$work/bind.log" 2>&1 &
  PID=$!
}

# ask SERVER TRANSPORT: one kdig query with a 1 s timeout; succeeds if answered right.
ask() {
  local how=()
  case $2 in
    tcp) how=(-p "$DNS_PORT" +tcp) ;;
    dot) how=(-p "$DOT_PORT" +tls +tls-ca="$work/ca.pem" +tls-hostname="$CERT_NAME") ;;
    doh) how=(-p "$DOH_PORT" +https +tls-ca="$work/ca.pem" +tls-hostname="$CERT_NAME") ;;
  esac
  [ "$(kdig @"${IP[$1]}" "${how[@]}" +timeout=1 +retry=0 +short www.example.test A 2>/dev/null)" = 192.0.2.10 ]
}

# probe SERVER SECONDS OUT: asks every transport of SERVER once a second; OUT gets one
# "transport ok|miss" line per question.
probe() {
  local s=$1 secs=$2 out=$3 tr t0 i pids
  : >"$out"
  for ((i = 0; i < secs; i++)); do
    t0=$(now)
    pids=()
    for tr in ${TRANSPORTS[$s]}; do
      { if ask "$s" "$tr"; then echo "$tr ok"; else echo "$tr miss"; fi; } >>"$out" &
      pids+=($!)
    done
    wait "${pids[@]}"
    sleep "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { d = 1 - (b - a); print (d > 0) ? d : 0 }')"
  done
}

# fraction OUT TRANSPORT: "answered/asked" for that transport.
fraction() {
  awk -v tr="$2" '$1 == tr { n++; if ($2 == "ok") a++ } END { printf "%d/%d", a, n }' "$1"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: work directory $work; load average $LOAD_START"
declare -A RESULT BASE
for s in $SERVERS; do
  "start_$s"
  track "$PID"
  pid=$PID
  for tr in ${TRANSPORTS[$s]}; do
    wait_until "$s to answer over $tr" 30 ask "$s" "$tr" || { tail -5 "$work/$s.log" >&2; die "$s did not start"; }
  done
  probe "$s" 5 "$work/$s-quiet.txt"
  targets=(--tcp "${IP[$s]}:$DNS_PORT")
  [[ " ${TRANSPORTS[$s]} " == *" dot "* ]] && targets+=(--tls "${IP[$s]}:$DOT_PORT")
  [[ " ${TRANSPORTS[$s]} " == *" doh "* ]] && targets+=(--tls "${IP[$s]}:$DOH_PORT")
  echo "bench: $s under attack for ${SECONDS_PER}s (${targets[*]})"
  "$PY" "$here/../attack/slow_clients.py" "${targets[@]}" --sources "$SOURCES" \
    --connections "$CONNECTIONS" --seconds $((SECONDS_PER + 3)) >"$work/$s-attack.txt" 2>&1 &
  attacker=$!
  sleep 3
  probe "$s" "$SECONDS_PER" "$work/$s-probes.txt"
  wait "$attacker" || true
  tail -1 "$work/$s-attack.txt"
  for tr in ${TRANSPORTS[$s]}; do
    RESULT[$s-$tr]=$(fraction "$work/$s-probes.txt" "$tr")
    BASE[$s-$tr]=$(fraction "$work/$s-quiet.txt" "$tr")
  done
  stop_pid "$pid"
  untrack "$pid"
done

report() {
  echo "Slow clients ($CONNECTIONS connections from $SOURCES loopback addresses, re-opened when closed),"
  echo "${SECONDS_PER} s per server, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores;" \
    "load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "answered within 1 s by kdig, one question per transport per second (without the attack: 5 s first)"
  printf '%-10s %-16s %-16s %-16s\n' server tcp dot doh
  local s tr row
  for s in $SERVERS; do
    row=$(printf '%-10s' "$s")
    for tr in tcp dot doh; do
      if [ -n "${RESULT[$s-$tr]:-}" ]; then
        row+=$(printf ' %-16s' "${RESULT[$s-$tr]} (${BASE[$s-$tr]})")
      else
        row+=$(printf ' %-16s' -)
      fi
    done
    echo "$row"
  done
  echo "certzone: $("$CERTZONE" --version 2>/dev/null || echo certzone), knot: $(knotd -V 2>&1 | head -1), bind: $(named -v)"
}
mkdir -p "$root/target/bench"
report | tee "$root/target/bench/attack.txt"
