//! The certificate bundle: the wire contract between the master, which
//! publishes its TLS chain and sealed private keys as records of a DNS zone,
//! and the workers, which transfer that zone, verify it and unseal their key.
//! The full format is in `docs/PROTOCOL.md`; this module is its only
//! implementation.
//!
//! Pure: no I/O, no async, no clock, no global randomness. Callers pass
//! records in and out ([`hickory_proto::rr::Record`]), keys as values, the
//! time as a number and randomness as an argument.
//!
//! - [`publish`], [`publish_signed`]: chain (RFC 4398 CERT records), manifest,
//!   sealed keys; format 2 (zone, cluster, publication time, several signers)
//!   or format 1. [`publish_padded`] seals with [`SealPads`] made ahead of time.
//! - [`read`]: every reader rule, in order, each with its own [`BundleError`].
//! - [`inspect`]: signature and a description, for `certzone verify`.
//! - [`record_names`]: the records a manifest calls for, to read by queries.
//! - key helpers: generate, PEM-encode and parse signing and worker keys.

mod certs;
mod checks;
mod collect;
mod error;
mod keys;
mod layout;
pub mod limits;
mod manifest;
mod names;
mod pads;
mod plan;
mod publish;
mod read;
mod seal;
mod signature;
mod text;
mod wire;

#[cfg(test)]
mod tests;

pub use certs::CertSummary;
pub use error::BundleError;
pub use keys::{
    KeyId, SigningKey, VerifyingKey, WorkerPublicKey, WorkerSecretKey, generate_signing_key,
    signing_key_from_pem, signing_key_id, signing_key_to_pem, signing_keys_from_pem,
    verifying_key_from_pem, verifying_key_to_pem, verifying_keys_from_pem,
};
pub use pads::SealPads;
pub use plan::{manifest_name, record_names};
pub use publish::{BundleInput, publish, publish_padded, publish_signed};
pub use read::{Inspection, ReaderPolicy, VerifiedBundle, inspect, read};
pub use text::zone_text;
