//! The DNS client: what a node asks other servers. One exchange and its framing
//! (`exchange`: UDP, TCP, any stream) used by every caller (forwarding's upstream
//! sockets, NOTIFY out, SOA checks, ACME propagation, the announce watch), and transfers
//! in ([`transfer`]: AXFR with TSIG, or the bundle by queries); one question asked and its
//! answer decoded (`ask`: the propagation check and the announce watch).
//!
//! Owns asking and reading answers, with typed errors and no output. It must not decide
//! what an answer means for the node (replication, ACME and announce do) nor know the
//! zones or listeners of the server side.

pub(crate) mod ask;
pub(crate) mod exchange;
pub mod transfer;
