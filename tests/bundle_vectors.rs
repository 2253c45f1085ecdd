//! Golden vectors: a fixed signing key, fixed worker keys, a fixed chain
//! and fixed randomness give byte-exact records, checked in as
//! `tests/vectors/bundle.zone` (zone text) and `bundle.wire` (the records'
//! DNS wire form, one after another). A second, independent verifier
//! written from docs/PROTOCOL.md alone checks the same file.
//!
//! Regenerate with `CERTZONE_REGENERATE_VECTORS=1 cargo test --test bundle_vectors`;
//! key and chain files are only made when missing.

mod bundle_common;

use std::path::PathBuf;
use std::sync::OnceLock;

use bundle_common::make_chain;
use certzone::bundle::{
    BundleInput, ReaderPolicy, SigningKey, VerifyingKey, WorkerSecretKey, publish, read,
    signing_key_from_pem, signing_key_to_pem, verifying_key_from_pem, verifying_key_to_pem,
    zone_text,
};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::BinEncodable as _;
use hickory_proto::serialize::txt::Parser;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use rustls_pki_types::PrivatePkcs8KeyDer;

#[path = "bundle_common/independent.rs"]
mod independent;

pub(crate) const ZONE: &str = "_certzone.example.test.";
pub(crate) const VERSION: u64 = 42;
pub(crate) const SEED: [u8; 32] = [0x42; 32];
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
    if !regenerate() || dir().join("signing.key.pem").exists() {
        return;
    }
    std::fs::create_dir_all(dir()).expect("mkdir");
    let mut rng = ChaCha20Rng::from_seed([0x17; 32]);
    let key = SigningKey::random(&mut rng);
    write(
        "signing.key.pem",
        signing_key_to_pem(&key).expect("pem").as_bytes(),
    );
    write(
        "signing.pub.pem",
        verifying_key_to_pem(key.verifying_key())
            .expect("pem")
            .as_bytes(),
    );
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
    std::fs::write(dir().join(name), bytes).expect("write vector");
}

struct Vectors {
    key: SigningKey,
    pinned: VerifyingKey,
    workers: Vec<WorkerSecretKey>,
    input: BundleInput,
}

/// Tests run in parallel: regeneration happens once, before any loads.
fn load() -> Vectors {
    static PREPARED: OnceLock<()> = OnceLock::new();
    PREPARED.get_or_init(|| {
        make_fixed_inputs();
        if regenerate() {
            let records = published(&load_files());
            write("bundle.zone", zone_text(&records).as_bytes());
            write("bundle.wire", &wire(&records));
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
        version: VERSION,
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
        workers,
        input,
    }
}

fn published(v: &Vectors) -> Vec<Record> {
    publish(&v.input, &v.key, &mut ChaCha20Rng::from_seed(SEED)).expect("publishes")
}

fn wire(records: &[Record]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| r.to_bytes().expect("encodes"))
        .collect()
}

#[test]
fn records_are_byte_exact() {
    let v = load();
    let records = published(&v);
    let text = zone_text(&records);
    assert_eq!(
        text,
        text_file("bundle.zone"),
        "zone text differs from tests/vectors/bundle.zone"
    );
    assert_eq!(
        wire(&records),
        read_file("bundle.wire"),
        "wire form differs from tests/vectors/bundle.wire"
    );
    assert_eq!(v.pinned, *v.key.verifying_key());
}

#[test]
fn every_worker_reads_the_golden_bundle() {
    let v = load();
    let records = published(&v);
    for worker in &v.workers {
        let policy = ReaderPolicy {
            pinned: v.pinned,
            held_version: Some(VERSION - 1),
            required_names: vec!["www.example.test".into()],
            now: NOW,
            worker: Some(worker.clone()),
            roots: vec![v.input.chain[CHAIN - 1].clone()],
        };
        let got = read(&records, &v.input.zone, &policy).expect("golden bundle reads");
        let key = got.private_key.expect("key");
        assert_eq!(
            key.secret_pkcs8_der(),
            v.input.private_key.secret_pkcs8_der()
        );
    }
}

/// hickory's own zone-file parser reads the checked-in text back to the
/// same records (so a zone file written from `zone_text` loads as-is).
#[test]
fn zone_text_parses_back() {
    let v = load();
    let text = text_file("bundle.zone");
    let soa =
        format!("{ZONE} 300 IN SOA ns.example.test. admin.example.test. 1 7200 3600 1209600 300\n");
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
    let mut expected = published(&v);
    expected.sort_by_key(|r| r.name.to_string());
    let mut ours: Vec<Record> = parsed
        .into_iter()
        .filter(|r| r.record_type() != hickory_proto::rr::RecordType::SOA)
        .collect();
    ours.sort_by_key(|r| r.name.to_string());
    assert_eq!(ours, expected);
}

#[test]
fn independent_verifier_accepts_the_golden_zone_text() {
    let v = load();
    let text = text_file("bundle.zone");
    let worker_pem = text_file("worker-1.key.pem");
    let key =
        independent::verify_and_unseal(&text, ZONE, &text_file("signing.pub.pem"), &worker_pem);
    assert_eq!(key, v.input.private_key.secret_pkcs8_der());
}

/// BIND's `named-checkzone` accepts the golden records in a zone with an
/// SOA and NS; skipped (and says so) where BIND's tools are not installed.
#[test]
fn named_checkzone_accepts_when_installed() {
    let head = format!(
        "$ORIGIN {ZONE}\n@ 300 IN SOA ns.example.test. admin.example.test. 1 7200 3600 1209600 300\n@ 300 IN NS ns.example.test.\n"
    );
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), format!("{head}{}", text_file("bundle.zone"))).expect("write");
    let run = std::process::Command::new("named-checkzone")
        .args(["-i", "full", ZONE])
        .arg(file.path())
        .output();
    match run {
        Ok(out) => assert!(
            out.status.success(),
            "named-checkzone: {}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => eprintln!("named-checkzone not installed (apt-get install bind9-utils): skipped"),
    }
}
