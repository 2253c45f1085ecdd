//! The integration tests, one binary: the real `certzone` binary and real peers (Pebble,
//! BIND, Knot, Unbound, Prometheus, kdig, dig, dnsperf) on 127.0.0.0/8, and the bundle
//! format through the public API. One module per area; it must not reach into `src/` other
//! than through the library's public API and the built binary.
//!
//! One binary links the whole stack once instead of once per file. Run one area with its
//! module path as the filter: `cargo test --release --test it differential::`.
//!
//! Tests of different modules never run at the same time. Each module used to be a binary
//! of its own, run one after another with only its own tests in parallel, and the modules
//! still rely on that: each picks fixed 127.x addresses and ports of its own choosing, and
//! the attacks and benchmarks measure CPU, memory and answers that a neighbour would
//! spoil. So every test enters [`common::gate`] first thing (`let _gate = common::gate();`):
//! tests of the module holding it go in together, any other module's wait until the last
//! one has left. libtest starts tests in name order, so a wait happens only where one
//! module hands over to the next. A new test must take the gate too, and a property test
//! around all of its cases, not in each (let go between cases, it would queue behind every
//! other module). libtest counts a wait at the gate as running: a test queued behind the
//! long attacks gets its "running for over 60 seconds" notice without being slow.
//!
//! Process-wide state: nothing sets environment variables or the current directory. The
//! attack tests (`attacks`, `exposure`) raise this process's soft open-file limit to the hard
//! limit, and it stays raised for the modules after them; only what they spawn inherits it,
//! and `certzone` raises its own limit at start anyway.

mod bundle_common; // fixtures for the bundle tests: keys, chains, record rewriting
mod common; // the harness: nodes, peers, clients, waits, the gate

mod bundle_fuzz_regressions; // inputs the fuzzer once crashed on
mod bundle_props; // property tests of publish and read
mod bundle_roundtrip; // publish then read, every worker, inspect
mod bundle_secrets; // the leaf key appears nowhere in what is published
mod bundle_tamper; // every tampering refused by its own check
mod bundle_v2; // format 2's reader rules and key rotation
mod bundle_vectors; // golden vectors and a verifier written from docs/PROTOCOL.md

mod check_config; // bad input refused with a message, check-config and run alike
mod keygen; // `certzone keygen` files, modes, TSIG blocks BIND accepts
mod lock_renew; // one node per state directory, `certzone renew`
mod node; // one node: UDP, TCP, DoT, DoH, reload
mod operator; // the start-up banner and a clean log
mod restart; // a restarted master serves what it served

mod differential; // answers compared with Knot DNS
mod fast_path; // prepared answers equal the full path's
mod resolver; // Unbound resolving through certzone

mod acme; // the master's certificate from Pebble
mod announce; // SVCB, TLSA and CAA of the master's certificate
mod publication; // the signed certificate zone, AXFR with TSIG
mod replication; // master to workers: NOTIFY, transfers, bundles
mod replication_trust; // a worker refusing a hostile primary
mod rotation; // signing key rotation on a live cluster
mod update; // RFC 2136 dynamic updates
mod update_clients; // lego and certbot through UPDATE
mod verify; // `certzone verify` against BIND

mod cluster_docker; // `cluster docker` refusals that need no engine
mod cluster_up; // `cluster up` and `cluster render`
mod interop; // BIND as secondary and as primary
mod layout; // file and function sizes, the import graph, Markdown tables
mod quickstart; // README's first command as written

mod monitoring; // Prometheus, alert rules, `certzone status`
mod service; // health endpoints, JSON logs, systemd

mod attacks; // the long attacks, one at a time
mod exposure; // what a stranger can make a node do
