//! Seal pads made ahead of a renewal: for each worker, the ephemeral point and ECDH secret
//! a seal needs ([`SealPad`]). The master makes them while nothing is happening, so
//! publishing to a hundred workers costs a hash and an AES-GCM each, not two scalar
//! multiplications each.
//!
//! Owns the pool only. It must not seal: `publish` takes a pad per worker, once.

use std::collections::HashMap;

use rand_core::CryptoRngCore;

use super::keys::{KeyId, WorkerPublicKey};
use super::seal::SealPad;

/// One unused pad per worker key id.
#[derive(Default)]
pub struct SealPads(HashMap<KeyId, SealPad>);

impl SealPads {
    /// A pad for each of `workers`, the ephemeral keys drawn from `rng` in the order given
    /// and the curve arithmetic run on every core.
    pub fn prepare(workers: &[WorkerPublicKey], rng: &mut impl CryptoRngCore) -> Self {
        let refs: Vec<&WorkerPublicKey> = workers.iter().collect();
        Self(make(&refs, rng).into_iter().collect())
    }

    /// How many workers have a pad.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no worker has a pad.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn has(&self, worker: &WorkerPublicKey) -> bool {
        self.0.contains_key(&worker.key_id())
    }

    pub(crate) fn take(&mut self, worker: &WorkerPublicKey) -> Option<SealPad> {
        self.0.remove(&worker.key_id())
    }

    pub(crate) fn add(&mut self, made: Vec<(KeyId, SealPad)>) {
        self.0.extend(made);
    }
}

/// Pads for `workers`: randomness drawn here in their order (the golden vectors depend on
/// it), scalar multiplications, about half a millisecond per worker, on every core.
pub(crate) fn make(
    workers: &[&WorkerPublicKey],
    rng: &mut impl CryptoRngCore,
) -> Vec<(KeyId, SealPad)> {
    if workers.is_empty() {
        // The usual case when the pads were made ahead: no threads, no look at the cgroup
        // (available_parallelism reads three files) on the way to publishing.
        return Vec::new();
    }
    let ephemerals: Vec<p256::SecretKey> = workers
        .iter()
        .map(|_| p256::SecretKey::random(rng))
        .collect();
    let jobs: Vec<(&&WorkerPublicKey, &p256::SecretKey)> =
        workers.iter().zip(&ephemerals).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(w, e)| (w.key_id(), SealPad::new(w, e)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            // Local invariant: making a pad has no panicking path on valid keys.
            .flat_map(|h| h.join().expect("sealing thread"))
            .collect()
    })
}
