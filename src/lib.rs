//! certzone: a nameserver cluster whose TLS certificates manage themselves.
//!
//! One binary runs a node from one TOML file. A certificate flows one way: issuer (`acme`,
//! `localca`) -> `tls::CertSlot` -> `publication` -> `bundle` -> certificate zone in `zones`
//! -> NOTIFY (`replication`, `dns::client`) -> worker: transfer in, verify (`bundle`), cache
//! (`replication`) -> the worker's `tls::CertSlot`, which every DoT and DoH handshake reads.
//! Queries flow: listeners (`dns::server`) -> `prepared` answers or `zones` -> bytes out.
//!
//! The modules, one line each, in that order (imports run the other way, from `cli` down to
//! the pure modules: docs/ARCHITECTURE.md, "Import graph", drawn from the code by a test):
//!
//! - [`cli`]: the commands and exit codes; where typed errors become messages for people.
//! - [`cluster`]: the cluster file: each node's config and keys, its `[docker]` table.
//! - [`config`]: a node's file parsed once into typed values, the role as a type (pure).
//! - [`node`]: checks and loads what a config names (`prepare`), then runs it: tasks, signals.
//! - [`acme`]: the ACME issuer: DNS-01 from its own zones, renewal, backoff.
//! - [`localca`]: the built-in CA, the issuer of first runs and tests.
//! - [`announce`]: SVCB, TLSA and CAA for the served certificate; the TLSA key rollover.
//! - [`tls`]: the swappable certificate TLS listeners read; PEM, summaries, client configs.
//! - [`publication`]: each new certificate as a signed bundle, served as the certificate zone.
//! - [`bundle`]: the certificate-zone format (docs/PROTOCOL.md): pure, no I/O.
//! - [`zones`]: zone files and generated zones in compact form, swapped whole; answer rules.
//! - [`prepared`]: encoded answers kept per snapshot, reused with a query's id and case.
//! - [`dns`]: DNS by direction: `dns::server` (listeners, answers, transfers out, NOTIFY and
//!   UPDATE in, forwarding) and `dns::client` (one exchange and its framing, transfers in).
//! - [`replication`]: NOTIFY out; on workers signed SOA checks, transfers in, verify, cache.
//! - [`tsig`]: TSIG keys, server-side signing and checking, a transfer's MAC chain.
//! - [`wire`]: the DNS wire format read from bytes, with the one name scanner (pure).
//! - [`state`]: atomic files, files replaced together or not at all, key files 0600.
//! - [`clock`]: Unix seconds, RFC 3339 text, the one renewal-start rule.
//! - [`metrics`]: the counters every layer writes; Prometheus, `/healthz`, `/readyz`.

pub mod acme;
pub mod announce;
pub mod bundle;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod localca;
pub mod metrics;
pub mod node;
pub mod prepared;
pub mod publication;
pub mod replication;
pub mod state;
pub mod tls;
pub mod tsig;
pub mod wire;
pub mod zones;
