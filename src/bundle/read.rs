//! The worker's side: checks a transferred zone's bundle rule by rule and
//! hands back what it may use, plus `inspect` for `certzone verify`.
//!
//! Owns the order of the reader rules (docs/PROTOCOL.md, "Reader rules").
//! No I/O, no clock: the policy carries `now` and every key.

use hickory_proto::rr::{Name, Record};
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::certs::{self, CertSummary, LeafFacts};
use super::checks;
use super::collect::{Parts, collect, manifest_format};
use super::error::BundleError;
use super::keys::{KeyId, VerifyingKey, WorkerSecretKey};
use super::limits::FORMAT_VERSION;
use super::manifest::{Content, Manifest, verify};
use super::seal::unseal;

/// What a reader requires of a bundle.
#[derive(Debug, Clone)]
pub struct ReaderPolicy {
    /// the cluster's signing key, pinned in the worker's configuration
    pub pinned: VerifyingKey,
    /// version of the bundle in use, if any
    pub held_version: Option<u64>,
    /// names this node serves; each must be covered by the bundle's names
    pub required_names: Vec<String>,
    /// the reader's clock, unix seconds
    pub now: u64,
    /// this worker's sealing key; `None` reads without unsealing
    pub worker: Option<WorkerSecretKey>,
    /// DER root certificates the chain must reach; empty: not checked
    pub roots: Vec<Vec<u8>>,
}

/// A bundle that passed every reader rule.
#[derive(Debug)]
pub struct VerifiedBundle {
    /// bundle version
    pub version: u64,
    /// canonical names, ascending
    pub names: Vec<String>,
    /// the leaf's notAfter, unix seconds
    pub not_after: u64,
    /// DER certificates, leaf first
    pub chain: Vec<Vec<u8>>,
    /// the leaf's private key, when the policy named a worker
    pub private_key: Option<PrivatePkcs8KeyDer<'static>>,
}

/// What `certzone verify` shows: the signed manifest and each certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// format version
    pub format: u8,
    /// bundle version
    pub version: u64,
    /// canonical names, ascending
    pub names: Vec<String>,
    /// the manifest's not-after, unix seconds
    pub not_after: u64,
    /// subject and issuer of each certificate, leaf first
    pub chain: Vec<CertSummary>,
    /// ids of the workers that have a sealed key
    pub workers: Vec<KeyId>,
}

/// A bundle whose records are complete and whose signature verified.
struct Signed {
    manifest: Manifest,
    parts: Parts,
}

/// Rules 1-5: format, records, manifest, counts, then the signature.
fn signed(records: &[Record], zone: &Name, pinned: &VerifyingKey) -> Result<Signed, BundleError> {
    match manifest_format(records, zone) {
        Some(format) if format != FORMAT_VERSION => return Err(BundleError::UnknownFormat(format)),
        _ => {}
    }
    let mut found = collect(records, zone)?;
    let (manifest, sig) = Manifest::decode(&found.take_manifest(zone)?)?;
    let parts = found.into_parts(&manifest, zone)?;
    let content = Content {
        manifest: &manifest,
        chain: &parts.chain,
        keys: &parts.keys,
    };
    verify(&content, &sig, pinned)?;
    Ok(Signed { manifest, parts })
}

/// Runs every reader rule in the documented order.
pub fn read(
    records: &[Record],
    zone: &Name,
    policy: &ReaderPolicy,
) -> Result<VerifiedBundle, BundleError> {
    let bundle = signed(records, zone, &policy.pinned)?;
    check_version(bundle.manifest.version, policy.held_version)?;
    // chain[0] exists below: the manifest requires C >= 1 and into_parts
    // found every position below C
    let chain = &bundle.parts.chain;
    checks::check_links(chain)?;
    checks::check_roots(chain, &policy.roots)?;
    let leaf = certs::leaf_facts(&chain[0])?;
    checks::check_validity(&leaf, policy.now)?;
    check_not_after(&bundle.manifest, &leaf)?;
    checks::check_leaf_names(&leaf, &bundle.manifest.names)?;
    checks::check_required_names(&bundle.manifest.names, &policy.required_names)?;
    let private_key = policy
        .worker
        .as_ref()
        .map(|me| my_key(&bundle, me))
        .transpose()?;
    Ok(VerifiedBundle {
        version: bundle.manifest.version,
        names: bundle.manifest.names,
        not_after: bundle.manifest.not_after,
        chain: bundle.parts.chain,
        private_key,
    })
}

/// Only forward: the same version is reported apart from a rollback so
/// the caller can treat it as "nothing to do".
fn check_version(got: u64, held: Option<u64>) -> Result<(), BundleError> {
    match held {
        Some(held) if got == held => Err(BundleError::SameVersion(got)),
        Some(held) if got < held => Err(BundleError::Rollback { held, got }),
        _ => Ok(()),
    }
}

fn check_not_after(manifest: &Manifest, leaf: &LeafFacts) -> Result<(), BundleError> {
    if i64::try_from(manifest.not_after).ok() != Some(leaf.not_after) {
        return Err(BundleError::NotAfterMismatch {
            manifest: manifest.not_after,
            leaf: leaf.not_after,
        });
    }
    Ok(())
}

fn my_key(
    bundle: &Signed,
    me: &WorkerSecretKey,
) -> Result<PrivatePkcs8KeyDer<'static>, BundleError> {
    let id = me.key_id();
    let Some((_, blob)) = bundle.parts.keys.iter().find(|(k, _)| *k == id) else {
        return Err(BundleError::NoKeyForMe(id.to_string()));
    };
    let der = unseal(blob, me, bundle.manifest.version)?;
    checks::check_key_matches(&bundle.parts.chain[0], &der)?;
    Ok(PrivatePkcs8KeyDer::from(der))
}

/// Parses the bundle and checks its signature, without the version, the
/// chain, the clock, names or any worker key; reports what it holds.
pub fn inspect(
    records: &[Record],
    zone: &Name,
    pinned: &VerifyingKey,
) -> Result<Inspection, BundleError> {
    let bundle = signed(records, zone, pinned)?;
    let chain = bundle
        .parts
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| certs::summary(der, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Inspection {
        format: FORMAT_VERSION,
        version: bundle.manifest.version,
        names: bundle.manifest.names,
        not_after: bundle.manifest.not_after,
        chain,
        workers: bundle.manifest.workers,
    })
}
