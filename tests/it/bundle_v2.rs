//! Format 2's reader rules through the public API: the zone and the cluster
//! are signed and checked, a version or publication time from the future is
//! refused, floors (held state, `minimum-version`, `minimum-published`,
//! minimum format) hold, and several signers give key rotation: any pinned
//! signer is enough, a pinned signer's bad signature is not, and signatures
//! cannot be stripped or added. Records of other classes are not the bundle's.

use crate::bundle_common::{CLUSTER, Fixture, NOW, find, zone};
use crate::common;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use certzone::bundle::{
    BundleError, ReaderPolicy, generate_signing_key, inspect, publish_signed, read, signing_key_id,
};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use rand_core::OsRng;

fn refused(records: &[Record], policy: &ReaderPolicy) -> BundleError {
    read(records, &zone(), policy).expect_err("must be refused")
}

#[test]
fn another_zone_or_cluster_is_refused() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    let records = fx.publish();
    let mut policy = fx.policy(Some(0));
    policy.cluster_id = "staging".into();
    assert_eq!(
        refused(&records, &policy),
        BundleError::WrongCluster {
            expected: "staging".into(),
            got: CLUSTER.into(),
        }
    );
    // The same records renamed into another zone: the signature still holds, the zone not.
    fx.input.zone = Name::from_ascii("_certzone.other.test.").unwrap();
    let elsewhere = fx.publish();
    let renamed: Vec<Record> = elsewhere
        .into_iter()
        .map(|mut r| {
            let text = r.name.to_string().replace("other.test", "example.test");
            r.name = Name::from_ascii(text).unwrap();
            r
        })
        .collect();
    let err = refused(&renamed, &fx.policy(Some(0)));
    assert_eq!(err.rule(), "zone", "{err}");
    assert!(err.to_string().contains("_certzone.other.test"), "{err}");
}

#[test]
fn a_version_or_publication_from_the_future_is_refused() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    fx.input.version = NOW + 3601;
    let err = refused(&fx.publish(), &fx.policy(Some(0)));
    assert!(
        matches!(
            err,
            BundleError::TooNew {
                what: "bundle version",
                ..
            }
        ),
        "{err}"
    );
    fx.input.version = NOW + 3600;
    assert!(
        read(&fx.publish(), &zone(), &fx.policy(Some(0))).is_ok(),
        "the bound itself"
    );
    fx.input.version = 10;
    fx.input.published = NOW + 7200;
    let err = refused(&fx.publish(), &fx.policy(Some(0)));
    assert!(
        matches!(
            err,
            BundleError::TooNew {
                what: "publication time",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn floors_refuse_older_bundles_even_with_nothing_held() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let records = fx.publish();
    let fresh = ReaderPolicy {
        held_version: None,
        ..fx.policy(Some(0))
    };
    assert!(read(&records, &zone(), &fresh).is_ok());
    let at_floor = ReaderPolicy {
        minimum_version: 10,
        ..fresh.clone()
    };
    assert!(
        read(&records, &zone(), &at_floor).is_ok(),
        "the floor is inclusive"
    );
    let above = ReaderPolicy {
        minimum_version: 11,
        ..fresh.clone()
    };
    assert_eq!(
        refused(&records, &above),
        BundleError::BelowFloor {
            what: "bundle version",
            floor: 11,
            got: 10
        }
    );
    let published = ReaderPolicy {
        minimum_published: fx.input.published + 1,
        ..fresh
    };
    assert!(matches!(
        refused(&records, &published),
        BundleError::BelowFloor {
            what: "publication time",
            ..
        }
    ));
}

#[test]
fn a_publication_floor_or_a_format_floor_refuses_format_1() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    fx.input.format = 1;
    fx.input.minimum_format = 1;
    fx.input.cluster_id.clear();
    let v1 = fx.publish();
    let policy = ReaderPolicy {
        cluster_id: String::new(),
        ..fx.policy(Some(0))
    };
    assert!(read(&v1, &zone(), &policy).is_ok());
    let dated = ReaderPolicy {
        minimum_published: 1,
        ..policy.clone()
    };
    assert!(matches!(
        refused(&v1, &dated),
        BundleError::BelowFloor {
            what: "publication time",
            got: 0,
            ..
        }
    ));
    let v2_only = ReaderPolicy {
        minimum_format: 2,
        ..policy
    };
    assert_eq!(
        refused(&v1, &v2_only),
        BundleError::FormatDowngrade { floor: 2, got: 1 }
    );
}

#[test]
fn a_minimum_format_of_1_keeps_the_way_back_open() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    fx.input.minimum_format = 1;
    let got = read(&fx.publish(), &zone(), &fx.policy(Some(0))).unwrap();
    assert_eq!((got.format, got.minimum_format), (2, 1));
}

/// Key rotation as workers see it: A and B sign; a worker trusting A, B or both reads it.
#[test]
fn two_signers_and_any_pinned_one_is_enough() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let b = generate_signing_key(&mut OsRng);
    let both = publish_signed(&fx.input, &[fx.key.clone(), b.clone()], &mut OsRng).unwrap();
    for pinned in [
        vec![*fx.key.verifying_key()],
        vec![*b.verifying_key()],
        vec![*b.verifying_key(), *fx.key.verifying_key()],
    ] {
        let policy = ReaderPolicy {
            pinned: pinned.clone(),
            ..fx.policy(Some(0))
        };
        let got = read(&both, &zone(), &policy).unwrap();
        assert_eq!(got.signers.len(), pinned.len());
    }
    let seen = inspect(&both, &zone(), &[*b.verifying_key()], Some(CLUSTER)).unwrap();
    let mut ids = vec![
        signing_key_id(fx.key.verifying_key()),
        signing_key_id(b.verifying_key()),
    ];
    ids.sort();
    let listed: Vec<_> = seen.signers.iter().map(|(id, _)| *id).collect();
    assert_eq!(listed, ids, "signer ids ascending");
    let b_id = signing_key_id(b.verifying_key());
    assert!(seen.signers.contains(&(b_id, true)));
}

/// A pinned signer's signature must verify even when another pinned one does.
#[test]
fn a_bad_signature_by_a_pinned_key_fails_the_bundle() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let b = generate_signing_key(&mut OsRng);
    let mut both = publish_signed(&fx.input, &[fx.key.clone(), b.clone()], &mut OsRng).unwrap();
    let i = find(&both, "manifest.");
    let RData::TXT(txt) = &both[i].data else {
        panic!("manifest is TXT");
    };
    let mut payload = STANDARD.decode(txt.txt_data.concat()).unwrap();
    let last = payload.len() - 1;
    payload[last] ^= 1; // the second signature's last byte
    let text = STANDARD.encode(&payload);
    both[i].data = RData::TXT(TXT::from_bytes(text.as_bytes().chunks(255).collect()));
    let policy = ReaderPolicy {
        pinned: vec![*fx.key.verifying_key(), *b.verifying_key()],
        ..fx.policy(Some(0))
    };
    assert_eq!(refused(&both, &policy), BundleError::BadSignature);
    // one signature stripped: the signer list is signed, so the count no longer matches
    payload.truncate(payload.len() - 64);
    let text = STANDARD.encode(&payload);
    both[i].data = RData::TXT(TXT::from_bytes(text.as_bytes().chunks(255).collect()));
    assert_eq!(refused(&both, &policy).rule(), "record");
}

#[test]
fn publisher_refuses_what_readers_would() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 1);
    let keys = [fx.key.clone(), fx.key.clone()];
    assert!(matches!(
        publish_signed(&fx.input, &keys, &mut OsRng),
        Err(BundleError::InvalidInput(_))
    ));
    let five: Vec<_> = (0..5).map(|_| generate_signing_key(&mut OsRng)).collect();
    assert!(publish_signed(&fx.input, &five, &mut OsRng).is_err());
    fx.input.cluster_id = "Bad Id".into();
    assert!(publish_signed(&fx.input, &keys[..1], &mut OsRng).is_err());
    fx.input.cluster_id.clear();
    fx.input.format = 1;
    assert!(
        publish_signed(&fx.input, &keys[..1], &mut OsRng).is_err(),
        "format 1 cannot carry minimum format 2"
    );
    fx.input.minimum_format = 1;
    let two = [fx.key.clone(), generate_signing_key(&mut OsRng)];
    assert!(
        publish_signed(&fx.input, &two, &mut OsRng).is_err(),
        "format 1 has one signer"
    );
    fx.input.names = vec!["*".into()];
    assert!(
        publish_signed(&fx.input, &keys[..1], &mut OsRng).is_err(),
        "a bare wildcard is not a name"
    );
}

#[test]
fn records_of_another_class_are_not_the_bundles() {
    let _gate = common::gate();
    let fx = Fixture::new(1, 1);
    let mut records = fx.publish();
    let mut chaos = records[find(&records, "manifest.")].clone();
    chaos.dns_class = DNSClass::CH;
    records.insert(0, chaos);
    assert!(read(&records, &zone(), &fx.policy(Some(0))).is_ok());
}
