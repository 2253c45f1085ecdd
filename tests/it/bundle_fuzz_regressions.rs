//! Inputs the fuzzer once crashed on (`tests/vectors/fuzz-regressions/`),
//! replayed the way `fuzz/fuzz_targets/read_bundle.rs` feeds them: a flags
//! byte, then DNS wire-format records. They must not panic.

use std::path::PathBuf;

use crate::common;
use certzone::bundle::{
    ReaderPolicy, WorkerSecretKey, inspect, read, verifying_key_from_pem, zone_text,
};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn records(bytes: &[u8]) -> Vec<Record> {
    let mut decoder = BinDecoder::new(bytes);
    let mut out = Vec::new();
    while !decoder.is_empty() {
        match Record::read(&mut decoder) {
            Ok(record) => out.push(record),
            Err(_) => break,
        }
    }
    out
}

#[test]
fn past_crashes_do_not_panic() {
    let _gate = common::gate();
    let pem = std::fs::read_to_string(vectors().join("signing.pub.pem")).expect("golden key");
    let pinned = verifying_key_from_pem(&pem).expect("golden key parses");
    let worker_pem =
        std::fs::read_to_string(vectors().join("worker-0.key.pem")).expect("worker key");
    let worker = WorkerSecretKey::from_pem(&worker_pem).expect("worker key parses");
    let zone = Name::from_ascii("_certzone.example.test.").expect("zone");
    let dir = std::fs::read_dir(vectors().join("fuzz-regressions")).expect("regressions dir");
    for entry in dir {
        let data = std::fs::read(entry.expect("entry").path()).expect("read input");
        let Some((&flags, rest)) = data.split_first() else {
            continue;
        };
        let records = records(rest);
        let policy = ReaderPolicy {
            held_version: (flags & 4 != 0).then_some(41),
            required_names: vec!["www.example.test".into()],
            worker: (flags & 1 != 0).then(|| worker.clone()),
            ..ReaderPolicy::new(vec![pinned], 1_893_456_000)
        };
        let _ = read(&records, &zone, &policy);
        let _ = inspect(&records, &zone, &[pinned], None);
        let _ = zone_text(&records);
    }
}
