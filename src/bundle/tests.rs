//! Unit tests that need the unchecked assembler: bundles the publisher
//! refuses to make but a reader must still refuse on its own. Test code
//! only; the public behaviour is tested in `tests/bundle_*.rs`.

#[path = "../../tests/it/bundle_common/chain.rs"]
mod chain;

use hickory_proto::rr::Name;
use rand_core::OsRng;
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::publish::assemble;
use super::*;
use chain::{LEAF_SPAN, NOW, make_chain};

struct Setup {
    input: BundleInput,
    key: SigningKey,
    worker: WorkerSecretKey,
}

fn setup(len: usize) -> Setup {
    let made = make_chain(len, &["a.example.test"], LEAF_SPAN);
    let worker = WorkerSecretKey::generate(&mut OsRng);
    let input = BundleInput {
        zone: Name::from_ascii("_certzone.example.test.").expect("valid name"),
        ttl: 60,
        format: 2,
        minimum_format: 2,
        version: 1,
        published: NOW - 10,
        cluster_id: "test".into(),
        names: vec!["a.example.test".into()],
        chain: made.chain,
        private_key: PrivatePkcs8KeyDer::from(made.leaf_key),
        workers: vec![worker.public_key()],
    };
    Setup {
        input,
        key: generate_signing_key(&mut OsRng),
        worker,
    }
}

fn policy(s: &Setup) -> ReaderPolicy {
    ReaderPolicy {
        cluster_id: "test".into(),
        required_names: vec!["a.example.test".into()],
        worker: Some(s.worker.clone()),
        ..ReaderPolicy::new(vec![*s.key.verifying_key()], NOW)
    }
}

fn read_assembled(s: &Setup, names: &[&str]) -> Result<VerifiedBundle, BundleError> {
    let names = names.iter().map(|n| n.to_string()).collect();
    let records = assemble(
        &s.input,
        names,
        std::slice::from_ref(&s.key),
        &mut OsRng,
        &mut SealPads::default(),
    )?;
    read(&records, &s.input.zone, &policy(s))
}

#[test]
fn assembled_good_bundle_reads() {
    let s = setup(2);
    let got = read_assembled(&s, &["a.example.test"]).unwrap();
    assert_eq!(
        got.private_key.unwrap().secret_pkcs8_der(),
        s.input.private_key.secret_pkcs8_der()
    );
    assert_eq!((got.format, got.minimum_format), (2, 2));
}

#[test]
fn sealed_key_of_another_certificate_is_refused() {
    let mut s = setup(2);
    let other = make_chain(1, &["a.example.test"], LEAF_SPAN);
    s.input.private_key = PrivatePkcs8KeyDer::from(other.leaf_key);
    assert_eq!(
        read_assembled(&s, &["a.example.test"]).unwrap_err(),
        BundleError::KeyMismatch
    );
    assert!(matches!(
        publish(&s.input, &s.key, &mut OsRng),
        Err(BundleError::KeyMismatch)
    ));
}

#[test]
fn signed_but_misordered_chain_is_refused() {
    let mut s = setup(3);
    s.input.chain.swap(1, 2);
    let err = read_assembled(&s, &["a.example.test"]).unwrap_err();
    assert_eq!(err, BundleError::ChainBroken { position: 0 });
}

#[test]
fn names_beyond_the_leaf_are_refused() {
    let s = setup(1);
    let err = read_assembled(&s, &["a.example.test", "b.example.test"]).unwrap_err();
    assert_eq!(err, BundleError::LeafNameMismatch("b.example.test".into()));
}

#[test]
fn leaf_not_yet_valid_is_refused() {
    let mut s = setup(1);
    s.input.published = 999_999_000;
    let records = publish(&s.input, &s.key, &mut OsRng).unwrap();
    let mut p = policy(&s);
    p.now = 1_000_000_000;
    let err = read(&records, &s.input.zone, &p).unwrap_err();
    assert!(matches!(err, BundleError::LeafNotYetValid { .. }));
}

#[test]
fn unrelated_records_are_ignored() {
    let s = setup(1);
    let mut records = publish(&s.input, &s.key, &mut OsRng).unwrap();
    let mut stray = records[0].clone();
    stray.name = Name::from_ascii("other._certzone.example.test.").expect("valid name");
    records.push(stray);
    let mut outside = records[1].clone();
    outside.name = Name::from_ascii("0.chain.elsewhere.test.").expect("valid name");
    records.push(outside);
    assert!(read(&records, &s.input.zone, &policy(&s)).is_ok());
}

/// The sealed-key records of a bundle (owners `<key id>.keys.<zone>`), as text, sorted.
fn sealed_keys(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut keys: Vec<String> = records
        .iter()
        .filter(|r| r.name.to_ascii().contains(layout::KEYS_LABEL))
        .map(|r| r.data.to_string())
        .collect();
    keys.sort();
    keys
}

#[test]
fn pads_made_ahead_seal_once_and_every_worker_unseals() {
    let mut s = setup(2);
    let others: Vec<WorkerSecretKey> = (0..3)
        .map(|_| WorkerSecretKey::generate(&mut OsRng))
        .collect();
    s.input.workers = std::iter::once(&s.worker)
        .chain(&others)
        .map(WorkerSecretKey::public_key)
        .collect();
    // pads for all but the last worker: that one gets a pad made while publishing
    let mut pads = SealPads::prepare(&s.input.workers[..3], &mut OsRng);
    assert_eq!(pads.len(), 3);
    let padded = publish_padded(
        &s.input,
        std::slice::from_ref(&s.key),
        &mut pads,
        &mut OsRng,
    )
    .expect("publishes");
    assert!(pads.is_empty(), "every pad is used once");
    for worker in std::iter::once(&s.worker).chain(&others) {
        let policy = ReaderPolicy {
            worker: Some(worker.clone()),
            ..policy(&s)
        };
        let got = read(&padded, &s.input.zone, &policy).expect("reads");
        assert_eq!(
            got.private_key.expect("unseals").secret_pkcs8_der(),
            s.input.private_key.secret_pkcs8_der()
        );
    }
    // without pads (all made now) the same input seals with other ephemeral keys
    let fresh = publish(&s.input, &s.key, &mut OsRng).expect("publishes");
    let (a, b) = (sealed_keys(&padded), sealed_keys(&fresh));
    assert_eq!(a.len(), 4);
    assert!(a.iter().all(|k| !b.contains(k)), "no sealed key repeats");
}
