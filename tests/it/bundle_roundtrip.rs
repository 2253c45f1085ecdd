//! Round trips: chains of 1-4 certificates, 1-50 workers, every worker
//! unseals the same key; inspect describes the chain.

use crate::bundle_common::{Fixture, NAMES, zone};
use crate::common;
use certzone::bundle::{BundleError, inspect, read};

#[test]
fn every_worker_unseals_the_same_key_for_chains_of_1_to_4() {
    let _gate = common::gate();
    for (chain_len, workers) in [(1, 1), (2, 7), (3, 2), (4, 50)] {
        let fx = Fixture::new(chain_len, workers);
        let records = fx.publish();
        assert_eq!(records.len(), 1 + chain_len + workers);
        for i in 0..workers {
            let got = read(&records, &zone(), &fx.policy(Some(i))).expect("reads");
            let key = got.private_key.expect("a worker gets a key");
            assert_eq!(key.secret_pkcs8_der(), fx.made.leaf_key.as_slice());
            assert_eq!(got.chain, fx.made.chain);
            assert_eq!(got.version, 10);
        }
    }
}

#[test]
fn reader_without_worker_key_gets_no_key() {
    let _gate = common::gate();
    let fx = Fixture::new(2, 1);
    let got = read(&fx.publish(), &zone(), &fx.policy(None)).expect("reads");
    assert!(got.private_key.is_none());
    assert_eq!(
        got.names,
        vec!["*.example.test".to_string(), "example.test".to_string()]
    );
    assert!(got.not_after > 0);
}

#[test]
fn records_are_found_in_any_order_and_among_others() {
    let _gate = common::gate();
    let fx = Fixture::new(3, 3);
    let mut records = fx.publish();
    records.reverse();
    let soa_like = records[0].clone();
    let mut unrelated = soa_like;
    unrelated.name = "www.example.test.".parse().expect("name");
    records.insert(1, unrelated);
    assert!(read(&records, &zone(), &fx.policy(Some(2))).is_ok());
}

#[test]
fn owner_names_are_case_insensitive() {
    let _gate = common::gate();
    let fx = Fixture::new(2, 1);
    let upper = zone().to_string().to_uppercase();
    let upper = upper.parse().expect("name");
    assert!(read(&fx.publish(), &upper, &fx.policy(Some(0))).is_ok());
}

#[test]
fn roots_are_checked_when_configured() {
    let _gate = common::gate();
    let fx = Fixture::new(3, 1);
    let records = fx.publish();
    let mut policy = fx.policy(Some(0));
    policy.roots = vec![fx.made.chain[2].clone()];
    assert!(read(&records, &zone(), &policy).is_ok());
    let other = Fixture::new(2, 0);
    policy.roots = vec![other.made.chain[1].clone()];
    assert_eq!(
        read(&records, &zone(), &policy).unwrap_err(),
        BundleError::UntrustedRoot
    );
}

#[test]
fn inspect_reports_subject_and_issuer_of_each_certificate() {
    let _gate = common::gate();
    let fx = Fixture::new(3, 4);
    let seen = inspect(&fx.publish(), &zone(), &[*fx.key.verifying_key()], None).expect("inspects");
    assert_eq!(seen.format, 2);
    assert_eq!(seen.minimum_format, 2);
    assert_eq!(seen.cluster_id.as_deref(), Some("test"));
    assert_eq!(seen.published, Some(fx.input.published));
    assert_eq!(seen.version, 10);
    assert_eq!(seen.workers.len(), 4);
    assert_eq!(seen.names.len(), NAMES.len());
    assert_eq!(seen.chain.len(), 3);
    assert!(seen.chain[0].subject.contains("certzone test leaf"));
    assert_eq!(seen.chain[0].issuer, seen.chain[1].subject);
    assert_eq!(seen.chain[2].issuer, seen.chain[2].subject);
}

#[test]
fn a_worker_listed_twice_gets_one_record() {
    let _gate = common::gate();
    let mut fx = Fixture::new(1, 2);
    fx.input.workers.push(fx.input.workers[0].clone());
    assert_eq!(fx.publish().len(), 1 + 1 + 2);
}

/// Reading by queries: the manifest alone names every other record, in
/// publication order (chain positions, then key ids ascending).
#[test]
fn the_manifest_names_every_record_to_query() {
    let _gate = common::gate();
    let fx = Fixture::new(3, 4);
    let records = fx.publish();
    let manifest = certzone::bundle::manifest_name(&zone()).expect("name");
    assert_eq!(records[0].name, manifest);
    let wanted = certzone::bundle::record_names(&records[..1], &zone()).expect("lists");
    let published: Vec<_> = records[1..]
        .iter()
        .map(|r| (r.name.clone(), r.record_type()))
        .collect();
    assert_eq!(wanted, published);
}
