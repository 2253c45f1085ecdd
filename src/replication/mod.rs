//! Replication between nodes with standard DNS: NOTIFY (RFC 1996) out from the master on
//! every zone change, and (on workers) transfers in. Interoperates with BIND and Knot.
//!
//! Owns the notifier task; reads zone changes from [`Zones::subscribe`] and serials from
//! [`Zones::serial`], and never changes the master's zones.

mod cache;
mod held;
mod notifier;
mod reader;
mod sink;
mod soa;
mod worker;

pub use reader::{Reader, WorkerError, withdraw_expired};
pub use worker::Replica;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{tsig::TsigKey, zones::Zones};

/// NOTIFY exchanges in flight at once, over every zone and target: a burst of changes to a
/// large cluster (each NOTIFY retried for up to ~13 s) waits its turn instead of opening a
/// socket per target per change at once.
const MAX_NOTIFY_IN_FLIGHT: usize = 256;

/// Sends NOTIFY to every target for every zone change read from `changes` (subscribe
/// before anything can change, so the first change is not missed), until `shutdown`.
/// Targets are notified concurrently, at most `MAX_NOTIFY_IN_FLIGHT` at a time.
pub async fn notifier(
    mut changes: tokio::sync::broadcast::Receiver<hickory_proto::rr::Name>,
    zones: Arc<Zones>,
    source: IpAddr,
    targets: Vec<SocketAddr>,
    key: Option<TsigKey>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let key = key.map(Arc::new);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_NOTIFY_IN_FLIGHT));
    loop {
        let zone = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => match change {
                Ok(zone) => zone,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "zone changes came faster than NOTIFY could follow");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        // The SOA goes in the NOTIFY's answer section (RFC 1996 3.7): signed, it tells a
        // secondary the new serial without a query of its own.
        let Some(soa) = zones
            .records_at(&zone, hickory_proto::rr::RecordType::SOA)
            .and_then(|set| set.into_iter().next())
        else {
            continue;
        };
        let hickory_proto::rr::RData::SOA(data) = &soa.data else {
            continue;
        };
        let serial = data.serial;
        let soa = Arc::new(soa);
        tracing::info!(%zone, serial, targets = targets.len(), "zone changed; sending NOTIFY");
        for target in &targets {
            let (soa, key, target) = (soa.clone(), key.clone(), *target);
            let in_flight = in_flight.clone();
            tracker.spawn(async move {
                let Ok(_permit) = in_flight.acquire_owned().await else {
                    return false;
                };
                let acknowledged =
                    notifier::notify(target, source, &soa, serial, key.as_deref()).await;
                crate::metrics::STATS.record(|m| {
                    let n = m.notify.entry(target.to_string()).or_default();
                    n.sent += 1;
                    if acknowledged {
                        n.acknowledged += 1;
                    } else {
                        n.failed += 1;
                    }
                });
                acknowledged
            });
        }
    }
}
