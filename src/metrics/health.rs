//! `/readyz`: whether this node should be sent clients. Ready means it holds a certificate
//! that is valid now (when it serves TLS) and serves every zone it replicates, none of them
//! withdrawn because the primary was silent past the SOA expire. `/healthz` needs no check:
//! an answer at all shows the process is serving.

use std::time::SystemTime;

use super::{collect::View, stats::STATS};

/// `Err` names the first reason the node is not ready.
pub(super) fn ready(view: &View) -> Result<(), String> {
    if view.tls {
        let summary = view
            .certs
            .summary()
            .ok_or("no certificate yet (a worker waits for its first bundle)")?;
        let now = SystemTime::now();
        if now >= summary.not_after || now < summary.not_before {
            return Err(format!(
                "the certificate {} is not valid now",
                summary.fingerprint
            ));
        }
    }
    let served = view.zones.serials();
    for zone in &view.replicated {
        if !served.iter().any(|(name, _)| name == zone) {
            return Err(format!("zone {zone} is not served yet"));
        }
    }
    let events = STATS.events();
    if let Some((zone, _)) = events.zones.iter().find(|(_, r)| r.expired) {
        return Err(format!("zone {zone} expired"));
    }
    Ok(())
}
