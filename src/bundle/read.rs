//! The worker's side: checks a transferred zone's bundle rule by rule and
//! hands back what it may use, plus `inspect` for `certzone verify`.
//!
//! Owns the order of the reader rules (docs/PROTOCOL.md, "Reader rules").
//! No I/O, no clock: the policy carries `now`, every key and every floor.

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::BinDecodable as _;
use rustls_pki_types::PrivatePkcs8KeyDer;
use zeroize::Zeroizing;

use super::certs::{self, CertSummary, LeafFacts};
use super::checks;
use super::collect::{Parts, collect, manifest_format};
use super::error::BundleError;
use super::keys::{KeyId, VerifyingKey, WorkerSecretKey};
use super::limits::{FORMAT_V1, FORMAT_V2, MAX_AHEAD_SECS};
use super::manifest::Manifest;
use super::names::zone_wire;
use super::seal::unseal;
use super::signature::{Content, verify};

/// What a reader requires of a bundle.
#[derive(Debug, Clone)]
pub struct ReaderPolicy {
    /// the signing keys this reader trusts (one, or two during a rotation)
    pub pinned: Vec<VerifyingKey>,
    /// this cluster's id; a v2 bundle must carry exactly this one
    pub cluster_id: String,
    /// version of the bundle in use, if any: the next must be newer
    pub held_version: Option<u64>,
    /// lowest version accepted at all (held state on disk, `minimum-version`)
    pub minimum_version: u64,
    /// lowest publication time accepted (`minimum-published`); a v1 bundle has none,
    /// so any floor above 0 refuses v1
    pub minimum_published: u64,
    /// lowest format accepted (1, or 2 once a bundle asked for it)
    pub minimum_format: u8,
    /// names this node serves; each must be covered by the bundle's names
    pub required_names: Vec<String>,
    /// the reader's clock, unix seconds
    pub now: u64,
    /// this worker's sealing key; `None` reads without unsealing
    pub worker: Option<WorkerSecretKey>,
    /// DER root certificates the chain must reach; empty: not checked
    pub roots: Vec<Vec<u8>>,
}

impl ReaderPolicy {
    /// A policy trusting `pinned` at `now`, with no cluster id, no floors, nothing held,
    /// no names, no worker key and no roots; callers set what they need.
    pub fn new(pinned: Vec<VerifyingKey>, now: u64) -> Self {
        Self {
            pinned,
            cluster_id: String::new(),
            held_version: None,
            minimum_version: 0,
            minimum_published: 0,
            minimum_format: FORMAT_V1,
            required_names: Vec::new(),
            now,
            worker: None,
            roots: Vec::new(),
        }
    }
}

/// A bundle that passed every reader rule.
#[derive(Debug)]
pub struct VerifiedBundle {
    /// format version
    pub format: u8,
    /// the minimum format the bundle asks for (1 for format 1)
    pub minimum_format: u8,
    /// bundle version
    pub version: u64,
    /// publication time (format 2)
    pub published: Option<u64>,
    /// canonical names, ascending
    pub names: Vec<String>,
    /// the leaf's notAfter, unix seconds
    pub not_after: u64,
    /// DER certificates, leaf first
    pub chain: Vec<Vec<u8>>,
    /// the pinned keys whose signatures verified
    pub signers: Vec<KeyId>,
    /// the leaf's private key, when the policy named a worker; wiped when dropped
    pub private_key: Option<Zeroizing<PrivatePkcs8KeyDer<'static>>>,
}

/// What `certzone verify` shows: the signed manifest and each certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// format version
    pub format: u8,
    /// the minimum format the bundle asks for (1 for format 1)
    pub minimum_format: u8,
    /// bundle version
    pub version: u64,
    /// publication time (format 2)
    pub published: Option<u64>,
    /// the cluster id (format 2)
    pub cluster_id: Option<String>,
    /// canonical names, ascending
    pub names: Vec<String>,
    /// the manifest's not-after, unix seconds
    pub not_after: u64,
    /// subject and issuer of each certificate, leaf first
    pub chain: Vec<CertSummary>,
    /// ids of the workers that have a sealed key
    pub workers: Vec<KeyId>,
    /// ids of every signer the bundle names (format 2) with whether it is pinned and
    /// verified
    pub signers: Vec<(KeyId, bool)>,
}

/// A bundle whose records are complete and whose signature verified.
struct Signed {
    manifest: Manifest,
    parts: Parts,
    signers: Vec<KeyId>,
}

/// Rules 1-5: format, records, manifest, counts, then the signatures.
fn signed(
    records: &[Record],
    zone: &Name,
    pinned: &[VerifyingKey],
    minimum_format: u8,
) -> Result<Signed, BundleError> {
    match manifest_format(records, zone) {
        Some(format) if format != FORMAT_V1 && format != FORMAT_V2 => {
            return Err(BundleError::UnknownFormat(format));
        }
        Some(format) if format < minimum_format => {
            return Err(BundleError::FormatDowngrade {
                floor: minimum_format,
                got: format,
            });
        }
        _ => {}
    }
    let mut found = collect(records, zone)?;
    let (manifest, sigs) = Manifest::decode(&found.take_manifest(zone)?)?;
    let parts = found.into_parts(&manifest, zone)?;
    let content = Content {
        manifest: &manifest,
        chain: &parts.chain,
        keys: &parts.keys,
    };
    let signers = verify(&content, &sigs, pinned)?;
    Ok(Signed {
        manifest,
        parts,
        signers,
    })
}

/// Runs every reader rule in the documented order.
pub fn read(
    records: &[Record],
    zone: &Name,
    policy: &ReaderPolicy,
) -> Result<VerifiedBundle, BundleError> {
    let bundle = signed(records, zone, &policy.pinned, policy.minimum_format)?;
    check_zone(&bundle.manifest, zone)?;
    check_cluster(&bundle.manifest, &policy.cluster_id)?;
    check_fresh(&bundle.manifest, policy.now)?;
    check_version(&bundle.manifest, policy)?;
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
    let v2 = bundle.manifest.v2.as_ref();
    Ok(VerifiedBundle {
        format: bundle.manifest.format(),
        minimum_format: v2.map_or(FORMAT_V1, |v2| v2.minimum_format),
        version: bundle.manifest.version,
        published: v2.map(|v2| v2.published),
        names: bundle.manifest.names,
        not_after: bundle.manifest.not_after,
        chain: bundle.parts.chain,
        signers: bundle.signers,
        private_key,
    })
}

/// Format 2 names its zone: it must be the one read.
fn check_zone(manifest: &Manifest, zone: &Name) -> Result<(), BundleError> {
    let Some(v2) = &manifest.v2 else {
        return Ok(());
    };
    if v2.zone == zone_wire(zone) {
        return Ok(());
    }
    Err(BundleError::WrongZone {
        expected: zone.to_lowercase().to_string(),
        got: Name::from_bytes(&v2.zone).map_or_else(|_| "?".into(), |n| n.to_string()),
    })
}

/// Format 2 names its cluster: it must be this reader's.
fn check_cluster(manifest: &Manifest, cluster_id: &str) -> Result<(), BundleError> {
    match &manifest.v2 {
        Some(v2) if v2.cluster_id != cluster_id => Err(BundleError::WrongCluster {
            expected: cluster_id.to_string(),
            got: v2.cluster_id.clone(),
        }),
        _ => Ok(()),
    }
}

/// Format 2: neither the version nor the publication time more than
/// [`MAX_AHEAD_SECS`] ahead of the reader's clock, so a publisher's clock error
/// cannot wedge readers on a version from the far future.
fn check_fresh(manifest: &Manifest, now: u64) -> Result<(), BundleError> {
    let Some(v2) = &manifest.v2 else {
        return Ok(());
    };
    let limit = now.saturating_add(MAX_AHEAD_SECS);
    for (what, got) in [
        ("bundle version", manifest.version),
        ("publication time", v2.published),
    ] {
        if got > limit {
            return Err(BundleError::TooNew { what, got, now });
        }
    }
    Ok(())
}

/// The floors first, then only forward from the version held; the same
/// version is reported apart from a rollback so the caller can treat it as
/// "nothing to do".
fn check_version(manifest: &Manifest, policy: &ReaderPolicy) -> Result<(), BundleError> {
    let got = manifest.version;
    if got < policy.minimum_version {
        return Err(BundleError::BelowFloor {
            what: "bundle version",
            floor: policy.minimum_version,
            got,
        });
    }
    let published = manifest.v2.as_ref().map_or(0, |v2| v2.published);
    if published < policy.minimum_published {
        return Err(BundleError::BelowFloor {
            what: "publication time",
            floor: policy.minimum_published,
            got: published,
        });
    }
    match policy.held_version {
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
) -> Result<Zeroizing<PrivatePkcs8KeyDer<'static>>, BundleError> {
    let id = me.key_id();
    let Some((_, blob)) = bundle.parts.keys.iter().find(|(k, _)| *k == id) else {
        return Err(BundleError::NoKeyForMe(id.to_string()));
    };
    let at = (bundle.manifest.format(), bundle.manifest.version);
    let der = unseal(blob, me, at)?;
    checks::check_key_matches(&bundle.parts.chain[0], &der)?;
    Ok(Zeroizing::new(PrivatePkcs8KeyDer::from(der.to_vec())))
}

/// Parses the bundle and checks its signatures and, for format 2, its zone
/// and (when given) its cluster id, without the floors, the version, the
/// chain, the clock, names or any worker key; reports what it holds.
pub fn inspect(
    records: &[Record],
    zone: &Name,
    pinned: &[VerifyingKey],
    cluster_id: Option<&str>,
) -> Result<Inspection, BundleError> {
    let bundle = signed(records, zone, pinned, FORMAT_V1)?;
    check_zone(&bundle.manifest, zone)?;
    if let Some(id) = cluster_id {
        check_cluster(&bundle.manifest, id)?;
    }
    let chain = bundle
        .parts
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| certs::summary(der, i))
        .collect::<Result<Vec<_>, _>>()?;
    let v2 = bundle.manifest.v2.as_ref();
    let signers = v2.map_or_else(
        || bundle.signers.iter().map(|id| (*id, true)).collect(),
        |v2| {
            v2.signers
                .iter()
                .map(|id| (*id, bundle.signers.contains(id)))
                .collect()
        },
    );
    Ok(Inspection {
        format: bundle.manifest.format(),
        minimum_format: v2.map_or(FORMAT_V1, |v2| v2.minimum_format),
        version: bundle.manifest.version,
        published: v2.map(|v2| v2.published),
        cluster_id: v2.map(|v2| v2.cluster_id.clone()),
        names: bundle.manifest.names,
        not_after: bundle.manifest.not_after,
        chain,
        workers: bundle.manifest.workers,
        signers,
    })
}
