#!/usr/bin/env bash
# Time to certificate for other ACME clients using the cluster as their RFC 2136 server:
# lego (--dns rfc2136) and certbot (python3-certbot-dns-rfc2136), each against a certzone
# master with one worker, and against BIND 9 as the RFC 2136 server, in the same run.
#
#   tests/bench/update.sh            # 3 runs per client and server, after 1 uncounted warm-up
#   RUNS=5 WARMUP=0 tests/bench/update.sh
#
# One Pebble asks 127.0.18.2:5300 for every challenge. certzone side: the master on
# 127.0.18.1 takes the updates and the worker on 127.0.18.2 answers Pebble (as in a cluster:
# clients update the master, the CA asks any node). BIND side: BIND on 127.0.18.2 takes
# the updates and answers Pebble. Servers start before the timing and stop after it; each
# run is one client process with a fresh account and key, timed wall to wall.
# lego runs with --dns.disable-cp on both sides (its own check resolves the zone's NS
# names with the system resolver); certbot's plugin sleeps --dns-rfc2136-propagation-seconds
# (1 here) on both sides. certzone's master answers NOERROR once the worker serves the
# record ([update] wait-for-workers-ms), so the CA finds it on the worker.
#
# Needs: bash 5, coreutils, util-linux (unshare), iproute2, openssl, pebble, named +
# tsig-keygen (bind9), dig (bind9-dnsutils), lego, certbot + python3-certbot-dns-rfc2136.
# Knobs: TIMEOUT (seconds a run may take, default 120), KEEP=1. The table is also written
# to target/bench/update.txt. Exit status 1 if any run got no certificate.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 or later (EPOCHREALTIME)"
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
TIMEOUT=${TIMEOUT:-120}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer, not '$WARMUP'"

PATH=$PATH:/usr/sbin:/sbin
for tool in pebble named tsig-keygen dig lego certbot openssl timeout awk ip; do
  command -v "$tool" >/dev/null ||
    die "missing '$tool' (packages: pebble bind9 bind9-utils bind9-dnsutils lego certbot python3-certbot-dns-rfc2136)"
done

bench_certzone "$root"

MASTER_IP=127.0.18.1
ASKED_IP=127.0.18.2 # the worker, or BIND
PEBBLE_IP=127.0.18.100
PORT=5300
NAME=web.example.test
DIRECTORY=https://$PEBBLE_IP:14000/dir

# BIND listens only on addresses lo carries: run in a private network namespace whose lo
# carries them (as tests/bench/acme.sh does).
bench_netns "${BASH_SOURCE[0]}" RUNS WARMUP TIMEOUT -- "$@"
for a in $MASTER_IP $ASKED_IP $PEBBLE_IP; do ip addr add "$a/32" dev lo 2>/dev/null || true; done

bench_workdir update

cat >"$work/example.test.zone" <<EOF
\$ORIGIN example.test.
\$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
@    IN NS  ns1.example.test.
ns1  IN A   $ASKED_IP
web  IN A   192.0.2.80
EOF
tsig-keygen -a hmac-sha256 bench-key >"$work/bench-key.key"
tsig-keygen -a hmac-sha256 transfer >"$work/transfer.key"
SECRET=$(awk -F'"' '/secret/ { print $2 }' "$work/bench-key.key")
[ -n "$SECRET" ] || die "tsig-keygen printed no secret"

# --- Pebble ------------------------------------------------------------------------------------
mkdir "$work/pebble"
make_https_cert "$work/pebble" "$PEBBLE_IP"
HTTPS_CA=$work/pebble/https-ca.pem
cat >"$work/pebble/pebble.json" <<EOF
{"pebble": {"listenAddress": "$PEBBLE_IP:14000", "managementListenAddress": "$PEBBLE_IP:15000",
  "certificate": "$work/pebble/https.pem", "privateKey": "$work/pebble/https.key",
  "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
  pebble -config "$work/pebble/pebble.json" -dnsserver "$ASKED_IP:$PORT" \
  >"$work/pebble/pebble.log" 2>&1 &
track $!
pebble_up() { [ "$(https_get_status "$PEBBLE_IP" 14000 /dir "$HTTPS_CA")" = 200 ]; }
wait_until "Pebble's directory" 30 pebble_up || { tail -20 "$work/pebble/pebble.log" >&2; exit 1; }

# --- the servers -------------------------------------------------------------------------------
soa_at() { dig +short +tries=1 +time=1 -p "$PORT" @"$1" example.test SOA 2>/dev/null | grep -q '^ns1\.'; }
SERVER_PIDS=()

start_certzone() {
  local d=$1
  mkdir -p "$d"
  cp "$work/example.test.zone" "$work/bench-key.key" "$work/transfer.key" "$d/"
  cat >"$d/master.toml" <<EOF
state-dir = "master-state"
[listen]
udp = ["$MASTER_IP:$PORT"]
tcp = ["$MASTER_IP:$PORT"]
[[zone]]
name = "example.test."
file = "example.test.zone"
[transfer]
tsig-key-file = "transfer.key"
notify = ["$ASKED_IP:$PORT"]
[update]
[[update.key]]
tsig-key-file = "bench-key.key"
EOF
  cat >"$d/worker.toml" <<EOF
role = "worker"
state-dir = "worker-state"
[listen]
udp = ["$ASKED_IP:$PORT"]
tcp = ["$ASKED_IP:$PORT"]
[primary]
address = "$MASTER_IP:$PORT"
tsig-key-file = "transfer.key"
[[secondary]]
name = "example.test."
EOF
  "$CERTZONE" run --config "$d/master.toml" >"$d/master.log" 2>&1 &
  SERVER_PIDS=($!)
  track $!
  "$CERTZONE" run --config "$d/worker.toml" >"$d/worker.log" 2>&1 &
  SERVER_PIDS+=($!)
  track $!
  wait_until "the certzone worker to serve example.test" 20 soa_at "$ASKED_IP" ||
    { tail -5 "$d"/*.log >&2; return 1; }
  UPDATE_SERVER=$MASTER_IP
}

start_bind() {
  local d=$1
  mkdir -p "$d"
  cp "$work/example.test.zone" "$d/"
  cat >"$d/named.conf" <<EOF
options { directory "$d"; pid-file "$d/named.pid"; session-keyfile "$d/session.key";
  listen-on port $PORT { $ASKED_IP; }; listen-on-v6 { none; }; recursion no;
  dnssec-validation no; notify no; };
controls { };
include "$work/bench-key.key";
zone "example.test" { type primary; file "$d/example.test.zone";
  update-policy { grant bench-key zonesub TXT; }; };
EOF
  named -g -c "$d/named.conf" >"$d/named.log" 2>&1 &
  SERVER_PIDS=($!)
  track $!
  wait_until "BIND to serve example.test" 20 soa_at "$ASKED_IP" || { tail -5 "$d/named.log" >&2; return 1; }
  UPDATE_SERVER=$ASKED_IP
}

stop_servers() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; untrack "$pid"; done
  SERVER_PIDS=()
}

# --- the clients (each sets RESULT in ms and CERT) ---------------------------------------------
run_lego() {
  local d=$1 t0 rc=0
  t0=$EPOCHREALTIME
  RFC2136_NAMESERVER=$UPDATE_SERVER:$PORT RFC2136_TSIG_KEY=bench-key. \
    RFC2136_TSIG_SECRET=$SECRET RFC2136_TSIG_ALGORITHM=hmac-sha256. \
    RFC2136_SEQUENCE_INTERVAL=0 RFC2136_POLLING_INTERVAL=0 LEGO_CA_CERTIFICATES=$HTTPS_CA \
    timeout "$TIMEOUT" lego --accept-tos --email bench@example.test --server "$DIRECTORY" \
    --path "$d/lego" --dns rfc2136 --dns.disable-cp --dns.resolvers "$ASKED_IP:$PORT" \
    --domains "$NAME" run >"$d/client.log" 2>&1 || rc=$?
  RESULT=$(ms_between "$t0" "$EPOCHREALTIME")
  CERT=$d/lego/certificates/$NAME.crt
  return "$rc"
}

run_certbot() {
  local d=$1 t0 rc=0
  mkdir -p "$d"
  printf 'dns_rfc2136_server = %s\ndns_rfc2136_port = %s\ndns_rfc2136_name = bench-key.\ndns_rfc2136_secret = %s\ndns_rfc2136_algorithm = HMAC-SHA256\n' \
    "$UPDATE_SERVER" "$PORT" "$SECRET" >"$d/rfc2136.ini"
  chmod 600 "$d/rfc2136.ini"
  t0=$EPOCHREALTIME
  REQUESTS_CA_BUNDLE=$HTTPS_CA timeout "$TIMEOUT" certbot certonly --non-interactive \
    --agree-tos --register-unsafely-without-email --server "$DIRECTORY" \
    --config-dir "$d/config" --work-dir "$d/work" --logs-dir "$d/logs" \
    --authenticator dns-rfc2136 --dns-rfc2136-credentials "$d/rfc2136.ini" \
    --dns-rfc2136-propagation-seconds 1 -d "$NAME" >"$d/client.log" 2>&1 || rc=$?
  RESULT=$(ms_between "$t0" "$EPOCHREALTIME")
  CERT=$d/config/live/$NAME/cert.pem
  return "$rc"
}

# one CLIENT SERVER DIR: starts SERVER, runs CLIENT once, stops SERVER; RESULT or failure.
one() {
  local client=$1 server=$2 d=$3
  "start_$server" "$d/server" || return 1
  if ! "run_$client" "$d" || [ ! -s "$CERT" ] || [ "$(san_names <"$CERT")" != "$NAME" ]; then
    stop_servers
    echo "bench: $client against $server got no certificate; $d/client.log ends:" >&2
    tail -10 "$d/client.log" >&2
    return 1
  fi
  stop_servers
}

declare -A times
failed=0
echo "time to certificate for $NAME: each client against certzone (master + worker) and BIND 9"
echo "runs: $RUNS per client and server, alternating, after $WARMUP uncounted warm-up(s)"
for ((i = 1 - WARMUP; i <= RUNS; i++)); do
  for client in lego certbot; do
    for server in certzone bind; do
      if one "$client" "$server" "$work/$client-$server-$((i + WARMUP))"; then
        printf '  %-8s %-9s run %2s %10s ms\n' "$client" "$server" "$i" "$RESULT"
        ((i >= 1)) && times[$client-$server]+="$RESULT "
      else
        printf '  %-8s %-9s run %2s     FAILED\n' "$client" "$server" "$i"
        failed=1
      fi
    done
  done
done

version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
mkdir -p "$root/target/bench"
{
  echo "RFC 2136 time to certificate ($(date -u '+%Y-%m-%d %H:%M UTC')), $(nproc) cores"
  echo "lego $(version lego), certbot $(version certbot), bind9 $(version bind9), pebble $(version pebble), certzone $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
  printf '%-8s %-9s %9s %9s %9s   %s\n' client server min median max "each run (ms)"
  for client in lego certbot; do
    for server in certzone bind; do
      # shellcheck disable=SC2086
      read -r mn md mx <<<"$(stats ${times[$client-$server]:-})"
      printf '%-8s %-9s %9s %9s %9s   %s\n' "$client" "$server" "$mn" "$md" "$mx" "${times[$client-$server]:-}"
      eval "med_${client}_$server=$md"
    done
    ratio=$(eval "awk -v b=\"\$med_${client}_bind\" -v c=\"\$med_${client}_certzone\" 'BEGIN { if (b > 0 && c > 0) printf \"%.2f\", b / c; else print \"-\" }'")
    echo "$client: BIND median / certzone median = ${ratio}x (above 1: certzone faster)"
  done
} | tee "$root/target/bench/update.txt"
[ "$failed" = 0 ] || { echo "bench: at least one run got no certificate" >&2; exit 1; }
