//! Shared fixtures for the bundle integration tests: a signing key, worker
//! keys, a chain, a policy, and helpers to rewrite records the way an
//! attacker on the transfer path could.
#![allow(dead_code)]

// Also the bundle's unit tests' chains (src/bundle/tests.rs includes this file by path).
pub(crate) mod chain;
pub(crate) mod independent;

use certzone::bundle::{
    BundleInput, ReaderPolicy, SigningKey, WorkerSecretKey, generate_signing_key,
};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable as _, Restrict};
use rand_core::OsRng;
use rustls_pki_types::PrivatePkcs8KeyDer;

pub(crate) use chain::{LEAF_SPAN, NOW, TestChain, make_chain};

pub(crate) const NAMES: &[&str] = &["example.test", "*.example.test"];
/// The fixtures' cluster id.
pub(crate) const CLUSTER: &str = "test";

pub(crate) fn zone() -> Name {
    Name::from_ascii("_certzone.example.test.").expect("valid zone name")
}

/// Everything one test needs to publish and read a bundle.
pub(crate) struct Fixture {
    pub(crate) key: SigningKey,
    pub(crate) workers: Vec<WorkerSecretKey>,
    pub(crate) made: TestChain,
    pub(crate) input: BundleInput,
}

impl Fixture {
    pub(crate) fn new(chain_len: usize, workers: usize) -> Self {
        Self::with_chain(make_chain(chain_len, NAMES, LEAF_SPAN), workers)
    }

    pub(crate) fn with_chain(made: TestChain, workers: usize) -> Self {
        let workers: Vec<WorkerSecretKey> = (0..workers)
            .map(|_| WorkerSecretKey::generate(&mut OsRng))
            .collect();
        let input = BundleInput {
            zone: zone(),
            ttl: 300,
            format: 2,
            minimum_format: 2,
            version: 10,
            published: NOW - 100,
            cluster_id: CLUSTER.into(),
            names: NAMES.iter().map(|n| n.to_string()).collect(),
            chain: made.chain.clone(),
            private_key: PrivatePkcs8KeyDer::from(made.leaf_key.clone()),
            workers: workers.iter().map(WorkerSecretKey::public_key).collect(),
        };
        Self {
            key: generate_signing_key(&mut OsRng),
            workers,
            made,
            input,
        }
    }

    pub(crate) fn publish(&self) -> Vec<Record> {
        certzone::bundle::publish(&self.input, &self.key, &mut OsRng)
            .expect("valid input publishes")
    }

    /// The policy of worker `i` (or of a reader without a worker key).
    pub(crate) fn policy(&self, worker: Option<usize>) -> ReaderPolicy {
        ReaderPolicy {
            cluster_id: CLUSTER.into(),
            held_version: Some(9),
            required_names: vec!["www.example.test".into(), "example.test".into()],
            worker: worker.map(|i| self.workers[i].clone()),
            ..ReaderPolicy::new(vec![*self.key.verifying_key()], NOW)
        }
    }
}

/// Wire bytes of a record's rdata.
pub(crate) fn rdata_bytes(record: &Record) -> Vec<u8> {
    record.data.to_bytes().expect("rdata encodes")
}

/// The record with its rdata replaced by `bytes`, if those bytes still
/// decode as rdata of the same type (else an attacker could not send it).
pub(crate) fn with_rdata(record: &Record, bytes: &[u8]) -> Option<Record> {
    let len = u16::try_from(bytes.len()).ok()?;
    let mut decoder = BinDecoder::new(bytes);
    let data = RData::read(&mut decoder, record.record_type(), Restrict::new(len)).ok()?;
    let mut out = record.clone();
    out.data = data;
    Some(out)
}

/// Index of the first record whose owner name starts with `prefix`.
pub(crate) fn find(records: &[Record], prefix: &str) -> usize {
    records
        .iter()
        .position(|r| r.name.to_string().starts_with(prefix))
        .unwrap_or_else(|| panic!("no record at {prefix}"))
}
