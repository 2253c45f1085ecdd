//! Arbitrary bytes -> DNS records -> `bundle::read` and `bundle::inspect`.
//!
//! Input: one flags byte, then resource records in DNS wire form one after
//! another (what `tests/vectors/bundle.wire` holds), decoded until the first
//! that does not parse. Flags: bit 0 read as worker 0 of the golden vectors,
//! bit 1 require the golden root, bit 2 hold version 41, bit 3 minimum format 2, bit 4
//! cluster id "example" (the v2 vectors'). The keys are the
//! golden vectors' so a mutated golden bundle gets past the signature when
//! the mutation is outside the signed bytes.
#![no_main]

use std::sync::OnceLock;

use certzone::bundle::{
    ReaderPolicy, VerifyingKey, WorkerSecretKey, inspect, read, verifying_key_from_pem, zone_text,
};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    zone: Name,
    pinned: VerifyingKey,
    worker: WorkerSecretKey,
    root: Vec<u8>,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        zone: Name::from_ascii("_certzone.example.test.").expect("valid zone"),
        pinned: verifying_key_from_pem(include_str!("../../tests/vectors/signing.pub.pem"))
            .expect("golden public key"),
        worker: WorkerSecretKey::from_pem(include_str!("../../tests/vectors/worker-0.key.pem"))
            .expect("golden worker key"),
        root: include_bytes!("../../tests/vectors/chain-2.der").to_vec(),
    })
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

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let fx = fixed();
    let records = records(rest);
    let policy = ReaderPolicy {
        held_version: (flags & 4 != 0).then_some(41),
        minimum_format: if flags & 8 != 0 { 2 } else { 1 },
        cluster_id: if flags & 16 != 0 { "example".into() } else { String::new() },
        required_names: vec!["www.example.test".into()],
        worker: (flags & 1 != 0).then(|| fx.worker.clone()),
        roots: if flags & 2 != 0 {
            vec![fx.root.clone()]
        } else {
            vec![]
        },
        ..ReaderPolicy::new(vec![fx.pinned], 1_893_456_000)
    };
    let _ = read(&records, &fx.zone, &policy);
    let _ = inspect(&records, &fx.zone, &[fx.pinned], None);
    let _ = zone_text(&records);
});
