//! DNS by direction: [`server`] answers what others ask (listeners for UDP, TCP, DoT and
//! DoH, the answers from the zones, transfers out, NOTIFY and UPDATE in, forwarding), and
//! [`client`] asks others (one exchange and its framing, transfers in), for forwarding's
//! sockets, NOTIFY out, SOA checks, ACME propagation and the announce watch.
//!
//! The server knows the zones (it answers from `zones` and applies UPDATE through it) but
//! not where certificates or zone contents come from; the client knows neither. Bytes are
//! read through [`crate::wire`] and TSIG through [`crate::tsig`] on both sides.

pub mod client;
pub mod server;
