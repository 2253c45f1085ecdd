#!/usr/bin/env bash
# Zone size curve: 1k, 10k, 100k and 1M records, certzone beside Knot DNS and BIND 9 on the
# same zone file, in one run.
#
#   tests/bench/zonesize.sh                      # SIZES="1000 10000 100000 1000000"
#   SIZES="100000" tests/bench/zonesize.sh
#
# For each size and each system, in a private network namespace:
#   primary:   start -> answers the zone's SOA over UDP (load time); VmRSS after load.
#   AXFR out:  one TSIG-signed AXFR read by tests/bench/axfr_count.py, which only counts
#              records (no decoding), so the time is the server's; median of AXFR_RUNS.
#   secondary: the same system's secondary started against that primary (certzone: a worker
#              with [[secondary]]; Knot: a knotd secondary; BIND: a named secondary):
#              start -> answers the SOA (transfer-in time), its peak RSS while transferring
#              (VmHWM) and its VmRSS one second after.
# Prints a table, and writes it to target/bench/zonesize.txt, then the scale goals at the
# largest size against Knot (docs/BENCHMARKS.md), each `met` or `NOT met`.
#
# Needs: bash 5, coreutils, util-linux (unshare), iproute2, python3, named (bind9),
# tsig-keygen (bind9-utils), knotd (knot) and the release binary
# (CERTZONE=PATH, or built here). Knobs: SIZES, SYSTEMS (default "certzone knot bind"; the ratios
# need all three), AXFR_RUNS (default 3), TIMEOUT (seconds for a
# load or a transfer, default 120), KEEP=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

SIZES=${SIZES:-1000 10000 100000 1000000}
AXFR_RUNS=${AXFR_RUNS:-3}
TIMEOUT=${TIMEOUT:-120}
PATH=$PATH:/usr/sbin:/sbin
for tool in named tsig-keygen knotd python3 ip unshare; do
  command -v "$tool" >/dev/null || die "missing '$tool' (packages: bind9 bind9-utils knot python3 iproute2 util-linux)"
done
bench_certzone "$root"

bench_netns "${BASH_SOURCE[0]}" SIZES AXFR_RUNS TIMEOUT SYSTEMS -- "$@"
ip addr add 127.0.0.2/32 dev lo 2>/dev/null || true

PRIMARY=127.0.0.1
SECONDARY=127.0.0.2
ZONE=example.test
declare -A PORT=([certzone]=5300 [knot]=5400 [bind]=5500)
read -r -a SYSTEMS <<<"${SYSTEMS:-certzone knot bind}"

bench_workdir zonesize
tsig-keygen -a hmac-sha256 bench-key >"$work/bench-key.conf"
SECRET=$(awk -F'"' '/secret/ { print $2 }' "$work/bench-key.conf")
[ -n "$SECRET" ] || die "tsig-keygen printed no secret"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

start_logged() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  PID=$!
  track "$PID"
}

# primary SYSTEM DIR: starts SYSTEM's primary for $work/zone; sets PID.
primary() {
  local sys=$1 d=$2 port=${PORT[$1]}
  mkdir -p "$d"
  case $sys in
  certzone)
    cat >"$d/node.toml" <<EOT
state-dir = "state"
[listen]
udp = ["$PRIMARY:$port"]
tcp = ["$PRIMARY:$port"]
[[zone]]
name = "$ZONE."
file = "$work/zone"
[transfer]
tsig-key-file = "$work/bench-key.conf"
EOT
    start_logged "$d/log" "$CERTZONE" run --config "$d/node.toml" ;;
  knot)
    knot_conf "$d" "$PRIMARY" "$port" "file: \"$work/zone\"
    acl: transfer" ""
    start_logged "$d/log" knotd -c "$d/knot.conf" ;;
  bind)
    bind_conf "$d" "$PRIMARY" "$port" "type primary; file \"$work/zone\"; allow-transfer { key bench-key; };"
    start_logged "$d/log" named -g -c "$d/named.conf" ;;
  esac
}

# secondary SYSTEM DIR: starts SYSTEM's secondary of the primary; sets PID.
secondary() {
  local sys=$1 d=$2 port=${PORT[$1]}
  mkdir -p "$d"
  case $sys in
  certzone)
    cat >"$d/node.toml" <<EOT
role = "worker"
state-dir = "state"
[listen]
udp = ["$SECONDARY:$port"]
tcp = ["$SECONDARY:$port"]
[primary]
address = "$PRIMARY:$port"
tsig-key-file = "$work/bench-key.conf"
[[secondary]]
name = "$ZONE."
EOT
    start_logged "$d/log" "$CERTZONE" run --config "$d/node.toml" ;;
  knot)
    knot_conf "$d" "$SECONDARY" "$port" "master: primary" "remote:
  - id: primary
    address: $PRIMARY@$port
    via: $SECONDARY
    key: bench-key"
    start_logged "$d/log" knotd -c "$d/knot.conf" ;;
  bind)
    bind_conf "$d" "$SECONDARY" "$port" "type secondary; primaries port $port { $PRIMARY key bench-key; }; file \"$d/zone.db\";"
    start_logged "$d/log" named -g -c "$d/named.conf" ;;
  esac
}

# knot_conf DIR IP PORT ZONE-LINES EXTRA: a knot.conf for one zone.
knot_conf() {
  cat >"$1/knot.conf" <<EOT
server:
    rundir: "$1"
    listen: $2@$3
database:
    storage: "$1"
key:
  - id: bench-key
    algorithm: hmac-sha256
    secret: $SECRET
$5
acl:
  - id: transfer
    key: bench-key
    action: transfer
template:
  - id: default
    storage: "$1"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $ZONE
    $4
EOT
}

# bind_conf DIR IP PORT ZONE-STATEMENTS: a named.conf for one zone.
bind_conf() {
  cat >"$1/named.conf" <<EOT
options {
  directory "$1";
  pid-file "$1/named.pid";
  session-keyfile "$1/session.key";
  listen-on port $3 { $2; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
  transfer-source $2;
  max-records 0;
};
controls { };
include "$work/bench-key.conf";
zone "$ZONE" { $4 };
EOT
}

# ms_until_soa IP PORT PID SINCE: ms from SINCE (an EPOCHREALTIME) until IP:PORT serves serial
# 1 (tests/bench/wait_soa.py), failing at once if PID exits and after TIMEOUT seconds otherwise.
ms_until_soa() {
  python3 "$here/wait_soa.py" "$1" "$2" "$ZONE" 1 --timeout "$TIMEOUT" --pid "$3" --since "$4"
}

declare -A R
for size in $SIZES; do
  python3 "$here/zone_gen.py" "$ZONE" "$size" 1 >"$work/zone"
  for sys in "${SYSTEMS[@]}"; do
    d=$work/$sys-$size
    port=${PORT[$sys]}
    t0=$(now)
    primary "$sys" "$d/primary"
    ppid=$PID
    R[$sys-$size-load]=$(ms_until_soa "$PRIMARY" "$port" "$ppid" "$t0") ||
      { tail -5 "$d/primary/log" >&2; die "$sys did not load the zone"; }
    sleep 1
    R[$sys-$size-rss]=$(mb "$(rss_kb "$ppid")")
    times=()
    for ((r = 0; r < AXFR_RUNS; r++)); do
      out=$(python3 "$here/axfr_count.py" "$PRIMARY" "$port" "$ZONE" "$size" \
        --key "bench-key:$SECRET" --timeout "$TIMEOUT") || die "$sys: AXFR of $size records failed"
      times+=("$(sed -n 's/.*ms=\([0-9.]*\).*/\1/p' <<<"$out")")
    done
    read -r _ R[$sys-$size-axfr] _ < <(stats "${times[@]}")
    t0=$(now)
    secondary "$sys" "$d/secondary"
    spid=$PID
    R[$sys-$size-xfrin]=$(ms_until_soa "$SECONDARY" "$port" "$spid" "$t0") ||
      { tail -5 "$d/secondary/log" >&2; die "$sys's secondary did not transfer the zone"; }
    R[$sys-$size-peak]=$(mb "$(hwm_kb "$spid")")
    sleep 1
    R[$sys-$size-after]=$(mb "$(rss_kb "$spid")")
    stop_pid "$spid"; untrack "$spid"
    stop_pid "$ppid"; untrack "$ppid"
    echo "bench: $sys $size: load ${R[$sys-$size-load]} ms, RSS ${R[$sys-$size-rss]} MB, AXFR ${R[$sys-$size-axfr]} ms; secondary in ${R[$sys-$size-xfrin]} ms, peak ${R[$sys-$size-peak]} MB, after ${R[$sys-$size-after]} MB" >&2
  done
done

mkdir -p "$root/target/bench"
{
  echo "zone size curve, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1 /proc/loadavg)"
  printf '%-9s %-9s %9s %9s %9s %10s %10s %10s\n' records system "load ms" "RSS MB" "AXFR ms" \
    "xfr-in ms" "peak MB" "after MB"
  for size in $SIZES; do
    for sys in "${SYSTEMS[@]}"; do
      printf '%-9s %-9s %9s %9s %9s %10s %10s %10s\n' "$size" "$sys" "${R[$sys-$size-load]:--}" \
        "${R[$sys-$size-rss]}" "${R[$sys-$size-axfr]}" "${R[$sys-$size-xfrin]}" \
        "${R[$sys-$size-peak]}" "${R[$sys-$size-after]}"
    done
  done
  echo
  echo "ratios certzone/peer (below 1: certzone smaller or faster)"
  printf '%-9s %-6s %9s %9s %9s %10s %10s %10s\n' records peer load RSS AXFR xfr-in peak after
  for size in $SIZES; do
    for peer in knot bind; do
      row=()
      for m in load rss axfr xfrin peak after; do
        row+=("$(awk -v a="${R[certzone-$size-$m]:-0}" -v b="${R[$peer-$size-$m]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')")
      done
      printf '%-9s %-6s %9s %9s %9s %10s %10s %10s\n' "$size" "$peer" "${row[@]}"
    done
  done
  echo
  echo "certzone secondary peak/after: $(for size in $SIZES; do awk -v a="${R[certzone-$size-peak]}" -v b="${R[certzone-$size-after]}" -v s="$size" 'BEGIN { printf "%s: %.2f  ", s, a / b }'; done)"
  # The scale goals (docs/BENCHMARKS.md), at the largest size measured, against Knot.
  big=$(printf '%s\n' $SIZES | sort -n | tail -1)
  goal() { # TEXT A OP B: "goal: TEXT: met|NOT met (A against B)"
    awk -v t="$1" -v a="${2:-0}" -v op="$3" -v b="${4:-0}" 'BEGIN {
      if (a <= 0 || b <= 0) { printf "goal: %s: not measured\n", t; exit }
      ok = (op == "le") ? (a <= b) : 0
      printf "goal: %s: %s (%s against %s)\n", t, ok ? "met" : "NOT met", a, b }'
  }
  half=$(awk -v a="${R[certzone-$big-after]:-0}" 'BEGIN { printf "%.1f", 1.5 * a }')
  goal "worker peak RSS while transferring $big records at most 1.5 x its RSS after" \
    "${R[certzone-$big-peak]:-}" le "$half"
  goal "worker peak RSS at most Knot's as a secondary ($big)" \
    "${R[certzone-$big-peak]:-}" le "${R[knot-$big-peak]:-}"
  goal "worker transfer-in within 1.5 x Knot's ($big)" "${R[certzone-$big-xfrin]:-}" le \
    "$(awk -v a="${R[knot-$big-xfrin]:-0}" 'BEGIN { printf "%.1f", 1.5 * a }')"
  goal "master RSS at most Knot's ($big)" "${R[certzone-$big-rss]:-}" le "${R[knot-$big-rss]:-}"
  goal "master load within 2 x Knot's ($big)" "${R[certzone-$big-load]:-}" le \
    "$(awk -v a="${R[knot-$big-load]:-0}" 'BEGIN { printf "%.1f", 2 * a }')"
} | tee "$root/target/bench/zonesize.txt"
