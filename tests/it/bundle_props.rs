//! Property tests: random versions, names, worker counts and byte flips.
//! Chains are made once (rcgen is slow) and reused across cases.

use std::sync::OnceLock;

use crate::bundle_common::{LEAF_SPAN, NOW, TestChain, make_chain, rdata_bytes, with_rdata, zone};
use crate::common;
use certzone::bundle::{
    BundleInput, ReaderPolicy, SigningKey, WorkerSecretKey, generate_signing_key, publish, read,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use rustls_pki_types::PrivatePkcs8KeyDer;

const LABELS: &[&str] = &["a", "www", "api", "x-1", "_srv"];

fn chains() -> &'static Vec<TestChain> {
    static CHAINS: OnceLock<Vec<TestChain>> = OnceLock::new();
    CHAINS.get_or_init(|| {
        (1..=4)
            .map(|n| make_chain(n, &["*.p.test", "p.test"], LEAF_SPAN))
            .collect()
    })
}

struct Case {
    input: BundleInput,
    key: SigningKey,
    workers: Vec<WorkerSecretKey>,
}

/// Format 2 (cluster "p") when `format` is 2; its version must not be ahead of the clock.
fn case(
    seed: u64,
    chain: usize,
    workers: usize,
    version: u64,
    labels: &[usize],
    format: u8,
) -> Case {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let workers: Vec<WorkerSecretKey> = (0..workers)
        .map(|_| WorkerSecretKey::generate(&mut rng))
        .collect();
    let mut names: Vec<String> = labels
        .iter()
        .map(|&i| format!("{}.p.test", LABELS[i]))
        .collect();
    names.push("p.test".into());
    let made = &chains()[chain];
    let input = BundleInput {
        zone: zone(),
        ttl: 1,
        format,
        minimum_format: format,
        version,
        published: NOW - 1,
        cluster_id: if format == 2 {
            "p".into()
        } else {
            String::new()
        },
        names,
        chain: made.chain.clone(),
        private_key: PrivatePkcs8KeyDer::from(made.leaf_key.clone()),
        workers: workers.iter().map(WorkerSecretKey::public_key).collect(),
    };
    Case {
        input,
        key: generate_signing_key(&mut rng),
        workers,
    }
}

fn policy(c: &Case, worker: usize, held: Option<u64>) -> ReaderPolicy {
    ReaderPolicy {
        cluster_id: c.input.cluster_id.clone(),
        held_version: held,
        required_names: c.input.names.clone(),
        worker: Some(c.workers[worker].clone()),
        ..ReaderPolicy::new(vec![*c.key.verifying_key()], NOW)
    }
}

// The gate is taken once per test, around every case: taken per case, it would be let go
// between cases and the test would wait its turn again behind every other module.
#[test]
fn round_trip() {
    let _gate = common::gate();
    proptest!(ProptestConfig::with_cases(48), |(
        seed: u64, chain in 0usize..4, workers in 1usize..12, version: u64,
        labels in prop::collection::vec(0usize..LABELS.len(), 0..4), pick: prop::sample::Index,
        format in 1u8..=2,
    )| {
        let version = if format == 2 { version % (NOW + 1) } else { version };
        let c = case(seed, chain, workers, version, &labels, format);
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
        let records = publish(&c.input, &c.key, &mut rng).unwrap();
        let me = pick.index(workers);
        let got = read(&records, &zone(), &policy(&c, me, None)).unwrap();
        prop_assert_eq!(got.version, version);
        let key = got.private_key.unwrap();
        prop_assert_eq!(key.secret_pkcs8_der(), c.input.private_key.secret_pkcs8_der());
        let held = version.checked_sub(1);
        prop_assert!(read(&records, &zone(), &policy(&c, me, held)).is_ok());
        if let Some(newer) = version.checked_add(1) {
            prop_assert!(read(&records, &zone(), &policy(&c, me, Some(newer))).is_err());
        }
    });
}

#[test]
fn any_flip_is_refused() {
    let _gate = common::gate();
    proptest!(ProptestConfig::with_cases(48), |(
        seed: u64, workers in 1usize..4, which: prop::sample::Index,
        at: prop::sample::Index, mask in 1u8..=255, format in 1u8..=2,
    )| {
        let c = case(seed, 1, workers, 5, &[0], format);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let records = publish(&c.input, &c.key, &mut rng).unwrap();
        let r = which.index(records.len());
        let mut bytes = rdata_bytes(&records[r]);
        let pos = at.index(bytes.len());
        bytes[pos] ^= mask;
        if let Some(changed) = with_rdata(&records[r], &bytes) {
            let mut tampered = records.clone();
            tampered[r] = changed;
            prop_assert!(read(&tampered, &zone(), &policy(&c, 0, None)).is_err());
        }
    });
}
