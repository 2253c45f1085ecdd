//! Golden vectors: fixed signing keys, fixed worker keys, a fixed chain
//! and fixed randomness give byte-exact records, checked in as zone text
//! and DNS wire form (the records one after another): format 1 in
//! `tests/vectors/bundle.{zone,wire}`, format 2 in
//! `tests/vectors/v2/bundle.{zone,wire}`, and format 2 signed by two keys (a
//! rotation) in `tests/vectors/v2/rotation.{zone,wire}`. A second, independent
//! verifier written from docs/PROTOCOL.md alone checks every zone text, and a
//! reader that accepted format 2 refuses format 1 afterwards.
//!
//! Regenerate with `CERTZONE_REGENERATE_VECTORS=1 cargo test --test it bundle_vectors::`;
//! key and chain files are only made when missing.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::bundle_common::{self, independent, make_chain};
use crate::common;
use certzone::bundle::{
    BundleError, BundleInput, ReaderPolicy, SigningKey, VerifyingKey, WorkerSecretKey,
    publish_signed, read, signing_key_from_pem, signing_key_to_pem, verifying_key_from_pem,
    verifying_key_to_pem, zone_text,
};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::BinEncodable as _;
use hickory_proto::serialize::txt::Parser;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use rustls_pki_types::PrivatePkcs8KeyDer;

pub(crate) const ZONE: &str = "_certzone.example.test.";
pub(crate) const VERSION: u64 = 42;
pub(crate) const SEED: [u8; 32] = [0x42; 32];
/// Format 2's publication time: 2026-01-01T00:00:00Z.
const PUBLISHED: u64 = 1_767_225_600;
const CLUSTER: &str = "example";
const WORKERS: usize = 3;
const CHAIN: usize = 3;
/// 2030-01-01T00:00:00Z
const NOW: u64 = 1_893_456_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn regenerate() -> bool {
    std::env::var_os("CERTZONE_REGENERATE_VECTORS").is_some()
}

fn read_file(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name))
        .unwrap_or_else(|e| panic!("tests/vectors/{name}: {e}; regenerate?"))
}

fn text_file(name: &str) -> String {
    String::from_utf8(read_file(name)).expect("utf-8")
}

/// Makes the key and chain files once (only when regenerating and missing).
fn make_fixed_inputs() {
    if regenerate() && !dir().join("signing-b.key.pem").exists() {
        // the rotation's second key, drawn from a seed of its own
        let key = SigningKey::random(&mut ChaCha20Rng::from_seed([0x18; 32]));
        write_key_pair("signing-b", &key);
    }
    if !regenerate() || dir().join("signing.key.pem").exists() {
        return;
    }
    std::fs::create_dir_all(dir()).expect("mkdir");
    let mut rng = ChaCha20Rng::from_seed([0x17; 32]);
    let key = SigningKey::random(&mut rng);
    write_key_pair("signing", &key);
    for i in 0..WORKERS {
        let worker = WorkerSecretKey::generate(&mut rng);
        write(
            &format!("worker-{i}.key.pem"),
            worker.to_pem().expect("pem").as_bytes(),
        );
        write(
            &format!("worker-{i}.pub.pem"),
            worker.public_key().to_pem().expect("pem").as_bytes(),
        );
    }
    let made = make_chain(
        CHAIN,
        &["example.test", "*.example.test"],
        bundle_common::LEAF_SPAN,
    );
    for (i, der) in made.chain.iter().enumerate() {
        write(&format!("chain-{i}.der"), der);
    }
    write("leaf.key.der", &made.leaf_key);
}

fn write(name: &str, bytes: &[u8]) {
    let path = dir().join(name);
    std::fs::create_dir_all(path.parent().expect("in the vectors dir")).expect("mkdir");
    std::fs::write(path, bytes).expect("write vector");
}

fn write_key_pair(stem: &str, key: &SigningKey) {
    let secret = signing_key_to_pem(key).expect("pem");
    write(&format!("{stem}.key.pem"), secret.as_bytes());
    let public = verifying_key_to_pem(key.verifying_key()).expect("pem");
    write(&format!("{stem}.pub.pem"), public.as_bytes());
}

struct Vectors {
    key: SigningKey,
    pinned: VerifyingKey,
    /// the rotation's second key
    key_b: SigningKey,
    pinned_b: VerifyingKey,
    workers: Vec<WorkerSecretKey>,
    /// format 1's input
    input: BundleInput,
}

/// The three golden bundles.
#[derive(Clone, Copy, Debug)]
enum Golden {
    V1,
    V2,
    Rotation,
}

impl Golden {
    const ALL: [Self; 3] = [Self::V1, Self::V2, Self::Rotation];

    fn file(self, ext: &str) -> String {
        match self {
            Self::V1 => format!("bundle.{ext}"),
            Self::V2 => format!("v2/bundle.{ext}"),
            Self::Rotation => format!("v2/rotation.{ext}"),
        }
    }
}

/// Tests run in parallel: regeneration happens once, before any loads.
fn load() -> Vectors {
    static PREPARED: OnceLock<()> = OnceLock::new();
    PREPARED.get_or_init(|| {
        make_fixed_inputs();
        if regenerate() {
            let v = load_files();
            for golden in Golden::ALL {
                let records = published(&v, golden);
                write(&golden.file("zone"), zone_text(&records).as_bytes());
                write(&golden.file("wire"), &wire(&records));
            }
        }
    });
    load_files()
}

fn load_files() -> Vectors {
    let workers: Vec<WorkerSecretKey> = (0..WORKERS)
        .map(|i| {
            WorkerSecretKey::from_pem(&text_file(&format!("worker-{i}.key.pem")))
                .expect("worker key")
        })
        .collect();
    let input = BundleInput {
        zone: Name::from_ascii(ZONE).expect("zone"),
        ttl: 300,
        format: 1,
        minimum_format: 1,
        version: VERSION,
        published: 0,
        cluster_id: String::new(),
        names: vec!["example.test".into(), "*.example.test".into()],
        chain: (0..CHAIN)
            .map(|i| read_file(&format!("chain-{i}.der")))
            .collect(),
        private_key: PrivatePkcs8KeyDer::from(read_file("leaf.key.der")),
        workers: workers.iter().map(WorkerSecretKey::public_key).collect(),
    };
    Vectors {
        key: signing_key_from_pem(&text_file("signing.key.pem")).expect("signing key"),
        pinned: verifying_key_from_pem(&text_file("signing.pub.pem")).expect("public key"),
        key_b: signing_key_from_pem(&text_file("signing-b.key.pem")).expect("signing key"),
        pinned_b: verifying_key_from_pem(&text_file("signing-b.pub.pem")).expect("public key"),
        workers,
        input,
    }
}

/// Format 1: version 42. Format 2: version 42, published 2026-01-01, cluster "example",
/// minimum format 2. The rotation: format 2, version 43, published a second later,
/// signed by both keys. The same seeded randomness for each.
fn published(v: &Vectors, golden: Golden) -> Vec<Record> {
    let mut input = v.input.clone();
    let mut keys = vec![v.key.clone()];
    if !matches!(golden, Golden::V1) {
        input.format = 2;
        input.minimum_format = 2;
        input.published = PUBLISHED;
        input.cluster_id = CLUSTER.into();
    }
    if matches!(golden, Golden::Rotation) {
        input.version = VERSION + 1;
        input.published = PUBLISHED + 1;
        keys.push(v.key_b.clone());
    }
    publish_signed(&input, &keys, &mut ChaCha20Rng::from_seed(SEED)).expect("publishes")
}

fn policy(v: &Vectors, golden: Golden, pinned: Vec<VerifyingKey>) -> ReaderPolicy {
    ReaderPolicy {
        cluster_id: if matches!(golden, Golden::V1) {
            String::new()
        } else {
            CLUSTER.into()
        },
        held_version: Some(VERSION - 1),
        required_names: vec!["www.example.test".into()],
        roots: vec![v.input.chain[CHAIN - 1].clone()],
        ..ReaderPolicy::new(pinned, NOW)
    }
}

fn wire(records: &[Record]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| r.to_bytes().expect("encodes"))
        .collect()
}

#[test]
fn records_are_byte_exact() {
    let _gate = common::gate();
    let v = load();
    for golden in Golden::ALL {
        let records = published(&v, golden);
        assert_eq!(
            zone_text(&records),
            text_file(&golden.file("zone")),
            "zone text differs from tests/vectors/{}",
            golden.file("zone")
        );
        assert_eq!(
            wire(&records),
            read_file(&golden.file("wire")),
            "wire form differs from tests/vectors/{}",
            golden.file("wire")
        );
    }
    assert_eq!(v.pinned, *v.key.verifying_key());
    assert_eq!(v.pinned_b, *v.key_b.verifying_key());
}

#[test]
fn every_worker_reads_every_golden_bundle() {
    let _gate = common::gate();
    let v = load();
    for golden in Golden::ALL {
        let records = published(&v, golden);
        for worker in &v.workers {
            let policy = ReaderPolicy {
                worker: Some(worker.clone()),
                ..policy(&v, golden, vec![v.pinned])
            };
            let got = read(&records, &v.input.zone, &policy)
                .unwrap_or_else(|e| panic!("{golden:?} reads: {e}"));
            let key = got.private_key.expect("key");
            assert_eq!(
                key.secret_pkcs8_der(),
                v.input.private_key.secret_pkcs8_der()
            );
        }
    }
}

/// The rotation bundle reads under either key alone, and under neither not at all.
#[test]
fn the_rotation_bundle_reads_under_either_key() {
    let _gate = common::gate();
    let v = load();
    let records = published(&v, Golden::Rotation);
    for pinned in [vec![v.pinned], vec![v.pinned_b], vec![v.pinned_b, v.pinned]] {
        let got = read(
            &records,
            &v.input.zone,
            &policy(&v, Golden::Rotation, pinned.clone()),
        )
        .expect("reads");
        assert_eq!(got.signers.len(), pinned.len());
    }
    let stranger = *SigningKey::random(&mut ChaCha20Rng::from_seed([9; 32])).verifying_key();
    let err = read(
        &records,
        &v.input.zone,
        &policy(&v, Golden::Rotation, vec![stranger]),
    )
    .unwrap_err();
    assert!(
        matches!(err, BundleError::UnknownSigner(ref ids) if ids.len() == 2),
        "{err}"
    );
    // the format 2 bundle signed by A alone: refused once only B is trusted
    let a_only = published(&v, Golden::V2);
    let err = read(
        &a_only,
        &v.input.zone,
        &policy(&v, Golden::V2, vec![v.pinned_b]),
    )
    .unwrap_err();
    assert_eq!(err.rule(), "signature");
}

/// A reader that accepted format 2 (minimum format 2) refuses format 1 from then on,
/// even a format 1 bundle with a higher version.
#[test]
fn a_format_2_reader_refuses_format_1_after_format_2() {
    let _gate = common::gate();
    let v = load();
    let zone = &v.input.zone;
    let v1 = published(&v, Golden::V1);
    let fresh = policy(&v, Golden::V1, vec![v.pinned]);
    assert!(
        read(&v1, zone, &fresh).is_ok(),
        "a fresh reader still takes format 1"
    );
    let seen = read(
        &published(&v, Golden::V2),
        zone,
        &policy(&v, Golden::V2, vec![v.pinned]),
    )
    .expect("format 2 reads");
    assert_eq!((seen.format, seen.minimum_format), (2, 2));
    let after = ReaderPolicy {
        minimum_format: seen.minimum_format,
        held_version: Some(VERSION - 1),
        ..fresh
    };
    assert_eq!(
        read(&v1, zone, &after).unwrap_err(),
        BundleError::FormatDowngrade { floor: 2, got: 1 }
    );
}

/// hickory's own zone-file parser reads the checked-in text back to the
/// same records (so a zone file written from `zone_text` loads as-is).
#[test]
fn zone_text_parses_back() {
    let _gate = common::gate();
    let v = load();
    for golden in Golden::ALL {
        let text = text_file(&golden.file("zone"));
        let soa = format!(
            "{ZONE} 300 IN SOA ns.example.test. admin.example.test. 1 7200 3600 1209600 300\n"
        );
        let (_, sets) = Parser::new(
            format!("{soa}{text}"),
            None,
            Some(Name::from_ascii(ZONE).expect("zone")),
        )
        .parse()
        .expect("zone text parses");
        let parsed: Vec<Record> = sets
            .into_values()
            .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
            .collect();
        let mut expected = published(&v, golden);
        expected.sort_by_key(|r| r.name.to_string());
        let mut ours: Vec<Record> = parsed
            .into_iter()
            .filter(|r| r.record_type() != hickory_proto::rr::RecordType::SOA)
            .collect();
        ours.sort_by_key(|r| r.name.to_string());
        assert_eq!(ours, expected, "{golden:?}");
    }
}

#[test]
fn independent_verifier_accepts_every_golden_zone_text() {
    let _gate = common::gate();
    let v = load();
    let worker_pem = text_file("worker-1.key.pem");
    let a = text_file("signing.pub.pem");
    let b = text_file("signing-b.pub.pem");
    let cases: [(Golden, &str, &str); 4] = [
        (Golden::V1, &a, ""),
        (Golden::V2, &a, CLUSTER),
        (Golden::Rotation, &a, CLUSTER),
        (Golden::Rotation, &b, CLUSTER),
    ];
    for (golden, pinned, cluster) in cases {
        let text = text_file(&golden.file("zone"));
        let key = independent::verify_and_unseal(&text, ZONE, cluster, pinned, &worker_pem);
        assert_eq!(key, v.input.private_key.secret_pkcs8_der(), "{golden:?}");
    }
}

/// BIND's `named-checkzone` accepts the golden records in a zone with an
/// SOA and NS; skipped (and says so) where BIND's tools are not installed.
#[test]
fn named_checkzone_accepts_when_installed() {
    let _gate = common::gate();
    let head = format!(
        "$ORIGIN {ZONE}\n@ 300 IN SOA ns.example.test. admin.example.test. 1 7200 3600 1209600 300\n@ 300 IN NS ns.example.test.\n"
    );
    for golden in Golden::ALL {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let body = text_file(&golden.file("zone"));
        std::fs::write(file.path(), format!("{head}{body}")).expect("write");
        let run = std::process::Command::new("named-checkzone")
            .args(["-i", "full", ZONE])
            .arg(file.path())
            .output();
        match run {
            Ok(out) => assert!(
                out.status.success(),
                "named-checkzone {golden:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            ),
            Err(_) => {
                eprintln!("named-checkzone not installed (apt-get install bind9-utils): skipped");
                return;
            }
        }
    }
}
