#!/usr/bin/env bash
# ACME time to certificate: certzone against lego (DNS-01 by RFC 2136 updates to BIND 9), both
# ordering the same two names from ONE Pebble process, runs alternating certzone, lego, ...
#
#   tests/bench/acme.sh            # 5 runs a side after 1 uncounted warm-up run a side
#   RUNS=9 WARMUP=0 tests/bench/acme.sh
#
# certzone: from the moment the process is started to the moment its `certificate installed`
#   log line is read from its stderr (a fresh state-dir each run: new account, new key, new order).
# lego: wall time of `lego ... run` with a fresh --path (new account, new key, new order).
# Pebble asks one DNS server, 127.0.6.1:5300; that address is held by certzone during certzone
# runs and by a BIND started before each lego run (outside the timing) and stopped after it.
#
# Needs: bash 5, coreutils, util-linux (unshare), iproute2 (ip), openssl, pebble, named +
# tsig-keygen (bind9), dig (bind9-dnsutils), lego, and the release binary (built here with `cargo build --release` unless CERTZONE is set).
# Other knobs: TIMEOUT (seconds a run may take, default 60), KEEP=1 (keep the work directory).
# The table is also written to target/bench/acme.txt. Exit status 1 if any run got no certificate.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 or later (EPOCHREALTIME)"
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
TIMEOUT=${TIMEOUT:-60}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer, not '$WARMUP'"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be a positive integer, not '$TIMEOUT'"

PATH=$PATH:/usr/sbin:/sbin
for tool in pebble named tsig-keygen dig lego openssl timeout awk ip; do
  command -v "$tool" >/dev/null ||
    die "missing '$tool' (packages: pebble bind9 bind9-utils bind9-dnsutils lego openssl iproute2)"
done

if [ -z "${CERTZONE:-}" ]; then
  (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
  CERTZONE=$root/target/release/certzone
fi
[ -x "$CERTZONE" ] || die "no certzone binary at $CERTZONE"

# BIND listens only on addresses an interface carries, and the host's lo carries 127.0.0.1
# alone: unless 127.0.6.1 is already on lo, the script re-runs itself in a private network
# namespace (unshare; -r maps a non-root user to root there) whose lo gets 127.0.6.1. It also
# keeps the runs clear of anyone else's sockets on this machine. Timings are unaffected.
if [ -z "${CERTZONE_BENCH_IN_NETNS:-}" ] && ! ip -4 -o addr show dev lo | grep -q ' 127\.0\.6\.1/'; then
  command -v unshare >/dev/null || die "missing 'unshare' (util-linux) to make a network namespace"
  command -v ip >/dev/null || die "missing 'ip' (iproute2) to set up the namespace's loopback"
  if [ "$(id -u)" = 0 ]; then ns=(unshare --net); else ns=(unshare --map-root-user --net); fi
  export CERTZONE CERTZONE_BENCH_IN_NETNS=1 RUNS WARMUP TIMEOUT
  exec "${ns[@]}" -- bash "${BASH_SOURCE[0]}" "$@"
fi
if [ -n "${CERTZONE_BENCH_IN_NETNS:-}" ]; then
  ip link set lo up || die "cannot bring lo up in the network namespace"
  ip -4 -o addr show dev lo | grep -q ' 127\.0\.6\.1/' ||
    ip addr add 127.0.6.1/32 dev lo || die "cannot add 127.0.6.1 to lo in the network namespace"
fi

DNS_IP=127.0.6.1 # certzone or BIND, whichever side is running
DNS_PORT=5300
DOT_PORT=8530 # certzone's TLS listener, where its new certificate is checked
PEBBLE_IP=127.0.6.100
NAMES=(example.test www.example.test)
DIRECTORY=https://$PEBBLE_IP:14000/dir

bench_workdir acme

# --- the zone both servers serve -------------------------------------------------------------
cat >"$work/example.test.zone" <<EOF
\$ORIGIN example.test.
\$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
@    IN NS  ns1.example.test.
ns1  IN A   $DNS_IP
@    IN A   $DNS_IP
www  IN A   $DNS_IP
EOF

# --- Pebble, started once for every run ------------------------------------------------------
mkdir "$work/pebble"
make_https_cert "$work/pebble" "$PEBBLE_IP"
HTTPS_CA=$work/pebble/https-ca.pem
cat >"$work/pebble/pebble.json" <<EOF
{"pebble": {
  "listenAddress": "$PEBBLE_IP:14000",
  "managementListenAddress": "$PEBBLE_IP:15000",
  "certificate": "$work/pebble/https.pem",
  "privateKey": "$work/pebble/https.key",
  "httpPort": 5002,
  "tlsPort": 5001,
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false
}}
EOF
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
  pebble -config "$work/pebble/pebble.json" -dnsserver "$DNS_IP:$DNS_PORT" \
  >"$work/pebble/pebble.log" 2>&1 &
PEBBLE_PID=$!
track "$PEBBLE_PID"
pebble_up() { [ "$(https_get_status "$PEBBLE_IP" 14000 /dir "$HTTPS_CA")" = 200 ]; }
wait_until "Pebble's directory at $DIRECTORY" 30 pebble_up ||
  { tail -20 "$work/pebble/pebble.log" >&2; exit 1; }
# The root Pebble issues under, new at each start: every certificate is verified against it.
printf 'GET /roots/0 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$PEBBLE_IP" |
  timeout 5 openssl s_client -quiet -connect "$PEBBLE_IP:15000" -CAfile "$HTTPS_CA" \
    -verify_return_error 2>/dev/null |
  sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' >"$work/pebble/root.pem"
grep -q 'BEGIN CERTIFICATE' "$work/pebble/root.pem" || die "cannot fetch Pebble's root (/roots/0)"
PEBBLE_ROOT=$work/pebble/root.pem

expected_names=$(printf '%s\n' "${NAMES[@]}" | sort)

# --- BIND and its TSIG key, for lego -----------------------------------------------------------
tsig-keygen -a hmac-sha256 bench-key >"$work/bench-key.conf"
TSIG_SECRET=$(awk -F'"' '/secret/ { print $2 }' "$work/bench-key.conf")
[ -n "$TSIG_SECRET" ] || die "tsig-keygen printed no secret"

bind_up() {
  dig +short +tries=1 +time=1 -p "$DNS_PORT" @"$DNS_IP" example.test SOA 2>/dev/null |
    grep -q '^ns1\.example\.test\. '
}

# start_bind DIR: a fresh primary for example.test (the zone copied anew: no journal from an
# earlier run), updates allowed for TXT with bench-key. Sets BIND_PID.
start_bind() {
  local d=$1
  mkdir -p "$d"
  cp "$work/example.test.zone" "$d/example.test.zone"
  cat >"$d/named.conf" <<EOF
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  listen-on port $DNS_PORT { $DNS_IP; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
include "$work/bench-key.conf";
zone "example.test" {
  type primary;
  file "$d/example.test.zone";
  update-policy { grant bench-key zonesub TXT; };
};
EOF
  named -g -c "$d/named.conf" >"$d/named.log" 2>&1 &
  BIND_PID=$!
  track "$BIND_PID"
  if ! wait_until "BIND to answer example.test SOA at $DNS_IP:$DNS_PORT" 20 bind_up; then
    tail -20 "$d/named.log" >&2
    stop_pid "$BIND_PID"
    untrack "$BIND_PID"
    return 1
  fi
}

# --- one run of each side ----------------------------------------------------------------------
# Each sets RESULT to its time in ms, or fails having said why on stderr. (Not run in $( ):
# a subshell would hide the processes it starts from the EXIT trap.)

# Reads certzone's stderr: keeps it, and stamps the moment the certificate line arrives.
stamp_reader() {
  local d=$1 line stamped=0
  while IFS= read -r line; do
    if [ "$stamped" = 0 ] && [[ $line == *"certificate installed"* ]]; then
      printf '%s\n' "$EPOCHREALTIME" >"$d/installed-at.tmp"
      mv "$d/installed-at.tmp" "$d/installed-at"
      stamped=1
    fi
    printf '%s\n' "$line" >>"$d/stderr.log"
  done
}

run_certzone() {
  local d=$1 t0 pid
  mkdir -p "$d"
  cp "$work/example.test.zone" "$d/example.test.zone"
  cp "$HTTPS_CA" "$d/pebble-https-ca.pem"
  cat >"$d/certzone.toml" <<EOF
state-dir = "state"
[listen]
udp = ["$DNS_IP:$DNS_PORT"]
tcp = ["$DNS_IP:$DNS_PORT"]
tls = ["$DNS_IP:$DOT_PORT"]
[tls]
names = [$(printf '"%s", ' "${NAMES[@]}" | sed 's/, $//')]
source = "acme"
[acme]
directory = "$DIRECTORY"
ca-roots = ["pebble-https-ca.pem"]
[[zone]]
name = "example.test."
file = "example.test.zone"
EOF
  t0=$EPOCHREALTIME
  "$CERTZONE" run --config "$d/certzone.toml" >"$d/stdout.log" 2> >(stamp_reader "$d") &
  pid=$!
  track "$pid"
  certzone_done() { [ -e "$d/installed-at" ] || ! kill -0 "$pid" 2>/dev/null; }
  if ! wait_until "certzone ($d) to log 'certificate installed'" "$TIMEOUT" certzone_done ||
    [ ! -e "$d/installed-at" ]; then
    stop_pid "$pid"
    untrack "$pid"
    echo "bench: certzone got no certificate; its log ($d/stderr.log) ends:" >&2
    tail -15 "$d/stderr.log" >&2 || true
    return 1
  fi
  # Outside the timing: the served certificate chains to Pebble's root and has both names.
  local served
  served=$(timeout 5 openssl s_client -connect "$DNS_IP:$DOT_PORT" -servername "${NAMES[0]}" \
    -CAfile "$PEBBLE_ROOT" -verify_hostname "${NAMES[0]}" -verify_return_error \
    </dev/null 2>/dev/null | sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p')
  stop_pid "$pid"
  untrack "$pid"
  if [ -z "$served" ] || [ "$(san_names <<<"$served")" != "$expected_names" ]; then
    echo "bench: certzone's TLS listener does not serve a Pebble certificate for ${NAMES[*]}" >&2
    return 1
  fi
  RESULT=$(ms_between "$t0" "$(<"$d/installed-at")")
}

run_lego() {
  local d=$1 t0 t1 rc=0
  start_bind "$d/bind" || return 1
  local args=(--accept-tos --email bench@example.test --server "$DIRECTORY" --path "$d/lego"
    --dns rfc2136 --dns.disable-cp --dns.resolvers "$DNS_IP:$DNS_PORT")
  local name
  for name in "${NAMES[@]}"; do args+=(--domains "$name"); done
  # In the background and waited for, so that a signal reaches the EXIT trap at once.
  local pid
  t0=$EPOCHREALTIME
  RFC2136_NAMESERVER=$DNS_IP:$DNS_PORT \
    RFC2136_TSIG_KEY=bench-key RFC2136_TSIG_SECRET=$TSIG_SECRET \
    RFC2136_TSIG_ALGORITHM=hmac-sha256. \
    RFC2136_SEQUENCE_INTERVAL=0 RFC2136_POLLING_INTERVAL=0 \
    LEGO_CA_CERTIFICATES=$HTTPS_CA \
    timeout "$TIMEOUT" lego "${args[@]}" run >"$d/lego.log" 2>&1 &
  pid=$!
  track "$pid"
  wait "$pid" || rc=$?
  t1=$EPOCHREALTIME
  untrack "$pid"
  stop_pid "$BIND_PID"
  untrack "$BIND_PID"
  local crt=$d/lego/certificates/${NAMES[0]}.crt
  if [ "$rc" != 0 ] || [ ! -s "$crt" ]; then
    [ "$rc" = 124 ] && echo "bench: timed out after ${TIMEOUT}s waiting for lego ($d)" >&2
    echo "bench: lego got no certificate (exit $rc); its log ($d/lego.log) ends:" >&2
    tail -15 "$d/lego.log" >&2
    return 1
  fi
  # Outside the timing: the certificate chains to Pebble's root and has both names.
  if ! openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$crt" "$crt" >/dev/null 2>&1 ||
    [ "$(san_names <"$crt")" != "$expected_names" ]; then
    echo "bench: lego's certificate ($crt) is not a Pebble certificate for ${NAMES[*]}" >&2
    return 1
  fi
  RESULT=$(ms_between "$t0" "$t1")
}

# --- the runs ----------------------------------------------------------------------------------
cz_times=()
lego_times=()
failed=0
echo "ACME time to certificate: certzone vs lego (rfc2136 -> BIND), one Pebble, names ${NAMES[*]}"
echo "runs: $RUNS a side, alternating, after $WARMUP uncounted warm-up run(s) a side"
for ((i = 1 - WARMUP; i <= RUNS; i++)); do
  if ((i < 1)); then label="warm-up $((i + WARMUP))"; else label="run $i"; fi
  if run_certzone "$work/certzone-$((i + WARMUP))"; then
    t=$RESULT
    printf '  certzone %-10s %10s ms\n' "$label" "$t"
    ((i >= 1)) && cz_times+=("$t")
  else
    printf '  certzone %-10s     FAILED\n' "$label"
    failed=1
  fi
  if run_lego "$work/lego-$((i + WARMUP))"; then
    t=$RESULT
    printf '  lego     %-10s %10s ms\n' "$label" "$t"
    ((i >= 1)) && lego_times+=("$t")
  else
    printf '  lego     %-10s     FAILED\n' "$label"
    failed=1
  fi
done

# --- the table ---------------------------------------------------------------------------------
version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
read -r cz_min cz_med cz_max <<<"$(stats "${cz_times[@]}")"
read -r lg_min lg_med lg_max <<<"$(stats "${lego_times[@]}")"
ratio=$(awk -v l="$lg_med" -v c="$cz_med" 'BEGIN { if (c > 0 && l > 0) printf "%.1f", l / c; else print "-" }')
goal=$(awk -v r="$ratio" 'BEGIN { if (r == "-") print "unknown"; else if (r >= 10) print "met"; else print "NOT met" }')
mkdir -p "$root/target/bench"
{
  echo "ACME time to certificate ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo "machine: $(uname -sr), ${cpu:-unknown CPU}, $(nproc) cores"
  echo "pebble $(version pebble), lego $(version lego), bind9 $(version bind9), certzone $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "names: ${NAMES[*]}; $RUNS runs a side, alternating; times in ms"
  printf '%-9s %5s %9s %9s %9s   %s\n' side runs min median max "each run"
  printf '%-9s %5s %9s %9s %9s   %s\n' certzone "${#cz_times[@]}" "$cz_min" "$cz_med" "$cz_max" "${cz_times[*]:-}"
  printf '%-9s %5s %9s %9s %9s   %s\n' lego "${#lego_times[@]}" "$lg_min" "$lg_med" "$lg_max" "${lego_times[*]:-}"
  echo "ratio lego median / certzone median: ${ratio}x (goal: at least 10x; $goal)"
} | tee "$root/target/bench/acme.txt"

if [ "$failed" != 0 ]; then
  echo "bench: at least one run got no certificate" >&2
  exit 1
fi
