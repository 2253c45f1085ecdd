//! The master's side: turns a certificate chain, its private key and the
//! worker list into the bundle's records.
//!
//! Owns input validation and assembly. No I/O and no clock: the caller
//! supplies the randomness (ephemeral sealing keys) and writes the records
//! wherever the zone lives. The signature itself is RFC 6979 deterministic.

use hickory_proto::rr::{Name, Record};
use rand_core::CryptoRngCore;
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::certs;
use super::checks;
use super::error::BundleError;
use super::keys::{KeyId, SigningKey, WorkerPublicKey, signing_key_id};
use super::layout::{self, Slot};
use super::limits::{
    FORMAT_V1, FORMAT_V2, MAX_CERT_SIZE, MAX_CHAIN, MAX_NAMES, MAX_PRIVATE_KEY, MAX_SIGNERS,
    MAX_WORKERS,
};
use super::manifest::{Manifest, V2Fields};
use super::names::{canonical, cluster_id_ok, zone_wire};
use super::pads::{self, SealPads};
use super::seal::seal_padded;
use super::signature::{Content, sign};

/// Everything the master publishes in one bundle.
#[derive(Debug)]
pub struct BundleInput {
    /// zone the records go under (made absolute)
    pub zone: Name,
    /// TTL of every record
    pub ttl: u32,
    /// format to write: 2, or 1 while workers that only read format 1 remain
    pub format: u8,
    /// format 2: the format readers must never go below once they accept this bundle
    /// (2 normally; 1 keeps the way back to format 1 open)
    pub minimum_format: u8,
    /// bundle version; readers refuse anything not newer than what they hold
    pub version: u64,
    /// format 2: unix seconds of publication
    pub published: u64,
    /// format 2: the cluster's id (empty allowed); readers refuse another cluster's
    pub cluster_id: String,
    /// names the certificate is for (each covered by the leaf's dNSNames)
    pub names: Vec<String>,
    /// DER certificates, leaf first, each issued by the next
    pub chain: Vec<Vec<u8>>,
    /// the leaf's private key, PKCS#8 DER; never published in the clear
    pub private_key: PrivatePkcs8KeyDer<'static>,
    /// workers that get a sealed copy of the key; anyone not listed is cut off
    pub workers: Vec<WorkerPublicKey>,
}

impl Clone for BundleInput {
    // PrivatePkcs8KeyDer is not Clone on purpose; copying the input is
    // deliberate here (tests derive variants of one input)
    fn clone(&self) -> Self {
        Self {
            zone: self.zone.clone(),
            ttl: self.ttl,
            format: self.format,
            minimum_format: self.minimum_format,
            version: self.version,
            published: self.published,
            cluster_id: self.cluster_id.clone(),
            names: self.names.clone(),
            chain: self.chain.clone(),
            private_key: self.private_key.clone_key(),
            workers: self.workers.clone(),
        }
    }
}

/// Validates `input` and returns the bundle's records, signed by `key`: manifest, chain,
/// sealed keys, in that order.
pub fn publish(
    input: &BundleInput,
    key: &SigningKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Record>, BundleError> {
    publish_signed(input, std::slice::from_ref(key), rng)
}

/// [`publish`] signed by each of `keys` (format 2: 1 to 4 keys, as during a signing key
/// rotation; format 1: exactly one).
pub fn publish_signed(
    input: &BundleInput,
    keys: &[SigningKey],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Record>, BundleError> {
    publish_padded(input, keys, &mut SealPads::default(), rng)
}

/// [`publish_signed`] sealing with the pads in `pads` (taken out of it) for the workers
/// that have one, and with pads made now for the others.
pub fn publish_padded(
    input: &BundleInput,
    keys: &[SigningKey],
    pads: &mut SealPads,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Record>, BundleError> {
    let names = validate(input)?;
    check_signers(input.format, keys)?;
    assemble(input, names, keys, rng, pads)
}

/// Refuses input a reader would refuse (except for time) and returns the
/// canonical names, sorted and without repeats.
fn validate(input: &BundleInput) -> Result<Vec<String>, BundleError> {
    check_format(input)?;
    // check_sizes refuses an empty chain, so chain[0] exists from here on
    check_sizes(input)?;
    let names = canonical_names(&input.names)?;
    checks::check_links(&input.chain)?;
    checks::check_leaf_names(&certs::leaf_facts(&input.chain[0])?, &names)?;
    checks::check_key_matches(&input.chain[0], input.private_key.secret_pkcs8_der())?;
    Ok(names)
}

fn check_format(input: &BundleInput) -> Result<(), BundleError> {
    let invalid = |what: &str| Err(BundleError::InvalidInput(what.into()));
    match input.format {
        FORMAT_V1 if !input.cluster_id.is_empty() => invalid("format 1 carries no cluster id"),
        FORMAT_V1 if input.minimum_format != FORMAT_V1 => {
            invalid("format 1 cannot ask for a minimum format")
        }
        FORMAT_V1 => Ok(()),
        FORMAT_V2 if !(FORMAT_V1..=FORMAT_V2).contains(&input.minimum_format) => {
            invalid("the minimum format must be 1 or 2")
        }
        FORMAT_V2 if !cluster_id_ok(&input.cluster_id) => {
            invalid("the cluster id must be at most 63 bytes of a-z 0-9 - _ .")
        }
        FORMAT_V2 => Ok(()),
        _ => invalid("the format must be 1 or 2"),
    }
}

fn check_signers(format: u8, keys: &[SigningKey]) -> Result<(), BundleError> {
    let mut ids: Vec<KeyId> = keys
        .iter()
        .map(|k| signing_key_id(k.verifying_key()))
        .collect();
    ids.sort();
    ids.dedup();
    let most = if format == FORMAT_V1 { 1 } else { MAX_SIGNERS };
    if keys.is_empty() || keys.len() > most || ids.len() != keys.len() {
        return Err(BundleError::InvalidInput(format!(
            "format {format} is signed by 1 to {most} distinct keys, not {}",
            keys.len()
        )));
    }
    Ok(())
}

fn check_sizes(input: &BundleInput) -> Result<(), BundleError> {
    let too_big = |what: &str, got: usize, limit: usize| -> Result<(), BundleError> {
        if got > limit {
            return Err(BundleError::InvalidInput(format!(
                "{what} is {got}, the limit is {limit}"
            )));
        }
        Ok(())
    };
    if input.chain.is_empty() || input.names.is_empty() {
        return Err(BundleError::InvalidInput("empty chain or no names".into()));
    }
    too_big("chain length", input.chain.len(), MAX_CHAIN)?;
    let largest = input.chain.iter().map(Vec::len).max().unwrap_or(0);
    too_big("certificate size", largest, MAX_CERT_SIZE)?;
    too_big("worker count", input.workers.len(), MAX_WORKERS)?;
    too_big("name count", input.names.len(), MAX_NAMES)?;
    too_big(
        "private key size",
        input.private_key.secret_pkcs8_der().len(),
        MAX_PRIVATE_KEY,
    )
}

fn canonical_names(names: &[String]) -> Result<Vec<String>, BundleError> {
    let mut out = names
        .iter()
        .map(|n| canonical(n).ok_or_else(|| BundleError::InvalidInput(format!("bad name {n:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Builds and signs the records without validating the certificates or the
/// key, so tests can make bundles that only the reader refuses.
pub(crate) fn assemble(
    input: &BundleInput,
    names: Vec<String>,
    keys: &[SigningKey],
    rng: &mut impl CryptoRngCore,
    pads: &mut SealPads,
) -> Result<Vec<Record>, BundleError> {
    let not_after = certs::leaf_facts(&input.chain[0])?.not_after;
    let not_after = u64::try_from(not_after)
        .map_err(|_| BundleError::InvalidInput("leaf notAfter is before 1970".into()))?;
    let sealed = seal_all(input, rng, pads)?;
    let mut signers: Vec<&SigningKey> = keys.iter().collect();
    signers.sort_by_key(|k| signing_key_id(k.verifying_key()));
    let v2 = (input.format != FORMAT_V1).then(|| V2Fields {
        minimum_format: input.minimum_format,
        published: input.published,
        zone: zone_wire(&input.zone),
        cluster_id: input.cluster_id.clone(),
        signers: signers
            .iter()
            .map(|k| signing_key_id(k.verifying_key()))
            .collect(),
    });
    let manifest = Manifest {
        version: input.version,
        not_after,
        names,
        // local invariant: check_sizes capped the chain length below 256
        chain_count: input.chain.len() as u8,
        workers: sealed.iter().map(|(id, _)| *id).collect(),
        v2,
    };
    let content = Content {
        manifest: &manifest,
        chain: &input.chain,
        keys: &sealed,
    };
    records(input, &content, &sign(&content, &signers))
}

/// One sealed key per worker, ascending key id, a worker listed twice once; each with its
/// pad from `pads` if there is one, else a pad made now.
fn seal_all(
    input: &BundleInput,
    rng: &mut impl CryptoRngCore,
    pads: &mut SealPads,
) -> Result<Vec<(KeyId, Vec<u8>)>, BundleError> {
    let mut workers: Vec<&WorkerPublicKey> = input.workers.iter().collect();
    workers.sort_by_key(|w| w.key_id());
    workers.dedup_by_key(|w| w.key_id());
    let missing: Vec<&WorkerPublicKey> = workers.iter().copied().filter(|w| !pads.has(w)).collect();
    pads.add(pads::make(&missing, rng));
    let secret = input.private_key.secret_pkcs8_der();
    let at = (input.format, input.version);
    workers
        .iter()
        .map(|w| {
            // Local invariant: every worker without a pad got one just above.
            let pad = pads.take(w).expect("a pad for every worker");
            Ok((w.key_id(), seal_padded(secret, w, at, &pad)))
        })
        .collect()
}

fn records(
    input: &BundleInput,
    content: &Content<'_>,
    manifest: &[u8],
) -> Result<Vec<Record>, BundleError> {
    let (zone, ttl) = (&input.zone, input.ttl);
    let mut out = vec![layout::txt_record(zone, ttl, Slot::Manifest, manifest)?];
    for (i, der) in content.chain.iter().enumerate() {
        out.push(layout::cert_record(zone, ttl, i, der)?);
    }
    for (id, blob) in content.keys {
        out.push(layout::txt_record(zone, ttl, Slot::Key(*id), blob)?);
    }
    Ok(out)
}
