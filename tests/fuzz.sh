#!/usr/bin/env bash
# Runs the three fuzz targets for a bounded time, one after the other, the time split
# evenly: `tests/fuzz.sh 60` gives each 20 s.
#
#   read_bundle (fuzz/fuzz_targets/read_bundle.rs): the bundle reader, seeded with the
#     golden vectors and the inputs that once crashed it;
#   wire_names (fuzz/fuzz_targets/wire_names.rs): the DNS name scanner (src/wire.rs) and
#     the prepared-answer key reader (src/prepared.rs), seeded with a few messages;
#   tsig_verify (fuzz/fuzz_targets/tsig_verify.rs): the TSIG check (src/tsig/verify.rs),
#     held to hickory's on the same bytes, seeded with a NOTIFY it signs first.
#
#   tests/fuzz.sh [seconds]      # total, default 60
#
# Exits non-zero when the fuzzer finds a crash in any (the input is left under
# fuzz/artifacts/<target>/); the others still run after one fails.
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, ...) to rustc;
# only the stable toolchain is installed here, so RUSTC_BOOTSTRAP=1 lets
# stable accept them. Needs a C++ compiler (libFuzzer is built from source).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
each=$(( secs / 3 > 0 ? secs / 3 : 1 ))

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

names=fuzz/corpus/wire_names
mkdir -p "$names"
# control byte (bit 7 datagram, bits 0-6 the offset scanned) + message
# a query for Www.Example. A IN with an OPT record, as a datagram, scanned at the name
printf '\x8c\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x03Www\x07Example\x00\x00\x01\x00\x01\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00' \
    > "$names/query-edns"
# a response: the question, then an answer whose owner points at it and whose MX data
# is `mail` + a pointer to `example.`, scanned at the MX name
printf '\x2b\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x03www\x07example\x00\x00\x0f\x00\x01\xc0\x0c\x00\x0f\x00\x01\x00\x00\x00\x3c\x00\x09\x00\x0a\x04mail\xc0\x10' \
    > "$names/response-compressed"
# a name pointing at itself
printf '\x0c\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01' > "$names/loop"

tsig=fuzz/corpus/tsig_verify
mkdir -p "$tsig"
# control byte 02 (sign first) + a NOTIFY for example. with the SOA in its answer
printf '\x02\x12\x34\x24\x00\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x00\x00\x06\x00\x01\xc0\x0c\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x1e\x02ns\xc0\x0c\x02hm\xc0\x0c\x00\x00\x00\x07\x00\x00\x00\x3c\x00\x00\x00\x3c\x00\x00\x02\x58\x00\x00\x00\x3c' \
    > "$tsig/notify-soa"
# the same, as a later message of a chain
{ printf '\x03'; tail -c +2 "$tsig/notify-soa"; } > "$tsig/notify-soa-chained"

export RUSTC_BOOTSTRAP=1
status=0
for target in read_bundle wire_names tsig_verify; do
    echo "fuzz: $target for $each s"
    cargo fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$each" -max_len=16384 -rss_limit_mb=2048 -timeout=10 || status=1
done
exit "$status"
