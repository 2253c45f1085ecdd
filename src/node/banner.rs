//! The lines a node prints when it is ready: addresses, the certificate, the CA to trust,
//! and dig/kdig lines to paste. `certzone ready` comes last, so whoever waits for it has
//! the whole banner.

use crate::{config::Config, tls::CertSummary};

use super::certificates::Source;

/// What a person needs to start querying: addresses, the CA to trust, lines to paste.
pub(super) fn print_banner(
    config: &Config,
    summary: Option<&CertSummary>,
    source: Option<&Source>,
) {
    let listen = &config.listen;
    // "certzone ready" comes last: whoever waits for it has the whole banner.
    let mut out = format!("certzone {} node\n", config.role.kind().as_str());
    let mut zones: Vec<String> = config.zones.iter().map(|z| z.origin.to_string()).collect();
    if let Some(worker) = config.worker() {
        zones.extend(
            worker
                .secondaries
                .iter()
                .map(|z| format!("{z} (secondary)")),
        );
        if let Some(reader) = &worker.certificate {
            zones.push(format!("{} (certificate zone)", reader.origin));
        }
    }
    if !zones.is_empty() {
        out += &format!("  zones: {}\n", zones.join(" "));
    }
    for (kind, list) in [
        ("udp", &listen.udp),
        ("tcp", &listen.tcp),
        ("tls", &listen.tls),
        ("https", &listen.https),
    ] {
        for address in list {
            out += &format!("  {kind:<5} {address}\n");
        }
    }
    if let Some(summary) = summary {
        out += &format!(
            "  certificate: {} (not after {}, sha256 {})\n",
            summary.subject_names.join(", "),
            crate::clock::rfc3339(summary.not_after),
            summary.fingerprint
        );
    }
    let ca = match source {
        Some(Source::LocalCa(path)) => {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            out += &format!("  local CA (trust this): {}\n", path.display());
            Some(path.display().to_string())
        }
        Some(Source::CertificateZone) => Some(worker_ca(config, &mut out)),
        _ => None,
    };
    out += &examples(config, ca.as_deref());
    if json_logs() {
        // Log shippers read one JSON object per line: the banner goes as one event.
        let (role, certificate) = (config.role.kind().as_str(), summary.map(|s| &s.fingerprint));
        tracing::info!(role, zones = %zones.join(" "), certificate, "certzone ready");
        return;
    }
    out += "certzone ready (SIGHUP re-reads zones, Ctrl-C stops)\n";
    print!("{out}");
}

/// The CA a client of a worker must trust: the first of `[certificate-zone] roots`, else a
/// placeholder explained on a line of its own (the worker never sees the CA's file).
fn worker_ca(config: &Config, out: &mut String) -> String {
    let root = config
        .worker()
        .and_then(|w| w.certificate.as_ref())
        .and_then(|r| r.roots.first());
    if let Some(root) = root {
        return root.display().to_string();
    }
    *out += "  CA to trust: the one that issued the master's certificate (for the master's \
             local CA, its <state-dir>/local-ca/ca.pem); CA.pem below\n";
    "CA.pem".to_string()
}

fn examples(config: &Config, ca: Option<&str>) -> String {
    let first = config
        .zones
        .first()
        .map(|z| &z.origin)
        .or_else(|| config.worker().and_then(|w| w.secondaries.first()));
    // A node without zones of its own only forwards: no line would get an answer.
    let Some(first) = first else {
        return String::new();
    };
    let query = format!("{first} SOA");
    let name = config.tls.as_ref().map(|t| t.names[0].as_str());
    let trust = |ca: Option<&str>, name: Option<&str>| {
        let mut s = String::new();
        if let Some(ca) = ca {
            s += &format!(" +tls-ca={ca}");
        }
        if let Some(name) = name {
            s += &format!(" +tls-hostname={name}");
        }
        s
    };
    let mut out = String::from("try:\n");
    if let Some(a) = config.listen.udp.first() {
        out += &format!("  dig @{} -p {} {query}\n", a.ip(), a.port());
    }
    if let Some(a) = config.listen.tls.first() {
        out += &format!(
            "  kdig @{} -p {} +tls{} {query}\n",
            a.ip(),
            a.port(),
            trust(ca, name)
        );
    }
    if let Some(a) = config.listen.https.first() {
        out += &format!(
            "  kdig @{} -p {} +https=/dns-query{} {query}\n",
            a.ip(),
            a.port(),
            trust(ca, name)
        );
    }
    out
}

/// Whether logs are JSON lines (`CERTZONE_LOG_FORMAT=json`): then nothing else is printed
/// where they go.
fn json_logs() -> bool {
    std::env::var("CERTZONE_LOG_FORMAT").is_ok_and(|v| v == "json")
}
