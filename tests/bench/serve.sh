#!/usr/bin/env bash
# Serving speed: certzone against Knot DNS, NSD, BIND 9, the hickory-dns binary and dnsdist,
# the same zone and the same queries, measured side by side in one run (issue 7).
#
#   tests/bench/serve.sh                       # 2 runs, 10 s per measurement, every server
#   RUNS=1 DURATION=3 SERVERS="certzone knot" tests/bench/serve.sh
#
# Every server gets the same ~1,000-record zone (A, AAAA, TXT, MX, CNAME) on its own address
# 127.0.9.x (DNS 5300, DoT 8530, DoH 4430 where it has them) and the same certificate. For
# each server and transport: queries/s at saturation (dnsperf for UDP, TCP and DoT; h2load
# POSTing one wire query for DoH, and dnsperf's own DoH mode with the query mix, GET and POST,
# as `doh-get` and `doh-post`), queries per server CPU-second (utime+stime of the server's
# processes from /proc), latency p50/p99 at a fixed UDP rate (dnsperf -Q, per-query times
# from -v), peak RSS (VmHWM). Then a 100,000-record zone: AXFR time (dig, TSIG) and peak RSS.
# Runs alternate servers: every server once, then every server again.
#
# Knobs: RUNS (2), DURATION (seconds per measurement, 10), SERVERS (subset of "certzone knot
# nsd bind hickory dnsdist"), LAT_RATE (queries/s for the latency run, 5000), CLIENTS and
# OUTSTANDING (dnsperf -c/-q, 4/500), THREADS (dnsperf -T, 1), H2_CLIENTS and H2_STREAMS (h2load -c/-m, 4/32),
# DOH_CLIENTS and DOH_OUTSTANDING (dnsperf -m doh -c/-q, 10/200),
# AXFR_REPEAT (transfers of the 100k zone per run and server, alternating servers, 5),
# WAIT_QUIET (seconds to wait for a 1-minute load average under 0.5 first, 0), KEEP=1 (keep
# the work directory), CERTZONE (binary; default: cargo build --release), HICKORY (binary;
# default: cargo install hickory-dns into target/bench/hickory once, then cached), PLOT (the
# PNG, default docs/serve-bench.png).
# Writes target/bench/serve.{txt,csv,json} and the PNG. Needs: see `check_needs` (it prints
# the apt-get line for what is missing; tests/bench/setup.sh installs it all).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 or later (EPOCHREALTIME)"
RUNS=${RUNS:-2}
DURATION=${DURATION:-10}
SERVERS=${SERVERS:-certzone knot nsd bind hickory dnsdist}
AXFR_REPEAT=${AXFR_REPEAT:-5}
LAT_RATE=${LAT_RATE:-5000}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-1}
OUTSTANDING=${OUTSTANDING:-500}
H2_CLIENTS=${H2_CLIENTS:-4}
H2_STREAMS=${H2_STREAMS:-32}
DOH_CLIENTS=${DOH_CLIENTS:-10}
DOH_OUTSTANDING=${DOH_OUTSTANDING:-200}
WAIT_QUIET=${WAIT_QUIET:-0}
PLOT=${PLOT:-$root/docs/serve-bench.png}
HICKORY_VERSION=${HICKORY_VERSION:-0.26.3}
for knob in RUNS DURATION LAT_RATE CLIENTS THREADS OUTSTANDING H2_CLIENTS H2_STREAMS DOH_CLIENTS DOH_OUTSTANDING; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive integer, not '${!knob}'"
done
[[ $WAIT_QUIET =~ ^[0-9]+$ ]] || die "WAIT_QUIET must be a number of seconds, not '$WAIT_QUIET'"
read -r -a SERVER_LIST <<<"$SERVERS"
[ "${#SERVER_LIST[@]}" -gt 0 ] || die "SERVERS names no server"
for s in "${SERVER_LIST[@]}"; do
  [[ " certzone knot nsd bind hickory dnsdist " == *" $s "* ]] ||
    die "unknown server '$s' (known: certzone knot nsd bind hickory dnsdist)"
done
wants() { [[ " $SERVERS " == *" $1 "* ]]; }

PATH=$PATH:/usr/sbin:/sbin

# --- needs -----------------------------------------------------------------------------------
# matplotlib comes from Debian's python3-matplotlib, which only the system python sees.
PY=
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import matplotlib' 2>/dev/null; then PY=$p; break; fi
done
check_needs() {
  local missing=()
  need() { command -v "$1" >/dev/null || missing+=("$2"); }
  need dnsperf dnsperf
  need dig bind9-dnsutils
  need kdig knot-dnsutils
  need openssl openssl
  need ip iproute2
  need unshare util-linux
  wants knot || wants dnsdist && need knotd knot
  wants nsd && need nsd nsd
  wants bind && need named bind9
  wants dnsdist && need dnsdist dnsdist
  if wants certzone || wants bind || wants hickory || wants dnsdist; then need h2load nghttp2-client; fi
  [ -n "$PY" ] || missing+=(python3-matplotlib)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench: missing: ${missing[*]}" >&2
    echo "bench: install with: apt-get install -y ${missing[*]}   (or tests/bench/setup.sh)" >&2
    exit 1
  fi
}
check_needs

if wants certzone; then
  if [ -z "${CERTZONE:-}" ]; then
    (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
    CERTZONE=$root/target/release/certzone
  fi
  [ -x "$CERTZONE" ] || die "no certzone binary at $CERTZONE"
fi
# The stock hickory-dns binary, built once from crates.io with its DoT and DoH listeners
# (https-ring brings tls-ring) and none of the default sqlite/resolver parts an
# authoritative server does not use.
if wants hickory; then
  if [ -z "${HICKORY:-}" ]; then
    HICKORY=$root/target/bench/hickory/bin/hickory-dns
    if [ ! -x "$HICKORY" ]; then
      echo "bench: building hickory-dns $HICKORY_VERSION from crates.io once (cached in target/bench/hickory)" >&2
      cargo install hickory-dns --version "$HICKORY_VERSION" --locked --quiet \
        --no-default-features --features https-ring --root "$root/target/bench/hickory" ||
        die "cargo install hickory-dns failed"
    fi
  fi
  [ -x "$HICKORY" ] || die "no hickory-dns binary at $HICKORY"
fi

# BIND listens only on addresses an interface carries: the whole run happens in a private
# network namespace whose lo carries 127.0.9.1..6, where nobody else's sockets interfere.
if [ -z "${CERTZONE_BENCH_IN_NETNS:-}" ]; then
  if [ "$WAIT_QUIET" -gt 0 ]; then
    deadline=$((SECONDS + WAIT_QUIET))
    until awk '{ exit !($1 < 0.5) }' /proc/loadavg || ((SECONDS >= deadline)); do sleep 5; done
    awk '{ exit !($1 < 0.5) }' /proc/loadavg ||
      echo "bench: load average still $(cut -d' ' -f1 /proc/loadavg) after ${WAIT_QUIET}s; going on" >&2
  fi
  if [ "$(id -u)" = 0 ]; then ns=(unshare --net); else ns=(unshare --map-root-user --net); fi
  export CERTZONE HICKORY CERTZONE_BENCH_IN_NETNS=1 RUNS DURATION SERVERS LAT_RATE CLIENTS THREADS \
    OUTSTANDING H2_CLIENTS H2_STREAMS DOH_CLIENTS DOH_OUTSTANDING PLOT KEEP
  exec "${ns[@]}" -- bash "${BASH_SOURCE[0]}" "$@"
fi
ip link set lo up || die "cannot bring lo up in the network namespace"
for i in 1 2 3 4 5 6; do
  ip addr add "127.0.9.$i/32" dev lo 2>/dev/null ||
    ip -4 -o addr show dev lo | grep -q " 127\.0\.9\.$i/" ||
    die "cannot add 127.0.9.$i to lo in the network namespace"
done

declare -A IP=([certzone]=127.0.9.1 [knot]=127.0.9.2 [nsd]=127.0.9.3 [bind]=127.0.9.4
  [hickory]=127.0.9.5 [dnsdist]=127.0.9.6)
DNS_PORT=5300
DOT_PORT=8530
DOH_PORT=4430
# What each server offers. Knot 3.2 has no DoT/DoH; dnsdist is measured as a DoH front end
# only (to Knot over UDP), its plain DNS being Knot's.
declare -A TRANSPORTS=([certzone]="udp tcp dot doh" [knot]="udp tcp" [nsd]="udp tcp dot"
  [bind]="udp tcp dot doh" [hickory]="udp tcp dot doh" [dnsdist]="doh")
SMALL=bench.test.
BIG=big.test.
CERT_NAME=ns1.bench.test
CLK_TCK=$(getconf CLK_TCK)

bench_workdir serve

# --- shared material: zones, queries, certificate, TSIG key -------------------------------
"$PY" "$here/serve.py" zone small "$SMALL" "$work/small.zone"
"$PY" "$here/serve.py" zone big "$BIG" "$work/big.zone"
"$PY" "$here/serve.py" queries "$SMALL" "$work/queries.txt"
"$PY" "$here/serve.py" wire "host1.$SMALL" A "$work/doh-query.bin"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench serve CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null ||
  die "openssl: cannot make the CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$CERT_NAME" \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null || die "openssl: cannot make the TLS key"
printf 'subjectAltName = DNS:%s%s\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n' \
  "$CERT_NAME" "$(for i in 1 2 3 4 5 6; do printf ', IP:127.0.9.%s' "$i"; done)" >"$work/tls.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/tls.ext" -out "$work/tls.pem" 2>/dev/null ||
  die "openssl: cannot sign the TLS certificate"
chmod 600 "$work/ca.key" "$work/tls.key"
TSIG_SECRET=$(openssl rand -base64 32)
printf 'key "bench-key" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$TSIG_SECRET" \
  >"$work/tsig.key"
chmod 600 "$work/tsig.key"

# --- servers ---------------------------------------------------------------------------------
# start_logged DIR NAME COMMAND...: starts COMMAND with its output in DIR/NAME.log; sets PID.
start_logged() {
  local d=$1 name=$2
  shift 2
  "$@" >"$d/$name.log" 2>&1 &
  PID=$!
  track "$PID"
}

# Each start_* SERVER-DIR ZONE ZONEFILE starts one server and sets PID.
start_certzone() {
  local d=$1 ip=${IP[certzone]}
  cat >"$d/certzone.toml" <<EOF
state-dir = "state"

[listen]
udp = ["$ip:$DNS_PORT"]
tcp = ["$ip:$DNS_PORT"]
tls = ["$ip:$DOT_PORT"]
https = ["$ip:$DOH_PORT"]

[tls]
names = ["$CERT_NAME"]
source = "files"
cert-file = "$work/tls.pem"
key-file = "$work/tls.key"

[[zone]]
name = "$2"
file = "$3"

[transfer]
tsig-key-file = "$work/tsig.key"

# Metrics on, as an operator runs it (the counters are kept either way; issue 15).
[metrics]
listen = "$ip:9153"
EOF
  start_logged "$d" certzone "$CERTZONE" run --config "$d/certzone.toml"
}

start_knot() {
  local d=$1 ip=${IP[knot]}
  cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: $ip@$DNS_PORT
log:
  - target: stderr
    any: warning
database:
    storage: "$d"
key:
  - id: bench-key
    algorithm: hmac-sha256
    secret: $TSIG_SECRET
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
  - domain: $2
    file: "$3"
    acl: transfer
EOF
  start_logged "$d" knot knotd -c "$d/knot.conf"
}

start_nsd() {
  local d=$1 ip=${IP[nsd]}
  # TLS is served on the ip-address lines whose port is tls-port.
  cat >"$d/nsd.conf" <<EOF
server:
    ip-address: $ip@$DNS_PORT
    ip-address: $ip@$DOT_PORT
    tls-port: $DOT_PORT
    tls-service-key: "$work/tls.key"
    tls-service-pem: "$work/tls.pem"
    username: ""
    chroot: ""
    zonesdir: "$d"
    database: ""
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d"
    pidfile: "$d/nsd.pid"
    verbosity: 1
    # Debian's NSD limits responses per client network by default (RRL); the load
    # generator is one client.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
key:
    name: bench-key
    algorithm: hmac-sha256
    secret: "$TSIG_SECRET"
zone:
    name: $2
    zonefile: "$3"
    provide-xfr: 127.0.0.0/8 bench-key
EOF
  start_logged "$d" nsd nsd -d -c "$d/nsd.conf"
}

start_bind() {
  local d=$1 ip=${IP[bind]}
  cat >"$d/named.conf" <<EOF
tls bench-tls { cert-file "$work/tls.pem"; key-file "$work/tls.key"; };
http bench-http { endpoints { "/dns-query"; }; };
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  listen-on port $DNS_PORT { $ip; };
  listen-on port $DOT_PORT tls bench-tls { $ip; };
  listen-on port $DOH_PORT tls bench-tls http bench-http { $ip; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
include "$work/tsig.key";
zone "${2%.}" { type primary; file "$3"; allow-transfer { key bench-key; }; };
EOF
  start_logged "$d" named named -g -c "$d/named.conf"
}

start_hickory() {
  local d=$1 ip=${IP[hickory]}
  cat >"$d/hickory.toml" <<EOF
listen_addrs_ipv4 = ["$ip"]
listen_port = $DNS_PORT
tls_listen_port = $DOT_PORT
https_listen_port = $DOH_PORT
directory = "$d"
drop_privileges = false
tls_cert = { path = "$work/tls.pem", endpoint_name = "$CERT_NAME", private_key = "$work/tls.key.pem" }

[[zones]]
zone = "$2"
zone_type = "Primary"
file = "$3"
EOF
  # hickory-dns picks the key's format by its file name.
  cp "$work/tls.key" "$work/tls.key.pem"
  # --quiet: by default it logs every query at INFO, which no other server here does.
  start_logged "$d" hickory "$HICKORY" --quiet --config "$d/hickory.toml"
}

start_dnsdist() {
  local d=$1 ip=${IP[dnsdist]}
  # No security polling: it would send a query to the system's resolver.
  cat >"$d/dnsdist.conf" <<EOF
setSecurityPollSuffix("")
setLocal("$ip:$DNS_PORT")
addDOHLocal("$ip:$DOH_PORT", "$work/tls.pem", "$work/tls.key", "/dns-query")
newServer({address="${IP[knot]}:$DNS_PORT"}):setUp()
EOF
  start_logged "$d" dnsdist dnsdist --supervised --disable-syslog -C "$d/dnsdist.conf"
}

# answers SERVER TRANSPORT ZONE: the zone's SOA serial over that transport, verified TLS.
answers() {
  local ip=${IP[$1]} how=()
  case $2 in
    udp) how=(-p "$DNS_PORT") ;;
    tcp) how=(-p "$DNS_PORT" +tcp) ;;
    dot) how=(-p "$DOT_PORT" +tls +tls-ca="$work/ca.pem" +tls-hostname="$CERT_NAME") ;;
    doh) how=(-p "$DOH_PORT" +https +tls-ca="$work/ca.pem" +tls-hostname="$CERT_NAME") ;;
  esac
  kdig @"$ip" "${how[@]}" +timeout=1 +retry=0 +short "$3" SOA 2>/dev/null | grep -q .
}

# start_server SERVER ZONE ZONEFILE SECONDS: starts it, waits until every transport answers.
declare -A PIDS LOADED
start_server() {
  local s=$1 d=$work/$1-${2%%.*} tr
  mkdir -p "$d"
  "start_$s" "$d" "$2" "$3"
  PIDS[$s]=$PID
  for tr in ${TRANSPORTS[$s]}; do
    wait_until "$s to answer $2 SOA over $tr" "$4" answers "$s" "$tr" "$2" || {
      tail -5 "$d"/*.log >&2
      return 1
    }
  done
}

stop_server() {
  stop_pid "${PIDS[$1]}"
  untrack "${PIDS[$1]}"
  unset "PIDS[$1]"
}

# --- /proc -----------------------------------------------------------------------------------
# tree PID...: the PIDs and all their descendants (NSD serves from forked children).
tree() {
  local p
  for p in "$@"; do
    echo "$p"
    # shellcheck disable=SC2046
    tree $(pgrep -P "$p" || true)
  done
}
# measured SERVER: the processes whose CPU and memory count for it; dnsdist's include the
# Knot behind it, which does the answering.
measured() {
  if [ "$1" = dnsdist ]; then tree "${PIDS[dnsdist]}" "${PIDS[knot]}"; else tree "${PIDS[$1]}"; fi
}
# cpu_ticks PID...: utime + stime of those processes (all their threads), in clock ticks.
cpu_ticks() {
  local p total=0 t
  for p in "$@"; do
    t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
# hwm_kb PID...: the sum of their peak resident sizes (VmHWM), in KiB.
hwm_kb() {
  local p
  for p in "$@"; do awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null; done |
    awk '{ s += $1 } END { print s + 0 }'
}

# --- measurements ----------------------------------------------------------------------------
RESULTS=$work/results.tsv
: >"$RESULTS"
field() { sed -n "s/^ *$1 *\\([0-9.]*\\).*/\\1/p" "$2" | head -1; }

# generate TRANSPORT IP OUT: the load generator at saturation for DURATION seconds.
generate() {
  local tr=$1 ip=$2 port=$DNS_PORT
  # DoH: the authority is the certificate's name, as a client would send it; the stock
  # hickory-dns refuses any other.
  if [ "$tr" = doh ]; then
    timeout $((DURATION + 30)) h2load -c "$H2_CLIENTS" -m "$H2_STREAMS" -t 1 -D "$DURATION" \
      --data "$work/doh-query.bin" -H 'content-type: application/dns-message' \
      -H 'accept: application/dns-message' -H ":authority: $CERT_NAME" \
      "https://$ip:$DOH_PORT/dns-query" >"$3" 2>&1
  elif [ "$tr" = doh-get ] || [ "$tr" = doh-post ]; then
    # dnsperf's DoH mode (nghttp2 under OpenSSL), the query mix, GET or POST.
    local method=GET
    [ "$tr" = doh-post ] && method=POST
    timeout $((DURATION + 30)) dnsperf -m doh -O "doh-method=$method" \
      -O "doh-uri=https://$CERT_NAME:$DOH_PORT/dns-query" -s "$ip" -p "$DOH_PORT" \
      -d "$work/queries.txt" -l "$DURATION" -c "$DOH_CLIENTS" -q "$DOH_OUTSTANDING" -t 2 >"$3" 2>&1
  else
    [ "$tr" = dot ] && port=$DOT_PORT
    timeout $((DURATION + 30)) dnsperf -m "$tr" -s "$ip" -p "$port" -d "$work/queries.txt" \
      -l "$DURATION" -c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING" -t 2 >"$3" 2>&1
  fi
}

# load RUN SERVER TRANSPORT: saturation throughput, the server's CPU and the generator's;
# appends a "load" row.
load() {
  local run=$1 s=$2 tr=$3 out pids c0 c1 t0 t1 wall gen answered secs qps lost resp rcodes cpu_s
  out=$work/load-$run-$s-$tr.txt
  mapfile -t pids < <(measured "$s")
  c0=$(cpu_ticks "${pids[@]}")
  t0=$(now)
  # The generator's own CPU (user + system) says whether it, not the server, was the limit.
  local TIMEFORMAT='%U %S'
  { time generate "$tr" "${IP[$s]}" "$out"; } 2>"$out.cpu" || true
  t1=$(now)
  c1=$(cpu_ticks "${pids[@]}")
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  gen=$(awk 'NF == 2 { printf "%.2f", $1 + $2 }' "$out.cpu")
  if [ "$tr" = doh ]; then
    answered=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$out")
    secs=$(sed -n 's/^finished in \([0-9.]*\)s.*/\1/p' "$out")
    qps=$(awk -v n="${answered:-0}" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%.0f", n / s }')
    rcodes="HTTP failed/errored: $(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored.*/\1\/\2/p' "$out")"
    lost=-
    resp=-
  else
    answered=$(field "Queries completed:" "$out")
    secs=$(field "Run time (s):" "$out")
    qps=$(field "Queries per second:" "$out")
    lost=$(sed -n 's/^ *Queries lost: *[0-9]* (\([0-9.]*\)%).*/\1/p' "$out")
    resp=$(sed -n 's/.*Average packet size: *request [0-9]*, response \([0-9]*\).*/\1/p' "$out")
    rcodes=$(sed -n 's/^ *Response codes: *//p' "$out")
  fi
  if [ -z "$answered" ] || [ "$answered" = 0 ]; then
    printf '  run %s %-9s %-4s FAILED (see %s)\n' "$run" "$s" "$tr" "$out"
    FAILED=1
    return 0
  fi
  cpu_s=$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')
  printf 'load\t%s\t%s\t%s\tqps=%s\tanswered=%s\tcpu_s=%s\tsecs=%s\twall_s=%s\tgen_cpu_s=%s\tlost_pct=%s\tresp_bytes=%s\trcodes=%s\n' \
    "$run" "$s" "$tr" "$qps" "$answered" "$cpu_s" "$secs" "$wall" "$gen" "$lost" "$resp" \
    "$rcodes" >>"$RESULTS"
  printf '  run %s %-9s %-4s %8.0f q/s %8.0f q/CPU-s  server %s CPU-s, generator %s  %s\n' \
    "$run" "$s" "$tr" "$qps" \
    "$(awk -v n="$answered" -v c="$cpu_s" 'BEGIN { print (c > 0) ? n / c : 0 }')" "$cpu_s" \
    "${gen:-?}" "$rcodes"
}

# latency RUN SERVER: p50/p99 of per-query times at LAT_RATE over UDP; appends a row.
latency() {
  local run=$1 s=$2 out p50 p99 n
  out=$work/latency-$run-$s.txt
  timeout $((DURATION + 30)) dnsperf -m udp -s "${IP[$s]}" -p "$DNS_PORT" -d "$work/queries.txt" \
    -l "$DURATION" -Q "$LAT_RATE" -c 1 -q 100 -t 2 -v >"$out" 2>&1 || true
  read -r p50 p99 n < <("$PY" "$here/serve.py" latency "$out")
  printf 'latency\t%s\t%s\tudp\tp50_ms=%s\tp99_ms=%s\tanswered=%s\tqps=%s\n' "$run" "$s" \
    "$p50" "$p99" "$n" "$(field "Queries per second:" "$out")" >>"$RESULTS"
  printf '  run %s %-9s lat  p50 %s ms  p99 %s ms  (%s answers at %s q/s)\n' "$run" "$s" "$p50" \
    "$p99" "$n" "$LAT_RATE"
}

# axfr RUN SERVER: one TSIG-signed AXFR of the big zone; appends a row with dig's time.
axfr() {
  local run=$1 s=$2 out t0 t1 ms records ok=0
  out=$work/axfr-$run-$s.txt
  t0=$(now)
  timeout 60 dig @"${IP[$s]}" -p "$DNS_PORT" -y "hmac-sha256:bench-key:$TSIG_SECRET" AXFR "$BIG" \
    +noall +stats >"$out" 2>&1 || true
  t1=$(now)
  ms=$(sed -n 's/^;; Query time: \([0-9]*\) msec.*/\1/p' "$out" | tail -1)
  records=$(sed -n 's/^;; XFR size: \([0-9]*\) records.*/\1/p' "$out" | tail -1)
  # SOA, NS, ns1 A, 100,000 hosts, closing SOA.
  [ "$records" = 100004 ] && ok=1
  printf 'axfr\t%s\t%s\ttcp\tms=%s\twall_ms=%s\trecords=%s\tok=%s\n' "$run" "$s" "${ms:--}" \
    "$(ms_between "$t0" "$t1")" "${records:-0}" "$ok" >>"$RESULTS"
  if [ "$ok" = 1 ]; then
    printf '  run %s %-9s AXFR %s ms (dig), %s ms wall, %s records\n' "$run" "$s" "$ms" \
      "$(ms_between "$t0" "$t1")" "$records"
  else
    printf '  run %s %-9s AXFR FAILED: %s records (see %s)\n' "$run" "$s" "${records:-no}" "$out"
    FAILED=1
  fi
}

meta() {
  local cpu
  version() { "$@" 2>&1 | head -1 | tr -s ' '; }
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
  echo "Serving speed, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ${cpu:-unknown CPU}"
  echo "machine: $(uname -sr); load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  wants certzone && echo "certzone: $CERTZONE (src of commit $(git -C "$root" log -1 --format=%h -- src Cargo.toml Cargo.lock 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src 2>/dev/null || echo ', modified'))"
  wants knot || wants dnsdist && echo "knot: $(version knotd -V)"
  wants nsd && echo "nsd: $(version nsd -v)"
  wants bind && echo "bind: $(version named -v)"
  wants hickory && echo "hickory: $(version "$HICKORY" --version) (features https-ring)"
  wants dnsdist && echo "dnsdist: $(version dnsdist --version) (DoH front end to Knot over UDP)"
  echo "dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'), $(version h2load --version)"
  echo "$RUNS runs alternating servers, $DURATION s each; dnsperf -c $CLIENTS -T $THREADS -q $OUTSTANDING; h2load -c $H2_CLIENTS -m $H2_STREAMS (POST, one query); dnsperf -m doh -c $DOH_CLIENTS -q $DOH_OUTSTANDING (GET, POST); latency at $LAT_RATE q/s over UDP"
}

# --- the run ---------------------------------------------------------------------------------
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
FAILED=0
echo "bench: work directory $work; load average $LOAD_START"
echo "bench: starting servers with the ${SMALL%.} zone ($(grep -c ' IN ' "$work/small.zone") records)"
wants dnsdist && ! wants knot && start_server knot "$SMALL" "$work/small.zone" 30
for s in "${SERVER_LIST[@]}"; do
  start_server "$s" "$SMALL" "$work/small.zone" 30 || die "$s did not start; logs in $work/$s-*"
done

for ((run = 1; run <= RUNS; run++)); do
  echo "bench: run $run of $RUNS"
  for tr in udp tcp dot doh doh-get doh-post; do
    for s in "${SERVER_LIST[@]}"; do
      # dnsperf's DoH modes wherever h2load's DoH runs.
      [[ " ${TRANSPORTS[$s]} " == *" ${tr%-*} "* ]] && load "$run" "$s" "$tr"
    done
  done
  for s in "${SERVER_LIST[@]}"; do
    [ "$s" = dnsdist ] || latency "$run" "$s"
  done
done
for s in "${SERVER_LIST[@]}"; do
  mapfile -t pids < <(measured "$s")
  printf 'rss\t0\t%s\t-\thwm_kb=%s\tprocesses=%s\n' "$s" "$(hwm_kb "${pids[@]}")" "${#pids[@]}" \
    >>"$RESULTS"
done
bench_cleanup
PIDS=()

# The 100k-record zone: servers that transfer zones (hickory-dns answers AXFR in one message,
# which cannot hold this zone; dnsdist is no zone server).
BIG_SERVERS=()
for s in certzone knot nsd bind; do wants "$s" && BIG_SERVERS+=("$s"); done
if [ "${#BIG_SERVERS[@]}" -gt 0 ]; then
  echo "bench: starting ${BIG_SERVERS[*]} with the ${BIG%.} zone (100,000 A records)"
  for s in "${BIG_SERVERS[@]}"; do
    # Only plain DNS matters here; waiting on UDP alone keeps start-up simple.
    TRANSPORTS[$s]=udp
    start_server "$s" "$BIG" "$work/big.zone" 120 || die "$s did not load the big zone"
    mapfile -t pids < <(measured "$s")
    LOADED[$s]=$(hwm_kb "${pids[@]}")
  done
  for ((run = 1; run <= RUNS; run++)); do
    for ((i = 1; i <= AXFR_REPEAT; i++)); do
      for s in "${BIG_SERVERS[@]}"; do axfr "$run" "$s"; done
    done
  done
  for s in "${BIG_SERVERS[@]}"; do
    mapfile -t pids < <(measured "$s")
    printf 'rss100k\t0\t%s\t-\tloaded_kb=%s\thwm_kb=%s\n' "$s" "${LOADED[$s]}" \
      "$(hwm_kb "${pids[@]}")" >>"$RESULTS"
  done
  bench_cleanup
fi

meta >"$work/results.meta"
mkdir -p "$root/target/bench"
cp "$RESULTS" "$root/target/bench/serve-raw.tsv"
cp "$work/results.meta" "$root/target/bench/serve-raw.meta"
echo
"$PY" "$here/serve.py" report "$work/results.tsv" "$root/target/bench" "$PLOT"
if [ "$FAILED" != 0 ]; then
  echo "bench: at least one measurement failed" >&2
  exit 1
fi
