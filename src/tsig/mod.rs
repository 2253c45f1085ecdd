//! TSIG (RFC 8945), every part of it: the key files operators write (`keys`, re-exported
//! here), the server's checking and signing of requests and answers (`server`), and the
//! client's signing of requests and checking of the answers' MAC chain (`client`), both
//! checking a message's MAC without decoding the records before it (`verify`).
//!
//! Owns keys and MACs. It must not decide which requests need a signature (that is
//! `dns::server`'s policy) nor what a failed check means to a transfer or a SOA check
//! (`dns::client`, `replication`).
//!
//! **A signing failure is never answered unsigned.** Signing an answer to a request that
//! verified is an HMAC over bytes this process just encoded, so it only fails on a
//! programming error. `server` returns `server::SignError` instead of a message; the
//! server then sends nothing (one query, NOTIFY, UPDATE or refusal: the client times out
//! and retries) or ends a transfer where it stands (the secondary sees the connection
//! close before the closing SOA), and logs the failure at most once per interval. An
//! unsigned answer to a signed request would teach clients that a missing signature can be
//! normal, which is exactly what the client side refuses (`client`).

pub(crate) mod client;
mod keys;
pub(crate) mod server;
mod verify;

pub use verify::verify_message;

pub use keys::{Algorithm, FUDGE, MIN_SECRET, TsigError, TsigKey, load, parse};
