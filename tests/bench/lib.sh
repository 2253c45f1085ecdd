# Helpers for tests/bench/*.sh (sourced, not run). Bash 5 (EPOCHREALTIME), coreutils, openssl.

# Wall clock in seconds with microseconds, read without starting a process.
now() { printf '%s\n' "$EPOCHREALTIME"; }

# ms_between START END: milliseconds from START to END (both from `now`), one decimal.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'; }

die() { echo "bench: $*" >&2; exit 1; }

# Processes this script started, killed in reverse order by bench_cleanup.
BENCH_PIDS=()
track() { BENCH_PIDS+=("$1"); }

# stop_pid PID [WHAT]: SIGTERM, wait up to 5 s, then SIGKILL; reaps it.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local i
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${BENCH_PIDS[i]}"
  done
  BENCH_PIDS=()
}

# bench_workdir NAME: makes the work directory $work; on exit every tracked process is
# stopped and $work removed, unless KEEP=1 or the script failed (then its path is printed).
bench_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/certzone-bench-$1.XXXXXX")
  trap bench_on_exit EXIT
  trap 'exit 130' INT TERM
}

bench_on_exit() {
  local rc=$?
  bench_cleanup
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    echo "bench: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}

# wait_until WHAT SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds;
# after SECONDS it fails, naming WHAT it waited for.
wait_until() {
  local what=$1 secs=$2
  shift 2
  local deadline
  deadline=$(awk -v t="$EPOCHREALTIME" -v s="$secs" 'BEGIN { printf "%.6f", t + s }')
  until "$@"; do
    if awk -v t="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(t > d) }'; then
      echo "bench: timed out after ${secs}s waiting for $what" >&2
      return 1
    fi
    sleep 0.02
  done
}

# https_get_status HOST PORT PATH CAFILE: prints the HTTP status line's code (openssl only).
https_get_status() {
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" |
    timeout 5 openssl s_client -quiet -connect "$1:$2" -servername localhost \
      -CAfile "$4" -verify_return_error 2>/dev/null |
    awk 'NR == 1 { print $2; exit }'
}

# make_https_cert DIR IP: a throwaway CA (DIR/https-ca.pem) and a cert for IP and localhost
# (DIR/https.pem, DIR/https.key) signed by it, for Pebble's own HTTPS listener.
make_https_cert() {
  local dir=$1 ip=$2
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench Pebble HTTPS CA" -keyout "$dir/https-ca.key" -out "$dir/https-ca.pem" \
    2>/dev/null || die "openssl: cannot make the HTTPS CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$ip" \
    -keyout "$dir/https.key" -out "$dir/https.csr" 2>/dev/null ||
    die "openssl: cannot make the HTTPS key"
  printf 'subjectAltName = IP:%s, DNS:localhost\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n' \
    "$ip" >"$dir/https.ext"
  openssl x509 -req -in "$dir/https.csr" -CA "$dir/https-ca.pem" -CAkey "$dir/https-ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/https.ext" -out "$dir/https.pem" 2>/dev/null ||
    die "openssl: cannot sign the HTTPS cert"
}

# stats VALUE...: prints "min median max" (median of an even count: mean of the middle two).
stats() {
  [ "$#" -gt 0 ] || { echo "- - -"; return; }
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "- - -"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.1f %.1f %.1f\n", v[1], m, v[NR]
    }'
}

# untrack PID: forget a process once it has been stopped and reaped.
untrack() {
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do
    [ "$p" = "$1" ] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

# san_names: reads one PEM certificate on stdin, prints its DNS subjectAltNames sorted, one a line.
san_names() {
  openssl x509 -noout -ext subjectAltName 2>/dev/null |
    tr ',' '\n' | sed -n 's/^ *DNS://p' | sort
}

# bench_certzone ROOT: sets CERTZONE to the release binary (built here) unless it is set;
# dies if it is not an executable.
bench_certzone() {
  if [ -z "${CERTZONE:-}" ]; then
    (cd "$1" && cargo build --release --quiet) || die "cargo build --release failed"
    CERTZONE=$1/target/release/certzone
  fi
  [ -x "$CERTZONE" ] || die "no certzone binary at $CERTZONE"
}

# bench_netns SCRIPT VAR... -- ARGS...: unless already inside, runs SCRIPT again with ARGS in
# a private network namespace (as root, or mapped to root), exporting CERTZONE and each VAR;
# inside, brings lo up. Benches add their addresses to lo afterwards.
bench_netns() {
  local script=$1 ns
  shift
  if [ -z "${CERTZONE_BENCH_IN_NETNS:-}" ]; then
    while [ "$1" != -- ]; do export "${1?bench_netns: no -- before the arguments}"; shift; done
    shift
    if [ "$(id -u)" = 0 ]; then ns=(unshare --net); else ns=(unshare --map-root-user --net); fi
    export CERTZONE CERTZONE_BENCH_IN_NETNS=1
    exec "${ns[@]}" -- bash "$script" "$@"
  fi
  ip link set lo up || die "cannot bring lo up in the network namespace"
}
