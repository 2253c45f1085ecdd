//! The scrape: every metric, read when Prometheus asks, from [`super::STATS`], the zones,
//! the certificate slot and `/proc/self`, and written by prometheus-client's Prometheus
//! text encoder. Names follow Prometheus's conventions: the `certzone_` prefix, units in the
//! name, counters ending in `_total` (the encoder adds it), the process metrics under the
//! `process_` names every client library uses.

use std::{sync::Arc, time::UNIX_EPOCH};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, NoLabelSet},
    metrics::MetricType,
};

use super::{
    process::Process,
    stats::{DROP_REASONS, Events, PATHS, STATS, TRANSPORTS, rcode_name},
};
use crate::{tls::CertSlot, zones::Zones};

type Labels = Vec<(&'static str, String)>;
type Fmt = Result<(), std::fmt::Error>;

/// What the scrape reads besides the counters.
pub struct View {
    pub role: &'static str,
    pub zones: Arc<Zones>,
    pub certs: Arc<CertSlot>,
    /// Whether the node serves TLS (then readiness needs a valid certificate).
    pub tls: bool,
    /// The ordinary zones a worker replicates (readiness needs each served).
    pub replicated: Vec<String>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("role", &self.role).finish()
    }
}

impl Collector for View {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        self.node(&mut e)?;
        queries(&mut e)?;
        self.certificate(&mut e)?;
        self.zones(&mut e)?;
        events(&mut e)?;
        process(&mut e)
    }
}

fn counter<V: EncodeCounterValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, V)],
) -> Fmt {
    let mut metric = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        metric
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(value, None)?;
    }
    Ok(())
}

fn gauge<V: EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, V)],
) -> Fmt {
    let mut metric = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        metric.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

fn label(key: &'static str, value: impl ToString) -> Labels {
    vec![(key, value.to_string())]
}

impl View {
    fn node(&self, e: &mut DescriptorEncoder) -> Fmt {
        let labels = vec![
            ("role", self.role.to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_string()),
        ];
        gauge(
            e,
            "certzone_node_info",
            "The node's role and version.",
            &[(labels, 1u64)],
        )
    }

    fn certificate(&self, e: &mut DescriptorEncoder) -> Fmt {
        let Some(summary) = self.certs.summary() else {
            return Ok(());
        };
        let seconds =
            |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let info = vec![
            ("fingerprint", summary.fingerprint.clone()),
            ("role", self.role.to_string()),
        ];
        gauge(
            e,
            "certzone_certificate_info",
            "The leaf certificate served over DoT and DoH (SHA-256 of its DER).",
            &[(info, 1u64)],
        )?;
        let by_leaf = label("fingerprint", &summary.fingerprint);
        gauge(
            e,
            "certzone_certificate_not_after_seconds",
            "When the served certificate expires, Unix seconds.",
            &[(by_leaf.clone(), seconds(summary.not_after))],
        )?;
        gauge(
            e,
            "certzone_certificate_not_before_seconds",
            "When the served certificate became valid, Unix seconds.",
            &[(by_leaf, seconds(summary.not_before))],
        )
    }

    fn zones(&self, e: &mut DescriptorEncoder) -> Fmt {
        let rows: Vec<(Labels, u64)> = self
            .zones
            .serials()
            .into_iter()
            .map(|(zone, serial)| (label("zone", zone), u64::from(serial)))
            .collect();
        gauge(
            e,
            "certzone_zone_serial",
            "The SOA serial served, per zone.",
            &rows,
        )
    }
}

fn queries(e: &mut DescriptorEncoder) -> Fmt {
    let stats = &STATS;
    let queries: Vec<(Labels, u64)> = (stats.queries().iter().enumerate())
        .map(|(t, &n)| (label("transport", TRANSPORTS[t]), n))
        .collect();
    counter(
        e,
        "certzone_queries",
        "DNS messages taken, per transport.",
        &queries,
    )?;
    let answers: Vec<(Labels, u64)> = (stats.answers().into_iter())
        .map(|(t, path, rcode, n)| {
            let labels = vec![
                ("transport", TRANSPORTS[t].to_string()),
                ("path", PATHS[path].to_string()),
                ("rcode", rcode_name(rcode)),
            ];
            (labels, n)
        })
        .collect();
    counter(
        e,
        "certzone_answers",
        "Answers sent, per transport, path (prepared or full) and rcode.",
        &answers,
    )?;
    let dropped: Vec<(Labels, u64)> = (stats.dropped().iter().enumerate())
        .map(|(r, &n)| (label("reason", DROP_REASONS[r]), n))
        .collect();
    counter(
        e,
        "certzone_queries_dropped",
        "Queries left unanswered, per reason.",
        &dropped,
    )?;
    connections(e)
}

/// Stream connections and TLS handshakes; UDP has neither.
fn connections(e: &mut DescriptorEncoder) -> Fmt {
    let stats = &STATS;
    let open = stats.connections();
    let open: Vec<(Labels, i64)> = (1..TRANSPORTS.len())
        .map(|t| (label("transport", TRANSPORTS[t]), open[t]))
        .collect();
    gauge(
        e,
        "certzone_connections_open",
        "Stream connections open, per transport.",
        &open,
    )?;
    let handshakes = stats.handshakes();
    let tls = [2, 3].map(|t| (label("transport", TRANSPORTS[t]), handshakes[t]));
    let done: Vec<(Labels, u64)> = tls.iter().map(|(l, (n, _))| (l.clone(), *n)).collect();
    let failed: Vec<(Labels, u64)> = tls.iter().map(|(l, (_, f))| (l.clone(), *f)).collect();
    counter(
        e,
        "certzone_tls_handshakes",
        "TLS handshakes attempted, per transport.",
        &done,
    )?;
    counter(
        e,
        "certzone_tls_handshake_failures",
        "TLS handshakes that failed or timed out, per transport.",
        &failed,
    )
}

fn events(e: &mut DescriptorEncoder) -> Fmt {
    let events = STATS.events();
    zone_refreshes(e, &events)?;
    bundles(e, &events)?;
    notify(e, &events)?;
    transfers(e, &events)?;
    acme(e, &events.acme)
}

fn zone_refreshes(e: &mut DescriptorEncoder, events: &Events) -> Fmt {
    let zones = &events.zones;
    let rows = |f: &dyn Fn(&super::stats::ZoneRefresh) -> Option<u64>| -> Vec<(Labels, u64)> {
        zones
            .iter()
            .filter_map(|(z, r)| f(r).map(|v| (label("zone", z), v)))
            .collect()
    };
    gauge(
        e,
        "certzone_zone_last_refresh_timestamp_seconds",
        "When the primary last answered a refresh of this replicated zone, Unix seconds.",
        &rows(&|r| r.last_success),
    )?;
    gauge(
        e,
        "certzone_zone_last_refresh_failure_timestamp_seconds",
        "When a refresh of this replicated zone last failed, Unix seconds.",
        &rows(&|r| r.last_failure),
    )?;
    counter(
        e,
        "certzone_zone_refresh_failures",
        "Failed refreshes of this replicated zone.",
        &rows(&|r| Some(r.failures)),
    )?;
    gauge(
        e,
        "certzone_zone_expired",
        "1 when this replicated zone was withdrawn: its SOA expire passed without the primary.",
        &rows(&|r| Some(u64::from(r.expired))),
    )?;
    Ok(())
}

fn bundles(e: &mut DescriptorEncoder, events: &Events) -> Fmt {
    if let Some(version) = events.bundle_version {
        gauge(
            e,
            "certzone_bundle_version",
            "The version of the certificate bundle in service.",
            &[(Labels::new(), version)],
        )?;
    }
    let refused: Vec<(Labels, u64)> = (events.refused.iter())
        .map(|(rule, n)| (label("rule", rule), *n))
        .collect();
    counter(
        e,
        "certzone_bundles_refused",
        "Certificate bundles refused, per failed check.",
        &refused,
    )?;
    Ok(())
}

fn notify(e: &mut DescriptorEncoder, events: &Events) -> Fmt {
    let notify = |f: &dyn Fn(&super::stats::NotifyCounts) -> u64| -> Vec<(Labels, u64)> {
        (events.notify.iter())
            .map(|(s, n)| (label("secondary", s), f(n)))
            .collect()
    };
    counter(
        e,
        "certzone_notify_sent",
        "NOTIFY messages sent, per secondary.",
        &notify(&|n| n.sent),
    )?;
    counter(
        e,
        "certzone_notify_acknowledged",
        "NOTIFY messages acknowledged, per secondary.",
        &notify(&|n| n.acknowledged),
    )?;
    counter(
        e,
        "certzone_notify_failed",
        "NOTIFY messages never acknowledged, per secondary.",
        &notify(&|n| n.failed),
    )?;
    Ok(())
}

fn transfers(e: &mut DescriptorEncoder, events: &Events) -> Fmt {
    let transfers = &events.transfers;
    let by_direction = |d: &&str| label("direction", d);
    let count: Vec<(Labels, u64)> = transfers
        .iter()
        .map(|(d, t)| (by_direction(d), t.count))
        .collect();
    counter(
        e,
        "certzone_transfers",
        "Zone transfers completed, in (from the primary) and out.",
        &count,
    )?;
    // Only outgoing transfers know their bytes: incoming records arrive decoded.
    let bytes: Vec<(Labels, u64)> = (transfers.iter().filter(|(d, _)| **d == "out"))
        .map(|(d, t)| (by_direction(d), t.bytes))
        .collect();
    counter(
        e,
        "certzone_transfer_bytes",
        "Bytes of the messages of completed outgoing zone transfers.",
        &bytes,
    )?;
    let seconds: Vec<(Labels, f64)> = transfers
        .iter()
        .map(|(d, t)| (by_direction(d), t.seconds))
        .collect();
    counter(
        e,
        "certzone_transfer_duration_seconds",
        "Time spent in completed zone transfers.",
        &seconds,
    )
}

fn acme(e: &mut DescriptorEncoder, acme: &super::stats::AcmeCounts) -> Fmt {
    counter(
        e,
        "certzone_acme_orders",
        "ACME certificate orders started.",
        &[(Labels::new(), acme.orders)],
    )?;
    counter(
        e,
        "certzone_acme_order_failures",
        "ACME certificate orders that failed.",
        &[(Labels::new(), acme.failures)],
    )?;
    if let Some(at) = acme.next_renewal {
        gauge(
            e,
            "certzone_acme_next_renewal_timestamp_seconds",
            "When the next ACME renewal is planned, Unix seconds.",
            &[(Labels::new(), at)],
        )?;
    }
    Ok(())
}

fn process(e: &mut DescriptorEncoder) -> Fmt {
    let p = Process::read();
    let none = Labels::new;
    if let Some(cpu) = p.cpu_seconds {
        counter(
            e,
            "process_cpu_seconds",
            "User and system CPU time spent, seconds.",
            &[(none(), cpu)],
        )?;
    }
    if let Some(rss) = p.resident_bytes {
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size, bytes.",
            &[(none(), rss)],
        )?;
    }
    if let Some(open) = p.open_fds {
        gauge(
            e,
            "process_open_fds",
            "Open file descriptors.",
            &[(none(), open)],
        )?;
    }
    if let Some(max) = p.max_fds {
        gauge(
            e,
            "process_max_fds",
            "The open-file limit.",
            &[(none(), max)],
        )?;
    }
    if let Some(start) = p.start_time_seconds {
        gauge(
            e,
            "process_start_time_seconds",
            "When the process started, Unix seconds.",
            &[(none(), start)],
        )?;
    }
    Ok(())
}
