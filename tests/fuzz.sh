#!/usr/bin/env bash
# Runs the bundle reader's fuzz target (fuzz/fuzz_targets/read_bundle.rs)
# for a bounded time, seeded with the golden vectors. Exits non-zero when
# the fuzzer finds a crash (the input is left under fuzz/artifacts/).
#
#   tests/fuzz.sh [seconds]      # default 60
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, ...) to rustc;
# only the stable toolchain is installed here, so RUSTC_BOOTSTRAP=1 lets
# stable accept them. Needs a C++ compiler (libFuzzer is built from source).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

corpus=fuzz/corpus/read_bundle
mkdir -p "$corpus"
# flags byte (bit 0 worker key, bit 1 roots, bit 2 held version, bit 3 minimum format 2,
# bit 4 cluster id "example") + records
for flags in 00 01 03 07 08; do
    { printf "\\x$flags"; cat tests/vectors/bundle.wire; } > "$corpus/golden-$flags"
done
for flags in 10 11 13 17 19; do
    { printf "\\x$flags"; cat tests/vectors/v2/bundle.wire; } > "$corpus/golden-v2-$flags"
    { printf "\\x$flags"; cat tests/vectors/v2/rotation.wire; } > "$corpus/rotation-$flags"
done

# inputs that once crashed it stay in the corpus
cp tests/vectors/fuzz-regressions/* "$corpus/"

export RUSTC_BOOTSTRAP=1
cargo fuzz run --fuzz-dir fuzz read_bundle "$corpus" -- \
    -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 -timeout=10
