#!/usr/bin/env bash
# The docker tests: `certzone cluster docker up`, `test` (the fault scenarios a-f, whose
# code is the command's own) and `down` on two cluster files -- cluster.toml (example.test,
# 172.30.77.0/24, three workers) and four-workers.toml (corp.test, 10.89.40.0/24, four
# workers, other ports and names) -- plus what the commands promise around them: a second
# `up` says the cluster is up, `down` removes every container and the network, `up` again
# resumes with the same certificate and no new order, and bad input that needs the engine
# to see (a subnet in use, no compose, no engine) is refused with exit 2 and leaves nothing
# behind (tests/it/cluster_docker.rs has the rest: a node outside the subnet, no docker).
# Each cluster runs in a copy under target/docker/NAME/ (state kept after the run for a
# look). Needs: a Docker engine, docker-compose (v1) or the compose plugin, and the Debian
# packages knot-dnsutils, busybox-static and pebble (tests/setup.sh installs them).
set -uo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
# CERTZONE=PATH uses a binary already built (CI passes the one `cargo test` built: a plain
# `cargo build` would compile the crate again without the test-only feature set).
if [ -z "${CERTZONE:-}" ]; then
  cargo build --release --locked --quiet || exit 1
  CERTZONE=$target/release/certzone
fi
[ -x "$CERTZONE" ] || { echo "run.sh: $CERTZONE is not an executable" >&2; exit 1; }
CERTZONE=$(realpath "$CERTZONE")
started=$SECONDS
passed=0 failed=0 scenarios_failed=0

# expect CODE TEXT WHAT -- COMMAND...: COMMAND exits CODE and prints TEXT (stdout or stderr).
expect() {
  local code=$1 text=$2 what=$3; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if [ "$status" = "$code" ] && [[ "$out" == *"$text"* ]]; then
    echo "   ok: $what"; passed=$((passed + 1))
  else
    echo "   FAILED: $what: expected exit $code and \"$text\", got exit $status:"
    echo "$out" | tail -n 20 | sed 's/^/     /'
    failed=$((failed + 1))
  fi
}

# holds WHAT CONDITION: a shell condition (one string) that must hold.
holds() {
  if eval "$2"; then echo "   ok: $1"; passed=$((passed + 1))
  else echo "   FAILED: $1"; failed=$((failed + 1)); fi
}

# A fresh copy of a cluster file and its zone; any containers an interrupted run left go.
prepare() {
  local file=$2 zone=$3 dir=$target/docker/$1
  rm -rf "$dir" && mkdir -p "$dir"
  cp "tests/docker/$file" "tests/docker/$zone" "$dir/"
  "$CERTZONE" cluster docker down --config "$dir/$file" >/dev/null 2>&1
  echo "$dir/$file"
}

project_gone() {
  [ -z "$(docker ps --all --quiet --filter "label=com.docker.compose.project=$1")" ] &&
    ! docker network inspect "$1" >/dev/null 2>&1
}

# The fingerprint column of a node's row in the table `up` prints.
fingerprint() { awk -v node="$1" '$1 == node && NF == 5 { print $5 }'; }

echo "== the first cluster: tests/docker/cluster.toml"
one=$(prepare one cluster.toml example.test.zone)
# `test` brings the cluster up itself (scenario a), as a user's first run would.
"$CERTZONE" cluster docker test --config "$one" || scenarios_failed=1
"$CERTZONE" cluster docker down --config "$one"
holds "down removed every container of certzone-example-test and its network" \
  'project_gone certzone-example-test'

echo; echo "== the second cluster: tests/docker/four-workers.toml"
two=$(prepare two four-workers.toml corp.test.zone)
first=$("$CERTZONE" cluster docker up --config "$two" 2>&1); status=$?
echo "$first"
holds "up brought certzone-corp up" '[ "$status" = 0 ]'
leaf=$(echo "$first" | fingerprint primary)
expect 2 "cluster certzone-corp is already up" "a second up says the cluster is already up" \
  -- "$CERTZONE" cluster docker up --config "$two"
expect 0 "removed 7 containers and network certzone-corp" "down removes the containers" \
  -- "$CERTZONE" cluster docker down --config "$two"
holds "no container of certzone-corp and no network is left" 'project_gone certzone-corp'
again=$("$CERTZONE" cluster docker up --config "$two" 2>&1); status=$?
resumed=$(echo "$again" | fingerprint primary)
holds "up again resumed with the same certificate ($resumed, before: $leaf)" \
  '[ "$status" = 0 ] && [ -n "$leaf" ] && [ "$resumed" = "$leaf" ]'
master_log=$("$CERTZONE" cluster docker logs --config "$two" primary)
pebble_log=$("$CERTZONE" cluster docker logs --config "$two" test-ca)
holds "and made no new order (neither the master's log nor the test CA's has one)" \
  '[[ "$master_log" == *"certificate installed"* && "$master_log" != *"ACME order created"* &&
     -n "$pebble_log" && "$pebble_log" != *"Added order"* ]]'
"$CERTZONE" cluster docker test --config "$two" || scenarios_failed=1

echo; echo "== bad input: refused with exit 2, nothing left behind"
bad=$target/docker/bad
rm -rf "$bad" && mkdir -p "$bad" && cp tests/docker/four-workers.toml tests/docker/corp.test.zone "$bad/"
# The running second cluster's subnet, under another project name.
sed -i 's/^project = .*/project = "certzone-overlap"/' "$bad/four-workers.toml"
expect 2 'overlaps docker network "certzone-corp"' "a subnet in use by another network" \
  -- "$CERTZONE" cluster docker up --config "$bad/four-workers.toml"
holds "nothing written or started for it" '[ ! -e "$bad/state" ] && project_gone certzone-overlap'
if docker compose version >/dev/null 2>&1; then
  echo "   skipped: no compose (the compose plugin is installed here, and docker always finds it)"
else
  mkdir -p "$bad/bin" && ln -sf "$(command -v docker)" "$bad/bin/docker"
  expect 2 "docker compose is not installed" "docker without compose" \
    -- env PATH="$bad/bin" "$CERTZONE" cluster docker up --config "$bad/four-workers.toml"
fi
expect 2 "the Docker engine does not answer" "no engine behind DOCKER_HOST" \
  -- env DOCKER_HOST=unix://$bad/no-engine.sock "$CERTZONE" cluster docker up --config "$bad/four-workers.toml"
holds "nothing written for any of them" '[ ! -e "$bad/state" ]'

"$CERTZONE" cluster docker down --config "$two"
holds "down removed every container of certzone-corp and its network" 'project_gone certzone-corp'
# Summed by .ci/run with the two `scenarios:` lines above.
echo; echo "checks: $passed passed, $failed failed in $((SECONDS - started)) s"
[ "$failed" = 0 ] && [ "$scenarios_failed" = 0 ]
