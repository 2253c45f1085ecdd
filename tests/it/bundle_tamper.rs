//! Every tampering a transfer path could do is refused, each by its own
//! check: swapped or reordered certificates, a flipped byte anywhere, a
//! foreign signer, rollback, missing or duplicated records, someone else's
//! key, a sealed key not listed in the manifest, an expired leaf, names
//! that do not cover the node, unknown formats.

use crate::bundle_common::{Fixture, NAMES, find, make_chain, rdata_bytes, with_rdata, zone};
use crate::common;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use certzone::bundle::{BundleError, WorkerSecretKey, generate_signing_key, read};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record};
use rand_core::OsRng;

fn read_as(fx: &Fixture, records: &[Record], worker: usize) -> Result<(), BundleError> {
    read(records, &zone(), &fx.policy(Some(worker))).map(|_| ())
}

#[test]
fn reordered_chain_fails_the_signature() {
    let _gate = common::gate();
    let fx = Fixture::new(3, 1);
    let mut records = fx.publish();
    let (a, b) = (find(&records, "0.chain"), find(&records, "1.chain"));
    let data_a = records[a].data.clone();
    records[a].data = records[b].data.clone();
    records[b].data = data_a;
    assert_eq!(read_as(&fx, &records, 0), Err(BundleError::BadSignature));
}

#[test]
fn swapped_in_certificate_fails_the_signature() {
    let _gate = common::gate();
    let fx = Fixture::new(2, 1);
    let other = Fixture::new(2, 0);
    let mut records = fx.publish();
    let foreign = other.publish();
    let i = find(&records, "1.chain");
    records[i].data = foreign[find(&foreign, "1.chain")].data.clone();
    assert_eq!(read_as(&fx, &records, 0), Err(BundleError::BadSignature));
}

#[test]
fn one_flipped_byte_in_any_rdata_is_refused() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let records = fx.publish();
    let mut tried = 0;
    for (r, record) in records.iter().enumerate() {
        let bytes = rdata_bytes(record);
        for pos in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[pos] ^= 0x01;
            let Some(changed) = with_rdata(record, &flipped) else {
                continue;
            };
            let mut tampered = records.clone();
            tampered[r] = changed;
            let result = read_as(&fx, &tampered, 0);
            assert!(result.is_err(), "flip at {pos} of {} accepted", record.name);
            tried += 1;
        }
    }
    assert!(tried > 500, "only {tried} flips decoded");
}

#[test]
fn signature_by_another_key_is_refused() {
    let _gate = common::gate();
    let mut fx = Fixture::new(2, 1);
    let records = {
        let real = fx.key.clone();
        fx.key = generate_signing_key(&mut OsRng);
        let forged = fx.publish();
        fx.key = real;
        forged
    };
    // format 2 names its signer: not a pinned one
    assert!(matches!(
        read_as(&fx, &records, 0),
        Err(BundleError::UnknownSigner(_))
    ));
    // format 1 does not: its one signature fails under the pinned key
    fx.input.format = 1;
    fx.input.minimum_format = 1;
    fx.input.cluster_id.clear();
    let forged =
        certzone::bundle::publish(&fx.input, &generate_signing_key(&mut OsRng), &mut OsRng)
            .expect("publishes");
    let mut policy = fx.policy(Some(0));
    policy.cluster_id.clear();
    assert_eq!(
        read(&forged, &zone(), &policy).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn rollback_and_same_version_are_refused_apart() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    fx.input.version = 8;
    let records = fx.publish();
    let expect = BundleError::Rollback { held: 9, got: 8 };
    assert_eq!(read_as(&fx, &records, 0), Err(expect));
    fx.input.version = 9;
    assert_eq!(
        read_as(&fx, &fx.publish(), 0),
        Err(BundleError::SameVersion(9))
    );
}

#[test]
fn every_missing_record_is_named() {
    let _gate = common::gate();
    let fx = Fixture::new(2, 2);
    let records = fx.publish();
    for prefix in ["manifest.", "0.chain.", "1.chain."] {
        let mut short = records.clone();
        short.remove(find(&records, prefix));
        let err = read_as(&fx, &short, 0).unwrap_err();
        assert!(
            matches!(&err, BundleError::MissingRecord(n) if n.starts_with(prefix)),
            "{err}"
        );
    }
    let mut short = records;
    short.pop();
    assert!(matches!(
        read_as(&fx, &short, 0),
        Err(BundleError::MissingRecord(_))
    ));
}

#[test]
fn duplicated_records_are_refused() {
    let _gate = common::gate();
    let fx = Fixture::new(2, 1);
    let records = fx.publish();
    for i in 0..records.len() {
        let mut twice = records.clone();
        twice.push(records[i].clone());
        assert!(matches!(
            read_as(&fx, &twice, 0),
            Err(BundleError::DuplicateRecord(_))
        ));
    }
    let mut two_leaves = records.clone();
    let mut second = records[find(&records, "0.chain")].clone();
    second.data = records[find(&records, "1.chain")].data.clone();
    two_leaves.push(second);
    assert!(matches!(
        read_as(&fx, &two_leaves, 0),
        Err(BundleError::DuplicateRecord(_))
    ));
}

#[test]
fn records_beyond_the_manifest_are_refused() {
    let _gate = common::gate();
    let fx = Fixture::new(2, 1);
    let mut records = fx.publish();
    let mut extra = records[find(&records, "1.chain")].clone();
    extra.name = "2.chain._certzone.example.test.".parse().expect("name");
    records.push(extra);
    assert!(matches!(
        read_as(&fx, &records, 0),
        Err(BundleError::UnexpectedRecord(_))
    ));
}

#[test]
fn keys_records_must_be_exactly_the_listed_ids() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 3);
    let records = fx.publish();
    let mine = format!("{}.keys.", fx.workers[1].key_id());
    let mut short = records.clone();
    short.remove(find(&records, &mine));
    let err = read_as(&fx, &short, 0).unwrap_err();
    assert!(
        matches!(&err, BundleError::MissingRecord(n) if n.starts_with(&mine)),
        "{err}"
    );
    let stranger = WorkerSecretKey::generate(&mut OsRng).key_id();
    let mut extra = records.clone();
    let mut moved = records[find(&records, &mine)].clone();
    moved.name = format!("{stranger}.keys._certzone.example.test.")
        .parse()
        .expect("name");
    extra.push(moved.clone());
    let err = read_as(&fx, &extra, 0).unwrap_err();
    let want = format!("{stranger}.keys.");
    assert!(
        matches!(&err, BundleError::UnexpectedRecord(n) if n.starts_with(&want)),
        "{err}"
    );
    // renamed: same count as the manifest says, but not the listed ids
    short.push(moved);
    assert!(matches!(
        read_as(&fx, &short, 0),
        Err(BundleError::UnexpectedRecord(_))
    ));
}

#[test]
fn a_worker_not_listed_gets_no_key() {
    let _gate = common::gate();
    let mut fx = Fixture::new(2, 2);
    fx.input.workers.remove(1);
    let records = fx.publish();
    assert!(matches!(
        read_as(&fx, &records, 1),
        Err(BundleError::NoKeyForMe(_))
    ));
    assert!(read_as(&fx, &records, 0).is_ok());
}

#[test]
fn a_sealed_key_moved_to_another_worker_is_refused() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 2);
    let mut records = fx.publish();
    let mine = format!("{}.keys", fx.workers[1].key_id());
    let theirs = format!("{}.keys", fx.workers[0].key_id());
    let (m, t) = (find(&records, &mine), find(&records, &theirs));
    records[m].data = records[t].data.clone();
    assert_eq!(read_as(&fx, &records, 1), Err(BundleError::BadSignature));
}

#[test]
fn an_expired_leaf_is_refused() {
    let _gate = common::gate();
    let fx = Fixture::with_chain(make_chain(2, NAMES, ((2020, 1, 1), (2021, 1, 1))), 1);
    let err = read_as(&fx, &fx.publish(), 0).unwrap_err();
    assert!(matches!(err, BundleError::LeafExpired { .. }), "{err}");
}

#[test]
fn names_that_do_not_cover_the_node_are_refused() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    fx.input.names = vec!["example.test".into()];
    let err = read_as(&fx, &fx.publish(), 0).unwrap_err();
    assert_eq!(err, BundleError::NameNotCovered("www.example.test".into()));
    let mut policy = fx.policy(Some(0));
    policy.required_names = vec!["a.b.example.test".into()];
    fx.input.names = NAMES.iter().map(|n| n.to_string()).collect();
    let err = read(&fx.publish(), &zone(), &policy).unwrap_err();
    assert_eq!(err, BundleError::NameNotCovered("a.b.example.test".into()));
}

#[test]
fn an_unknown_format_version_is_refused_as_such() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let mut records = fx.publish();
    let i = find(&records, "manifest.");
    let RData::TXT(txt) = &records[i].data else {
        panic!("manifest is TXT");
    };
    let mut payload = STANDARD.decode(txt.txt_data.concat()).expect("base64");
    payload[0] = 3;
    let text = STANDARD.encode(payload);
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
    records[i].data = RData::TXT(TXT::from_bytes(chunks));
    assert_eq!(
        read_as(&fx, &records, 0),
        Err(BundleError::UnknownFormat(3))
    );
}

#[test]
fn size_limits_hold_on_parse() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let mut records = fx.publish();
    let mut far = records[find(&records, "0.chain")].clone();
    far.name = "9.chain._certzone.example.test.".parse().expect("name");
    records.push(far);
    assert!(matches!(
        read_as(&fx, &records, 0),
        Err(BundleError::TooLarge { .. })
    ));

    let mut records = fx.publish();
    let key = records[find(&records, "manifest.")].clone();
    for _ in 0..300 {
        let mut fake = key.clone();
        let id = WorkerSecretKey::generate(&mut OsRng).key_id();
        fake.name = format!("{id}.keys._certzone.example.test.")
            .parse()
            .expect("name");
        records.push(fake);
    }
    assert!(matches!(
        read_as(&fx, &records, 0),
        Err(BundleError::TooLarge { .. })
    ));
}

#[test]
fn wrong_cert_fields_are_malformed() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let mut records = fx.publish();
    let i = find(&records, "0.chain");
    let mut bytes = rdata_bytes(&records[i]);
    bytes[3] = 7; // key tag low byte
    records[i] = with_rdata(&records[i], &bytes).expect("still CERT");
    assert!(matches!(
        read_as(&fx, &records, 0),
        Err(BundleError::Malformed { .. })
    ));
}

#[test]
fn publisher_refuses_bad_input() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    fx.input.names = vec!["other.test".into()];
    let err = certzone::bundle::publish(&fx.input, &fx.key, &mut OsRng).unwrap_err();
    assert_eq!(err, BundleError::LeafNameMismatch("other.test".into()));
    fx.input.names = vec!["bad name".into()];
    let err = certzone::bundle::publish(&fx.input, &fx.key, &mut OsRng).unwrap_err();
    assert!(matches!(err, BundleError::InvalidInput(_)));
}

#[test]
fn a_newer_format_is_refused_as_such_whatever_its_other_records() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let mut records = fx.publish();
    let i = find(&records, "manifest.");
    let RData::TXT(txt) = &records[i].data else {
        panic!("manifest is TXT");
    };
    let mut payload = STANDARD.decode(txt.txt_data.concat()).expect("base64");
    payload[0] = 9;
    payload.extend(vec![0u8; 40_000]);
    let text = STANDARD.encode(payload);
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
    records[i].data = RData::TXT(TXT::from_bytes(chunks));
    let mut odd = records[find(&records, "0.chain")].clone();
    odd.name = "00.chain._certzone.example.test.".parse().expect("name");
    records.push(odd);
    assert_eq!(
        read_as(&fx, &records, 0),
        Err(BundleError::UnknownFormat(9))
    );
}
