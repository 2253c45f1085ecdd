#!/usr/bin/env bash
# Propagation to N workers: how long a change at the primary takes to reach ALL of N
# secondaries, for N = 1, 5, 10, 20, certzone against BIND 9 and Knot DNS, in one run.
#
#   tests/bench/propagation.sh                  # 3 runs per N per system, after 1 warm-up each
#   RUNS=5 NS="1 20" tests/bench/propagation.sh
#
# certzone: a master (127.0.0.1, DNS 5500, DoT 8550, [tls] source = "files") and N workers
#   (127.0.0.2.., [tls] source = "certificate-zone", each with its own sealing key). A run:
#   new leaf for ns1.example.test in the master's PEM files (written, then renamed), then
#   SIGHUP to the master; time = SIGHUP -> every worker's DoT listener presents the new leaf
#   (SHA-256 of the leaf of a fresh, verified handshake). Also shown, labelled "log": SIGHUP ->
#   the last worker's `certificate installed from the certificate zone` log line.
# BIND -> BIND: a BIND 9 primary (127.0.0.1:5600, also-notify to every secondary, TSIG on
#   NOTIFY and transfers) and N `named` secondaries (127.0.0.2..:5600).
# BIND -> Knot: the same primary setup (127.0.0.1:5700) and N `knotd` secondaries
#   (127.0.0.2..:5700).
# Knot -> Knot: a `knotd` primary (127.0.0.1:5800, notify to every secondary, TSIG) and N
#   `knotd` secondaries (127.0.0.2..:5800). A run of any of the three: the zone file rewritten
#   (serial + 1, a new TXT probe.example.test) and renamed into place, then SIGHUP to the
#   primary; time = SIGHUP -> every secondary answers the new TXT over UDP.
# Each primary's CPU time (user + system, from /proc) over each run, and its peak RSS over the
#   runs (VmHWM, reset through /proc/PID/clear_refs after start-up), are shown beside it, and
#   the CPU time of all N secondaries together over each run (the probe's work on them too).
# COMBINED=RECORDS (e.g. 1000000): the third curve instead. certzone only, N = NS: the master
#   also serves big.test, RECORDS records (zone_gen.py), which every worker replicates. A run
#   rewrites big.test (serial + 1) and sends SIGHUP; once the master serves the new serial
#   (NOTIFY is out, every worker starts its transfer), a new leaf and a second SIGHUP: time =
#   that SIGHUP -> every worker presents the new leaf over DoT. The transfers' end (every
#   worker answering the new big.test serial, from the same moment) is shown beside it.
# The trigger and the polling are done by one process (propagation_probe.py): it probes every
# target once (warm-up), takes t0, sends SIGHUP, and polls all targets in parallel, each again
# 2 ms after a miss, until each shows the new state. The TLS probe reads the leaf from a TLS 1.2
# server hello (no client crypto, see the helper); after each timed run a complete, verified
# TLS 1.3 handshake with every worker must show the new leaf too (outside the timing).
# For each N the three systems run side by side, runs alternating certzone, BIND, Knot, ...
#
# Runs in a private network namespace (unshare --net) whose lo carries 127.0.0.1..(max N + 1):
# named listens only on addresses an interface carries, and nobody else's sockets interfere.
#
# Needs: bash 5, coreutils, util-linux (unshare), iproute2 (ip), openssl, python3, named
# (bind9), tsig-keygen (bind9-utils), knotd (knot), and the release binary (built here with
# `cargo build --release` unless CERTZONE is set). Other knobs: NS (default "1 5 10 20"),
# COMBINED (see above), ONLY=certzone (no peers: for profiling a worker or the master),
# WARMUP (uncounted runs per N per system, default 1), TIMEOUT (seconds one run may take,
# default 30), POLL_MS (pause after a miss, default 2), KEEP=1 (keep the work directory),
# PROBE_DEBUG=1 (each run's probe line on stderr: how many probes it sent, each target's time).
# The table is also written to target/bench/propagation.txt. Exit status 1 if any run failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 or later (EPOCHREALTIME)"
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
TIMEOUT=${TIMEOUT:-30}
POLL_MS=${POLL_MS:-2}
NS=${NS:-1 5 10 20}
COMBINED=${COMBINED:-}
[[ -z $COMBINED || $COMBINED =~ ^[1-9][0-9]*$ ]] || die "COMBINED must be a record count, not '$COMBINED'"
if [ -n "$COMBINED" ]; then SYSTEMS=(certzone); else SYSTEMS=(certzone bind knot knotknot); fi
if [ "${ONLY:-}" = certzone ]; then SYSTEMS=(certzone); else [ -z "${ONLY:-}" ] || die "ONLY may only be 'certzone', not '$ONLY'"; fi
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer, not '$WARMUP'"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be a positive integer, not '$TIMEOUT'"
[[ $POLL_MS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "POLL_MS must be a number, not '$POLL_MS'"
read -r -a NLIST <<<"$NS"
[ "${#NLIST[@]}" -gt 0 ] || die "NS names no N"
MAXN=0
for n in "${NLIST[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= 200)) || die "each N must be 1..200, not '$n'"
  ((n > MAXN)) && MAXN=$n
done

PATH=$PATH:/usr/sbin:/sbin
for tool in named tsig-keygen knotd openssl python3 timeout awk ip unshare; do
  command -v "$tool" >/dev/null ||
    die "missing '$tool' (packages: bind9 bind9-utils knot openssl python3 iproute2 util-linux)"
done

bench_certzone "$root"

# Always in a private network namespace: 127.0.0.2.. must be on lo for named, and the host's
# lo is shared with whatever else runs on this machine.
bench_netns "${BASH_SOURCE[0]}" RUNS WARMUP TIMEOUT POLL_MS NS COMBINED -- "$@"
for ((i = 2; i <= MAXN + 1; i++)); do
  ip addr add "127.0.0.$i/32" dev lo 2>/dev/null ||
    ip -4 -o addr show dev lo | grep -q " 127\.0\.0\.$i/" ||
    die "cannot add 127.0.0.$i to lo in the network namespace"
done

MASTER_IP=127.0.0.1
CZ_DNS=5500
CZ_DOT=8550
BIND_PORT=5600 # BIND primary and BIND secondaries
KNOT_PORT=5700 # BIND primary and Knot secondaries
KK_PORT=5800   # Knot primary and Knot secondaries
NAME=ns1.example.test
PROBE=(python3 "$here/propagation_probe.py")
worker_ip() { echo "127.0.0.$(($1 + 2))"; }

bench_workdir propagation

# --- keys shared by every N ------------------------------------------------------------------
mkdir "$work/keys"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench propagation CA" -keyout "$work/keys/ca.key" -out "$work/keys/ca.pem" \
  2>/dev/null || die "openssl: cannot make the CA"
printf 'subjectAltName = DNS:%s\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n' \
  "$NAME" >"$work/keys/leaf.ext"
"$CERTZONE" keygen signing --out "$work/keys/signing.pem" >/dev/null ||
  die "certzone keygen signing failed"
"$CERTZONE" keygen tsig transfer --out "$work/keys/transfer.key" >/dev/null ||
  die "certzone keygen tsig failed"
for ((i = 0; i < MAXN; i++)); do
  "$CERTZONE" keygen worker --out "$work/keys/worker$i.key" >/dev/null ||
    die "certzone keygen worker failed"
done
tsig-keygen -a hmac-sha256 bench-key >"$work/keys/bench-key.conf"
TSIG_SECRET=$(awk -F'"' '/secret/ { print $2 }' "$work/keys/bench-key.conf")
[ -n "$TSIG_SECRET" ] || die "tsig-keygen printed no secret"

# new_leaf DIR: a fresh key and leaf for $NAME signed by the CA, renamed into DIR/tls.{key,pem};
# prints the leaf's SHA-256 (hex, lower case).
LEAF_SEQ=0
new_leaf() {
  local d=$1 t=$work/keys/leaf-$((++LEAF_SEQ))
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$NAME" \
    -keyout "$t.key" -out "$t.csr" 2>/dev/null || die "openssl: cannot make a leaf key"
  openssl x509 -req -in "$t.csr" -CA "$work/keys/ca.pem" -CAkey "$work/keys/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/keys/leaf.ext" -out "$t.pem" 2>/dev/null ||
    die "openssl: cannot sign a leaf"
  cp "$t.key" "$d/tls.key.new" && cp "$t.pem" "$d/tls.pem.new"
  mv "$d/tls.key.new" "$d/tls.key" && mv "$d/tls.pem.new" "$d/tls.pem"
  openssl x509 -in "$t.pem" -outform DER | sha256sum | awk '{ print $1 }'
}

# zone_file FILE SERIAL TOKEN: example.test with TXT probe.example.test = TOKEN, written to a
# temporary name and renamed into place.
zone_file() {
  cat >"$1.new" <<EOF
\$ORIGIN example.test.
\$TTL 300
@     IN SOA ns1.example.test. hostmaster.example.test. $2 3600 600 86400 60
@     IN NS  ns1.example.test.
ns1   IN A   $MASTER_IP
probe IN TXT "$3"
EOF
  mv "$1.new" "$1"
}

# start_logged DIR NAME COMMAND...: starts COMMAND with stdout/stderr in DIR/NAME.log; sets PID.
start_logged() {
  local d=$1 name=$2
  shift 2
  "$@" >"$d/$name.log" 2>&1 &
  PID=$!
  track "$PID"
}

# probe MODE ARGS...: runs propagation_probe.py; sets PROBE_OUT to its line (t0=... total_ms=...).
probe() {
  PROBE_OUT=$("${PROBE[@]}" "$@" --interval-ms "$POLL_MS") || return 1
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# cpu_ms PID: CPU time so far of the process's live threads, in ms (schedstat's nanoseconds:
# /proc/PID/stat counts in 10 ms ticks, coarser than one run).
cpu_ms() { cpu_ms_all "$1"; }
# cpu_ms_all PID...: the same, summed over several processes (every secondary of a system).
cpu_ms_all() {
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
    awk '{ t += $1 } END { printf "%.1f\n", t / 1e6 }'
}
# reset_peak PID: VmHWM starts again from the current RSS (the fan-out's peak, not start-up's).
reset_peak() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }
peak_mb() { awk '/^VmHWM/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

# big_zone FILE SERIAL: the COMBINED zone big.test, $COMBINED records, renamed into place.
big_zone() {
  python3 "$here/zone_gen.py" big.test "$COMBINED" "$2" >"$1.new" && mv "$1.new" "$1"
}

# --- certzone ------------------------------------------------------------------------------
# cz_start DIR N: master + N workers; waits until every worker serves the master's leaf.
cz_start() {
  local d=$1 n=$2 i ip notify="" workers=""
  mkdir -p "$d"
  cp "$work/keys/signing.pem" "$work/keys/signing.pem.pub" "$work/keys/transfer.key" \
    "$work/keys/ca.pem" "$d/"
  zone_file "$d/example.test.zone" 1 initial
  for ((i = 0; i < n; i++)); do
    ip=$(worker_ip "$i")
    cp "$work/keys/worker$i.key" "$work/keys/worker$i.key.pub" "$d/"
    workers+="[[certificate-zone.worker]]
name = \"worker$i\"
public-key = \"worker$i.key.pub\"
"
    notify+="${notify:+, }\"$ip:$CZ_DNS\""
  done
  cat >"$d/master.toml" <<EOF
state-dir = "master-state"

[listen]
udp = ["$MASTER_IP:$CZ_DNS"]
tcp = ["$MASTER_IP:$CZ_DNS"]
tls = ["$MASTER_IP:$CZ_DOT"]

[tls]
names = ["$NAME"]
source = "files"
cert-file = "tls.pem"
key-file = "tls.key"

[[zone]]
name = "example.test."
file = "example.test.zone"

[certificate-zone]
name = "_certzone.example.test."
signing-key = "signing.pem"
$workers
[transfer]
tsig-key-file = "transfer.key"
notify = [$notify]
EOF
  for ((i = 0; i < n; i++)); do
    ip=$(worker_ip "$i")
    cat >"$d/worker$i.toml" <<EOF
role = "worker"
state-dir = "worker$i-state"

[listen]
udp = ["$ip:$CZ_DNS"]
tcp = ["$ip:$CZ_DNS"]
tls = ["$ip:$CZ_DOT"]

[tls]
names = ["$NAME"]
source = "certificate-zone"

[primary]
address = "$MASTER_IP:$CZ_DNS"
tsig-key-file = "transfer.key"

[certificate-zone]
name = "_certzone.example.test."
signing-public-key = "signing.pem.pub"
sealing-key = "worker$i.key"

[[secondary]]
name = "example.test."
EOF
  done
  if [ -n "$COMBINED" ]; then
    big_zone "$d/big.test.zone" 1
    printf '\n[[zone]]\nname = "big.test."\nfile = "big.test.zone"\n' >>"$d/master.toml"
    for ((i = 0; i < n; i++)); do
      printf '\n[[secondary]]\nname = "big.test."\n' >>"$d/worker$i.toml"
    done
    BIG_SERIAL=1
  fi
  CZ_FP=$(new_leaf "$d")
  start_logged "$d" master "$CERTZONE" run --config "$d/master.toml"
  CZ_MASTER=$PID
  CZ_PIDS=("$PID")
  for ((i = 0; i < n; i++)); do
    start_logged "$d" "worker$i" "$CERTZONE" run --config "$d/worker$i.toml"
    CZ_PIDS+=("$PID")
  done
  CZ_TARGETS=()
  for ((i = 0; i < n; i++)); do CZ_TARGETS+=("$(worker_ip "$i"):$CZ_DOT"); done
  if ! probe tls --full --floor --timeout 30 --ca "$d/ca.pem" --name "$NAME" --sha256 "$CZ_FP" \
    "${CZ_TARGETS[@]}"; then
    echo "bench: certzone workers never served the first leaf; master log ends:" >&2
    tail -5 "$d/master.log" >&2
    return 1
  fi
  if [ -n "$COMBINED" ]; then big_serial_everywhere 1 300 >/dev/null || return 1; fi
}

# big_serial_everywhere SERIAL TIMEOUT [SINCE]: ms (from SINCE, default now) until every worker
# answers big.test's SOA with SERIAL.
big_serial_everywhere() {
  local since=${3:-$(now)} i ms last=0
  for ((i = 0; i < ${#CZ_TARGETS[@]}; i++)); do
    ms=$(python3 "$here/wait_soa.py" "$(worker_ip "$i")" "$CZ_DNS" big.test "$1" \
      --timeout "$2" --since "$since") ||
      { echo "bench: worker$i never served big.test serial $1" >&2; return 1; }
    last=$(awk -v a="$last" -v b="$ms" 'BEGIN { print (b > a) ? b : a }')
  done
  echo "$last"
}

# log_epochs: the epoch seconds of each certzone log line's leading RFC 3339 UTC timestamp.
log_epochs() {
  sed -n 's/^\([0-9-]*T[0-9:.]*\)Z.*/\1/p' | while IFS= read -r ts; do
    printf '%s.%s\n' "$(date -u -d "${ts%.*}" +%s)" "${ts#*.}"
  done
}

# cz_run DIR N: one renewal; sets RESULT (probe, ms) and LOG_RESULT (log lines, ms).
cz_run() {
  local d=$1 n=$2 fp t0 i last=0 e cpu0 wcpu0
  if [ -n "$COMBINED" ]; then
    # First big.test changes and the workers start transferring it; then the renewal.
    big_zone "$d/big.test.zone" $((++BIG_SERIAL))
    kill -HUP "$CZ_MASTER"
    python3 "$here/wait_soa.py" "$MASTER_IP" "$CZ_DNS" big.test "$BIG_SERIAL" \
      --timeout "$TIMEOUT" >/dev/null || { echo "bench: the master never served big.test serial $BIG_SERIAL" >&2; return 1; }
  fi
  fp=$(new_leaf "$d")
  cpu0=$(cpu_ms "$CZ_MASTER")
  wcpu0=$(cpu_ms_all "${CZ_PIDS[@]:1}")
  if ! probe tls --hup "$CZ_MASTER" --timeout "$TIMEOUT" --name "$NAME" --sha256 "$fp" \
    "${CZ_TARGETS[@]}"; then
    echo "bench: certzone: not every worker served the new leaf; see $d/*.log" >&2
    return 1
  fi
  CPU=$(awk -v a="$cpu0" -v b="$(cpu_ms "$CZ_MASTER")" 'BEGIN { printf "%.1f\n", b - a }')
  WCPU=$(awk -v a="$wcpu0" -v b="$(cpu_ms_all "${CZ_PIDS[@]:1}")" 'BEGIN { printf "%.1f\n", b - a }')
  RESULT=$(field total_ms "$PROBE_OUT")
  [ -n "${PROBE_DEBUG:-}" ] && echo "probe: $PROBE_OUT wcpu=$WCPU cpu=$CPU" | cut -c1-120 >&2
  t0=$(field t0 "$PROBE_OUT")
  BIG_DONE=-
  if [ -n "$COMBINED" ]; then
    BIG_DONE=$(big_serial_everywhere "$BIG_SERIAL" "$TIMEOUT" "$t0") || return 1
  fi
  # Outside the timing: a complete TLS 1.3 handshake with each worker, verified against the
  # CA for $NAME, presents the new leaf too.
  local timed=$PROBE_OUT
  if ! probe tls --full --floor --timeout 5 --ca "$d/ca.pem" --name "$NAME" --sha256 "$fp" \
    "${CZ_TARGETS[@]}"; then
    echo "bench: certzone: a verified TLS 1.3 handshake does not show the new leaf" >&2
    return 1
  fi
  PROBE_OUT=$timed
  LOG_RESULT=-
  for ((i = 0; i < n; i++)); do
    e=$(grep "certificate installed from the certificate zone" "$d/worker$i.log" |
      grep "$fp" | tail -1 | log_epochs)
    [ -n "$e" ] || { last=; break; }
    last=$(awk -v a="$last" -v b="$e" 'BEGIN { print (b > a) ? b : a }')
  done
  [ -n "$last" ] && LOG_RESULT=$(ms_between "$t0" "$last")
  CZ_LAST_FP=$fp
  cz_breakdown "$d" "$n" "$t0"
}

# last_epoch FILE PATTERN: epoch of the last line of FILE matching PATTERN (empty if none).
last_epoch() { grep -- "$2" "$1" | tail -1 | log_epochs; }

# cz_breakdown DIR N T0: BREAKDOWN = ms from SIGHUP to the master's and the workers' log lines
# of the run just done (for the workers: the last of them).
cz_breakdown() {
  local d=$1 n=$2 t0=$3 i e acc=0 inst=0 m_inst m_pub m_not
  m_inst=$(last_epoch "$d/master.log" "certzone::node[a-z:]*: certificate installed")
  m_pub=$(last_epoch "$d/master.log" "certificate zone published")
  m_not=$(last_epoch "$d/master.log" "sending NOTIFY zone=_certzone")
  for ((i = 0; i < n; i++)); do
    e=$(last_epoch "$d/worker$i.log" "NOTIFY accepted.*zone=_certzone")
    acc=$(awk -v a="$acc" -v b="${e:-0}" 'BEGIN { print (b > a) ? b : a }')
  done
  ms() { if [ -n "$1" ] && [ "$1" != 0 ]; then ms_between "$t0" "$1"; else echo -; fi; }
  BREAKDOWN="master installed $(ms "$m_inst"), published $(ms "$m_pub"), NOTIFY sent $(ms "$m_not"), last NOTIFY accepted $(ms "$acc")"
}

# --- BIND primary, BIND and Knot secondaries -----------------------------------------------------
# bind_primary DIR PORT N SECONDARY-PORT: a primary for example.test notifying N secondaries.
bind_primary() {
  local d=$1 port=$2 n=$3 sport=$4 i notify=""
  mkdir -p "$d"
  for ((i = 0; i < n; i++)); do notify+="$(worker_ip "$i") port $sport key bench-key; "; done
  zone_file "$d/example.test.zone" 1 initial
  cat >"$d/named.conf" <<EOF
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  listen-on port $port { $MASTER_IP; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify explicit;
  notify-source $MASTER_IP;
  notify-delay 0;
  notify-rate 1000;
  startup-notify-rate 1000;
  transfers-out 1000;
};
controls { };
include "$work/keys/bench-key.conf";
zone "example.test" {
  type primary;
  file "$d/example.test.zone";
  also-notify { $notify};
  allow-transfer { key bench-key; };
};
EOF
  start_logged "$d" named named -g -c "$d/named.conf"
}

# bind_secondary DIR IP PORT: a named secondary of example.test from 127.0.0.1:PORT.
bind_secondary() {
  local d=$1 ip=$2 port=$3
  mkdir -p "$d"
  cat >"$d/named.conf" <<EOF
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  listen-on port $port { $ip; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
  transfer-source $ip;
  query-source address $ip;
};
controls { };
include "$work/keys/bench-key.conf";
zone "example.test" {
  type secondary;
  primaries port $port { $MASTER_IP key bench-key; };
  file "$d/example.test.db";
  allow-notify { $MASTER_IP; };
};
EOF
  start_logged "$d" named named -g -c "$d/named.conf"
}

# knot_secondary DIR IP PORT: a knotd secondary of example.test from 127.0.0.1:PORT.
knot_secondary() {
  local d=$1 ip=$2 port=$3
  mkdir -p "$d"
  cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: $ip@$port
database:
    storage: "$d"
key:
  - id: bench-key
    algorithm: hmac-sha256
    secret: $TSIG_SECRET
remote:
  - id: primary
    address: $MASTER_IP@$port
    via: $ip
    key: bench-key
acl:
  - id: notify-from-primary
    address: $MASTER_IP
    key: bench-key
    action: notify
template:
  - id: default
    storage: "$d"
zone:
  - domain: example.test
    master: primary
    acl: notify-from-primary
EOF
  start_logged "$d" knotd knotd -c "$d/knot.conf"
}

# knot_primary DIR PORT N: a knotd primary for example.test notifying N knotd secondaries.
knot_primary() {
  local d=$1 port=$2 n=$3 i remotes="" notify=""
  mkdir -p "$d"
  zone_file "$d/example.test.zone" 1 initial
  for ((i = 0; i < n; i++)); do
    # via: NOTIFY from the primary's own address (the kernel would pick the secondary's).
    remotes+="  - id: sec$i
    address: $(worker_ip "$i")@$port
    via: $MASTER_IP
    key: bench-key
"
    notify+="${notify:+, }sec$i"
  done
  cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: $MASTER_IP@$port
database:
    storage: "$d"
key:
  - id: bench-key
    algorithm: hmac-sha256
    secret: $TSIG_SECRET
remote:
$remotes
acl:
  - id: transfer
    key: bench-key
    action: transfer
template:
  - id: default
    storage: "$d"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: example.test
    file: "$d/example.test.zone"
    notify: [$notify]
    acl: transfer
EOF
  start_logged "$d" knotd knotd -c "$d/knot.conf"
}

# dns_start SYSTEM DIR N: primary + N secondaries of SYSTEM (bind: BIND -> BIND, knot: BIND ->
# Knot, knotknot: Knot -> Knot); waits for serial 1.
# Sets DNS_PRIMARY_<SYSTEM> (pid), DNS_TARGETS_<SYSTEM> (ip:port list), SERIAL_<SYSTEM>.
dns_start() {
  local sys=$1 d=$2 n=$3 port i ip targets=() secs=()
  case $sys in
    bind) port=$BIND_PORT ;;
    knot) port=$KNOT_PORT ;;
    *) port=$KK_PORT ;;
  esac
  if [ "$sys" = knotknot ]; then
    knot_primary "$d/primary" "$port" "$n"
  else
    bind_primary "$d/primary" "$port" "$n" "$port"
  fi
  printf -v "DNS_PRIMARY_$sys" %s "$PID"
  wait_until "the $sys side's primary to answer at $MASTER_IP:$port" 20 \
    "${PROBE[@]}" dns --floor --timeout 1 --qname probe.example.test --token initial \
    "$MASTER_IP:$port" >/dev/null 2>&1 || { tail -5 "$d"/primary/*.log >&2; return 1; }
  for ((i = 0; i < n; i++)); do
    ip=$(worker_ip "$i")
    if [ "$sys" = bind ]; then bind_secondary "$d/sec$i" "$ip" "$port"; else
      knot_secondary "$d/sec$i" "$ip" "$port"
    fi
    targets+=("$ip:$port")
    secs+=("$PID")
  done
  eval "DNS_TARGETS_$sys=(\"\${targets[@]}\")"
  eval "DNS_SECS_$sys=(\"\${secs[@]}\")"
  printf -v "SERIAL_$sys" %s 1
  if ! probe dns --floor --timeout 60 --qname probe.example.test --token initial \
    "${targets[@]}"; then
    echo "bench: $sys secondaries never answered the first zone; see $d/sec*/" >&2
    return 1
  fi
}

# dns_run SYSTEM DIR LABEL: one zone change; sets RESULT (ms).
dns_run() {
  local sys=$1 d=$2 label=$3 serial token pidvar=DNS_PRIMARY_$1 serialvar=SERIAL_$1 cpu0 wcpu0
  local -n targets=DNS_TARGETS_$sys secs=DNS_SECS_$sys
  serial=$((${!serialvar} + 1))
  printf -v "$serialvar" %s "$serial"
  token="$label-$serial-$RANDOM"
  zone_file "$d/primary/example.test.zone" "$serial" "$token"
  cpu0=$(cpu_ms "${!pidvar}")
  wcpu0=$(cpu_ms_all "${secs[@]}")
  if ! probe dns --hup "${!pidvar}" --timeout "$TIMEOUT" --qname probe.example.test \
    --token "$token" "${targets[@]}"; then
    echo "bench: $sys: not every secondary answered serial $serial; see $d/" >&2
    return 1
  fi
  CPU=$(awk -v a="$cpu0" -v b="$(cpu_ms "${!pidvar}")" 'BEGIN { printf "%.1f\n", b - a }')
  WCPU=$(awk -v a="$wcpu0" -v b="$(cpu_ms_all "${secs[@]}")" 'BEGIN { printf "%.1f\n", b - a }')
  [ -n "${PROBE_DEBUG:-}" ] && echo "probe $sys: $PROBE_OUT wcpu=$WCPU cpu=$CPU" | cut -c1-120 >&2
  RESULT=$(field total_ms "$PROBE_OUT")
}

# --- the runs ------------------------------------------------------------------------------------
declare -A TIMES LOGTIMES FLOORS CPUS WCPUS PEAKS BIGS
failed=0
if [ -n "$COMBINED" ]; then
  echo "Renewal to N workers while every worker transfers big.test ($COMBINED records): certzone"
else
  echo "Propagation to N workers: certzone (certificate, DoT) vs BIND 9 -> BIND / Knot and Knot -> Knot (zone, UDP)"
fi
echo "N: ${NLIST[*]}; $RUNS runs per N per system, alternating, after $WARMUP uncounted warm-up(s)"
for n in "${NLIST[@]}"; do
  nd=$work/n$n
  echo "N=$n: starting ${SYSTEMS[*]} with $n secondaries each"
  cz_start "$nd/certzone" "$n" || { failed=1; bench_cleanup; continue; }
  ok=1
  for sys in "${SYSTEMS[@]:1}"; do dns_start "$sys" "$nd/$sys" "$n" || ok=0; done
  [ "$ok" = 1 ] || { failed=1; bench_cleanup; continue; }
  reset_peak "$CZ_MASTER"
  for sys in "${SYSTEMS[@]:1}"; do pv=DNS_PRIMARY_$sys; reset_peak "${!pv}"; done
  # Workers start transfers of one zone at least 1 s apart (README, replication): a run
  # sooner than that after the last transfer (at start-up, or the last run's) would time the
  # pacing, not the propagation. A run's transfers are over when it ends.
  last_cz=$(now)
  for ((r = 1 - WARMUP; r <= RUNS; r++)); do
    if ((r < 1)); then label="warm-up"; else label="run $r"; fi
    sleep "$(awk -v last="$last_cz" -v t="$(now)" 'BEGIN { w = last + 1.2 - t; print (w > 0 ? w : 0) }')"
    if cz_run "$nd/certzone" "$n"; then cz_ok=0; else cz_ok=1; fi
    last_cz=$(now)
    if [ "$cz_ok" = 0 ]; then
      printf '  N=%-3s certzone %-8s %8s ms  master CPU %5s ms  workers CPU %6s ms  (log: last installed %s; %s%s)\n' \
        "$n" "$label" "$RESULT" "$CPU" "$WCPU" "$LOG_RESULT" "$BREAKDOWN" \
        "${COMBINED:+; big.test everywhere $BIG_DONE ms}"
      if ((r >= 1)); then
        TIMES[$n,certzone]+="$RESULT " LOGTIMES[$n]+="$LOG_RESULT "
        CPUS[$n,certzone]+="$CPU " WCPUS[$n,certzone]+="$WCPU " BIGS[$n]+="$BIG_DONE "
      fi
    else
      printf '  N=%-3s certzone %-8s   FAILED\n' "$n" "$label"
      failed=1
    fi
    for sys in "${SYSTEMS[@]:1}"; do
      if dns_run "$sys" "$nd/$sys" "r$r"; then
        printf '  N=%-3s %-8s %-8s %8s ms  primary CPU %5s ms  secondaries CPU %6s ms\n' \
          "$n" "$sys" "$label" "$RESULT" "$CPU" "$WCPU"
        ((r >= 1)) && TIMES[$n,$sys]+="$RESULT " && CPUS[$n,$sys]+="$CPU " && WCPUS[$n,$sys]+="$WCPU "
      else
        printf '  N=%-3s %-8s %-8s   FAILED\n' "$n" "$sys" "$label"
        failed=1
      fi
    done
  done
  PEAKS[$n,certzone]=$(peak_mb "$CZ_MASTER")
  for sys in "${SYSTEMS[@]:1}"; do pv=DNS_PRIMARY_$sys; PEAKS[$n,$sys]=$(peak_mb "${!pv}"); done
  # The probes' own floor: every target already shows the new state.
  if probe tls --floor --timeout 5 --name "$NAME" --sha256 "$CZ_LAST_FP" "${CZ_TARGETS[@]}"; then
    FLOORS[$n,tls]=$(field total_ms "$PROBE_OUT")
  fi
  if [ "${#SYSTEMS[@]}" -gt 1 ] && probe dns --floor --timeout 5 --qname probe.example.test \
    --token "r$RUNS-$SERIAL_bind" "${DNS_TARGETS_bind[@]}"; then
    FLOORS[$n,dns]=$(field total_ms "$PROBE_OUT")
  fi
  bench_cleanup
done

# --- the table -----------------------------------------------------------------------------------
version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
median() { stats "$@" | awk '{ print $2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", a / b; else print "-" }'; }
# goal LABEL N LIMIT: "met" when certzone's median at N is within LIMIT ms.
goal() {
  local md
  [[ " ${NLIST[*]} " == *" $2 "* ]] || { echo "not measured (N=$2 not run)"; return; }
  # shellcheck disable=SC2086
  md=$(median ${TIMES[$2,certzone]:-})
  awk -v c="$md" -v l="$3" 'BEGIN { exit !(c != "-" && c <= l) }' && echo met || echo "NOT met"
}
goalfaster=met
mkdir -p "$root/target/bench"
out=$root/target/bench/propagation.txt
[ -n "$COMBINED" ] && out=$root/target/bench/combined.txt
{
  if [ -n "$COMBINED" ]; then
    echo "Renewal while every worker transfers a $COMBINED-record zone ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  else
    echo "Propagation to N workers ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  fi
  echo "machine: $(uname -sr), ${cpu:-unknown CPU}, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "bind9 $(version bind9), knot $(version knot), python3 $(python3 -c 'import platform; print(platform.python_version())'), certzone $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "$RUNS runs per N per system after $WARMUP warm-up(s), alternating; times in ms from SIGHUP to ALL N serving the change"
  echo "certzone: new leaf over DoT (probe); log = last worker's 'certificate installed' line"
  if [ -n "$COMBINED" ]; then
    echo "big.test: ms from SIGHUP until every worker answers big.test's new serial"
  else
    echo "bind/knot: BIND 9 primary -> N named / N knotd secondaries; knotknot: knotd primary -> N knotd; new TXT over UDP"
  fi
  echo "CPU ms: median ms of CPU (user + system) the primary used per run; sec CPU: the same for all N secondaries together (probe's queries included); peak: the primary's VmHWM over the runs, MB"
  printf '%-4s %-9s %8s %8s %8s %8s %8s %8s   %s\n' N system min median max "CPU ms" "sec CPU" "peak MB" "each run"
  for n in "${NLIST[@]}"; do
    for sys in "${SYSTEMS[@]}"; do
      # shellcheck disable=SC2086
      read -r mn md mx <<<"$(stats ${TIMES[$n,$sys]:-})"
      # shellcheck disable=SC2086
      printf '%-4s %-9s %8s %8s %8s %8s %8s %8s   %s\n' "$n" "$sys" "$mn" "$md" "$mx" \
        "$(median ${CPUS[$n,$sys]:-})" "$(median ${WCPUS[$n,$sys]:-})" "${PEAKS[$n,$sys]:--}" \
        "${TIMES[$n,$sys]:-}"
    done
    # shellcheck disable=SC2086
    read -r mn md mx <<<"$(stats ${LOGTIMES[$n]:-})"
    printf '%-4s %-9s %8s %8s %8s %8s %8s %8s   %s\n' "$n" "cz (log)" "$mn" "$md" "$mx" - - - "${LOGTIMES[$n]:-}"
    if [ -n "$COMBINED" ]; then
      # shellcheck disable=SC2086
      read -r mn md mx <<<"$(stats ${BIGS[$n]:-})"
      printf '%-4s %-9s %8s %8s %8s %8s %8s %8s   %s\n' "$n" "big.test" "$mn" "$md" "$mx" - - - "${BIGS[$n]:-}"
    fi
  done
  echo
  if [ -n "$COMBINED" ]; then
    for n in "${NLIST[@]}"; do
      echo "goal: certzone median at N=$n within 2000 ms while the workers transfer: $(goal c "$n" 2000)"
    done
  else
    printf '%-4s %10s %8s %8s %9s %14s %14s %17s %12s\n' N certzone bind knot knotknot \
      "bind/certzone" "knot/certzone" "knotknot/certzone" "probe floor"
    for n in "${NLIST[@]}"; do
      # shellcheck disable=SC2086
      cz=$(median ${TIMES[$n,certzone]:-})
      # shellcheck disable=SC2086
      bd=$(median ${TIMES[$n,bind]:-})
      # shellcheck disable=SC2086
      kn=$(median ${TIMES[$n,knot]:-})
      # shellcheck disable=SC2086
      kk=$(median ${TIMES[$n,knotknot]:-})
      printf '%-4s %10s %8s %8s %9s %14s %14s %17s %12s\n' "$n" "$cz" "$bd" "$kn" "$kk" \
        "$(ratio "$bd" "$cz")" "$(ratio "$kn" "$cz")" "$(ratio "$kk" "$cz")" \
        "${FLOORS[$n,tls]:--} / ${FLOORS[$n,dns]:--}"
      awk -v c="$cz" -v b="$bd" -v k="$kn" -v kk="$kk" \
        'BEGIN { exit !(c != "-" && b != "-" && k != "-" && kk != "-" && c < b && c < k && c < kk) }' ||
        goalfaster="NOT met"
    done
    echo "goal: certzone median at N=20 within 200 ms: $(goal c 20 200)"
    echo "goal: certzone median at N=100 within 300 ms: $(goal c 100 300)"
    echo "goal: certzone median below BIND->BIND's, BIND->Knot's and Knot->Knot's at every N: $goalfaster"
  fi
} | tee "$out"

if [ "$failed" != 0 ]; then
  echo "bench: at least one run failed" >&2
  exit 1
fi
