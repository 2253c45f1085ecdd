//! certzone: a nameserver cluster whose TLS certificates manage themselves.
//!
//! One binary runs a node from one TOML file. Data flows one way:
//!
//! ```text
//! config ──> zones (RFC 1035 files) ──> dns::server::Handler ──> listeners (UDP, TCP, DoT, DoH)
//!                                          ^                      ^
//!            forward (upstreams) ──────────┘                      │
//! certificate source (local CA | PEM files | acme) ──> tls::CertSlot ─┘ (hot swap)
//!            acme ──> zones (challenge TXT) ──> CA validates over DNS
//! ```
//!
//! - [`config`]: the file, parsed once into typed values (pure).
//! - [`zones`]: zone files into compact zones swapped whole on reload; the answer rules.
//! - [`prepared`]: encoded answers kept per snapshot, reused with the query's id and case.
//! - [`wire`]: the DNS wire format read from bytes: the one name scanner, header fields (pure).
//! - [`dns`]: by direction: `dns::server` (listeners, answers, transfers out, NOTIFY and
//!   UPDATE in, forwarding) and `dns::client` (one exchange, transfers in).
//! - [`tls`]: the swappable certificate every TLS listener reads.
//! - [`localca`]: the built-in CA for first runs and tests.
//! - [`acme`]: the master's ACME client: DNS-01 from its own zones, renewal, backoff.
//! - [`bundle`]: the signed certificate-zone format (docs/PROTOCOL.md): pure, no I/O.
//! - [`tsig`]: TSIG keys in the BIND/Knot key-file form; server-side signing and checking,
//!   the client's MAC chain; the one rule for signing failures.
//! - [`state`]: atomic files, key files 0600.
//! - [`node`]: wires the parts, owns the tasks, signals and shutdown.
//! - [`metrics`]: Prometheus metrics, `/healthz` and `/readyz`; the counters every layer writes.
//! - [`cli`]: commands and exit codes.
//! - [`cluster`]: the cluster file; each node's config and keys derived from it; its `[docker]`
//!   table, which `certzone cluster docker` runs as containers with the fault scenarios.

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
