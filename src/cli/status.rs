//! `certzone status --config FILE [--json]`: every node of a cluster file (or the one node of
//! a node file) asked over the network, as a client would: the domain's and the certificate
//! zone's SOA serials over TCP, the leaf served over DoT, and `/metrics` when the node has
//! a metrics listener (bundles refused, last refresh). One table, or one JSON object.
//!
//! Exit codes make it a monitoring check: 0 all well; 1 something needs attention (a node
//! lags the master's certificate zone beyond its refresh interval, serves a different leaf,
//! or holds a certificate with under a third of its life left); 2 a node is unreachable or
//! the file is bad. Nothing here changes a node.

use std::{
    net::SocketAddr,
    path::Path,
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RData, RecordType},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::probe;
use crate::{cluster::Cluster, config::Config};

/// How long each question to a node may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);
/// The SOA refresh of a certificate zone that does not say (the node default).
const DEFAULT_REFRESH: u64 = 300;

/// One node to ask.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    role: &'static str,
    dns: SocketAddr,
    /// The DoT listener and the name to ask it for.
    tls: Option<(SocketAddr, String)>,
    metrics: Option<SocketAddr>,
    domain: Option<Name>,
    certificate_zone: Option<Name>,
}

/// What a node answered.
#[derive(Debug, Default, serde::Serialize)]
struct Seen {
    name: String,
    role: &'static str,
    address: String,
    reachable: bool,
    domain_serial: Option<u32>,
    certificate_zone_serial: Option<u32>,
    /// Serials behind the master's certificate zone.
    lag: Option<u32>,
    fingerprint: Option<String>,
    not_after: Option<u64>,
    #[serde(skip)]
    not_before: Option<u64>,
    bundles_refused: Option<u64>,
    last_refresh: Option<u64>,
    problems: Vec<String>,
}

pub(super) fn status(path: &Path, json: bool) -> ExitCode {
    let (targets, refresh) = match targets(path) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(super::EXIT_BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut seen = runtime.block_on(ask_all(&targets));
    let code = judge(&mut seen, refresh, crate::clock::unix_now());
    if json {
        let object = serde_json::json!({ "nodes": seen, "exit": code });
        println!("{object:#}");
    } else {
        print_table(&seen, code);
    }
    ExitCode::from(code)
}

/// The nodes a file names and the certificate zone's refresh interval.
fn targets(path: &Path) -> Result<(Vec<Target>, u64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let is_cluster = text
        .parse::<toml::Table>()
        .map(|t| t.contains_key("cluster"))
        .unwrap_or(false);
    if is_cluster {
        let cluster = Cluster::load(path).map_err(|e| e.to_string())?;
        let refresh = cluster.refresh_secs.map_or(DEFAULT_REFRESH, u64::from);
        return Ok((cluster_targets(&cluster), refresh));
    }
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let published = config.master().and_then(|m| m.certificate_zone.as_ref());
    let refresh = published.map_or(DEFAULT_REFRESH, |c| u64::from(c.refresh));
    Ok((node_targets(&config)?, refresh))
}

fn cluster_targets(cluster: &Cluster) -> Vec<Target> {
    (cluster.nodes.iter())
        .map(|node| Target {
            name: node.name.clone(),
            role: node.role.as_str(),
            dns: cluster.dns(node),
            tls: Some((cluster.tls(node), cluster.names[0].clone())),
            metrics: cluster.metrics(node),
            domain: Some(cluster.domain.clone()),
            certificate_zone: Some(cluster.certificate_zone.clone()),
        })
        .collect()
}

/// The node of a node file; a worker's primary too, as the reference for lag and leaf.
fn node_targets(config: &Config) -> Result<Vec<Target>, String> {
    let listen = &config.listen;
    let dns = (listen.tcp.first())
        .or(listen.udp.first())
        .copied()
        .ok_or("the node has no TCP or UDP listener to ask")?;
    let worker = config.worker();
    let domain = (config.zones.first().map(|z| z.origin.clone()))
        .or_else(|| worker.and_then(|w| w.secondaries.first().cloned()));
    let published = config.master().and_then(|m| m.certificate_zone.as_ref());
    let certificate_zone = (published.map(|c| c.origin.clone()))
        .or_else(|| worker.and_then(|w| w.certificate.as_ref().map(|c| c.origin.clone())));
    let tls_name = config
        .tls
        .as_ref()
        .and_then(|t| t.names.first().map(ToString::to_string));
    let node = Target {
        name: "node".into(),
        role: config.role.kind().as_str(),
        dns,
        tls: listen.tls.first().copied().zip(tls_name),
        metrics: config.metrics,
        domain,
        certificate_zone,
    };
    let mut targets = Vec::new();
    if let Some(worker) = worker {
        // The primary first: the reference. Its DoT port is not known from here.
        targets.push(Target {
            name: "primary".into(),
            role: "master",
            dns: worker.primary,
            tls: None,
            metrics: None,
            ..node.clone()
        });
    }
    targets.push(node);
    Ok(targets)
}

async fn ask_all(targets: &[Target]) -> Vec<Seen> {
    let asks = targets.iter().map(ask);
    futures_util::future::join_all(asks).await
}

/// Asks one node everything at once.
async fn ask(target: &Target) -> Seen {
    let soa = |zone: Option<Name>| async move {
        match zone {
            Some(zone) => soa_serial(target.dns, &zone).await.ok(),
            None => None,
        }
    };
    let leaf = async {
        match (&target.tls, &target.domain) {
            (Some((address, name)), Some(zone)) => {
                probe::served(*address, name, zone, ASK_TIMEOUT).await.ok()
            }
            _ => None,
        }
    };
    let metrics = async {
        match target.metrics {
            Some(address) => scrape(address).await.ok(),
            None => None,
        }
    };
    let (domain_serial, certificate_zone_serial, leaf, metrics) = tokio::join!(
        soa(target.domain.clone()),
        soa(target.certificate_zone.clone()),
        leaf,
        metrics
    );
    let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Seen {
        name: target.name.clone(),
        role: target.role,
        address: target.dns.ip().to_string(),
        reachable: domain_serial.is_some() || certificate_zone_serial.is_some() || leaf.is_some(),
        domain_serial,
        certificate_zone_serial,
        fingerprint: leaf.as_ref().map(|l| l.fingerprint.clone()),
        not_after: leaf.as_ref().map(|l| seconds(l.not_after)),
        not_before: leaf.as_ref().map(|l| seconds(l.not_before)),
        bundles_refused: metrics.as_ref().map(|m| m.refused),
        last_refresh: metrics.and_then(|m| m.last_refresh),
        ..Seen::default()
    }
}

/// The SOA serial `server` answers for `zone` over TCP.
async fn soa_serial(server: SocketAddr, zone: &Name) -> Result<u32, String> {
    let mut query = Message::query();
    query.metadata.id = crate::dns::client::exchange::random_id();
    query.add_query(Query::query(zone.clone(), RecordType::SOA));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(
        ASK_TIMEOUT,
        crate::dns::client::exchange::tcp(server, None, &bytes),
    )
    .await
    .map_err(|_| "no answer in time".to_string())?
    .map_err(|e| e.to_string())?;
    let answer = Message::from_vec(&answer).map_err(|e| e.to_string())?;
    answer
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| format!("no SOA for {zone}"))
}

/// What `/metrics` says that DNS does not.
struct Scraped {
    refused: u64,
    last_refresh: Option<u64>,
}

/// GET /metrics over HTTP/1.0, read to the end.
async fn scrape(address: SocketAddr) -> Result<Scraped, String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut body = Vec::new();
        stream.take(8 << 20).read_to_end(&mut body).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&body).into_owned())
    };
    let text = tokio::time::timeout(ASK_TIMEOUT, fetch)
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(parse_metrics(&text))
}

fn parse_metrics(text: &str) -> Scraped {
    let mut scraped = Scraped {
        refused: 0,
        last_refresh: None,
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        match name {
            "certzone_bundles_refused_total" => scraped.refused += value as u64,
            "certzone_zone_last_refresh_timestamp_seconds" => {
                scraped.last_refresh = scraped.last_refresh.max(Some(value as u64));
            }
            _ => {}
        }
    }
    scraped
}

/// Fills each node's problems and lag against the master; returns the exit code.
fn judge(seen: &mut [Seen], refresh: u64, now: u64) -> u8 {
    let master = seen.iter().find(|s| s.role == "master" && s.reachable);
    let reference = master.map(|m| (m.certificate_zone_serial, m.fingerprint.clone()));
    let mut code = 0;
    for node in seen.iter_mut() {
        if !node.reachable {
            node.problems.push("unreachable".into());
            code = 2;
            continue;
        }
        if let Some((Some(master_serial), _)) = &reference
            && let Some(serial) = node.certificate_zone_serial
        {
            let lag = master_serial.wrapping_sub(serial);
            node.lag = Some(lag);
            let recent = node
                .last_refresh
                .is_some_and(|t| now.saturating_sub(t) <= refresh);
            if lag > 0 && !recent {
                node.problems.push(format!(
                    "lags the master by {lag} serials beyond its refresh"
                ));
            }
        }
        if let Some((_, Some(leaf))) = &reference
            && node.fingerprint.as_ref().is_some_and(|f| f != leaf)
        {
            node.problems
                .push("serves a different leaf than the master".into());
        }
        if let (Some(after), Some(before)) = (node.not_after, node.not_before)
            && after.saturating_sub(now) < after.saturating_sub(before) / 3
        {
            node.problems
                .push("certificate has under a third of its life left".into());
        }
        if !node.problems.is_empty() && code == 0 {
            code = 1;
        }
    }
    code
}

fn print_table(seen: &[Seen], code: u8) {
    let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!(
        "{:<10} {:<7} {:<15} {:<9} {:<13} {:<17} {:<5} {:<16} {:<20} {:<7} last-refresh",
        "node",
        "role",
        "address",
        "reachable",
        "domain-serial",
        "cert-zone-serial",
        "lag",
        "leaf",
        "not-after",
        "refused"
    );
    for s in seen {
        let leaf = s.fingerprint.as_ref().map(|f| f.chars().take(16).collect());
        println!(
            "{:<10} {:<7} {:<15} {:<9} {:<13} {:<17} {:<5} {:<16} {:<20} {:<7} {}",
            s.name,
            s.role,
            s.address,
            if s.reachable { "yes" } else { "NO" },
            show(s.domain_serial.map(|v| v.to_string())),
            show(s.certificate_zone_serial.map(|v| v.to_string())),
            show(s.lag.map(|v| v.to_string())),
            show(leaf),
            show(s.not_after.map(rfc3339)),
            show(s.bundles_refused.map(|v| v.to_string())),
            show(s.last_refresh.map(rfc3339)),
        );
    }
    for s in seen {
        for problem in &s.problems {
            println!("{}: {problem}", s.name);
        }
    }
    let verdict = match code {
        0 => "all well",
        1 => "needs attention",
        _ => "a node is unreachable",
    };
    println!("status: {verdict}");
}

fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: &'static str, serial: u32, leaf: &str) -> Seen {
        Seen {
            name: name.into(),
            role,
            reachable: true,
            certificate_zone_serial: Some(serial),
            fingerprint: Some(leaf.into()),
            not_before: Some(0),
            not_after: Some(3000),
            ..Seen::default()
        }
    }

    #[test]
    fn exit_codes_follow_the_worst_node() {
        let all = || vec![node("m", "master", 5, "aa"), node("w", "worker", 5, "aa")];
        assert_eq!(judge(&mut all(), 300, 1000), 0);
        let mut other_leaf = all();
        other_leaf[1].fingerprint = Some("bb".into());
        assert_eq!(judge(&mut other_leaf, 300, 1000), 1);
        let mut lagging = all();
        lagging[1].certificate_zone_serial = Some(4);
        assert_eq!(judge(&mut lagging, 300, 1000), 1);
        lagging[1].problems.clear();
        lagging[1].last_refresh = Some(900);
        assert_eq!(
            judge(&mut lagging, 300, 1000),
            0,
            "behind, but checked within refresh"
        );
        assert_eq!(
            judge(&mut all(), 300, 2500),
            1,
            "under a third of its life left"
        );
        let mut down = all();
        down[1].reachable = false;
        assert_eq!(judge(&mut down, 300, 1000), 2);
    }

    #[test]
    fn reads_refusals_and_refresh_from_metrics() {
        let text = "# TYPE certzone_bundles_refused_total counter\n\
            certzone_bundles_refused_total{rule=\"signature\"} 2\n\
            certzone_bundles_refused_total{rule=\"cluster\"} 1\n\
            certzone_zone_last_refresh_timestamp_seconds{zone=\"a.\"} 100\n\
            certzone_zone_last_refresh_timestamp_seconds{zone=\"b.\"} 200\n";
        let scraped = parse_metrics(text);
        assert_eq!((scraped.refused, scraped.last_refresh), (3, Some(200)));
    }
}
