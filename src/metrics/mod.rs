//! What an operator watches: Prometheus metrics and health checks on `[metrics] listen`.
//!
//! Owns the counters every layer writes (`stats`: process-wide atomics, no lock or
//! allocation per query), the scrape (`collect`: every metric read at scrape time and
//! written with prometheus-client's encoder), `/proc/self` (`process`), readiness
//! (`health`) and the small HTTP/1 listener (`http`). It must not change what it reads:
//! zones, certificates and replication only report to it.

mod collect;
mod health;
mod http;
mod process;
pub mod stats;

pub use collect::View;
pub use http::{MetricsListenError, MetricsListener};
pub use stats::{DropReason, STATS};
