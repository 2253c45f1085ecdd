//! `certzone verify`: fetches a certificate zone from a server (AXFR, or
//! plain queries when transfers are refused; with `--tsig` only after a signed
//! refusal, and signed) and checks its bundle, format 1 or 2, against the
//! pinned signing keys (and the cluster id when given), optionally unsealing a
//! worker's key.
//!
//! Owns argument handling, the report and its exit codes: 0 valid, 3
//! invalid (the `BundleError` message names the check), 1 network errors,
//! 2 unusable arguments or key files. The fetch is `dns::client::transfer`'s, the checks are
//! `bundle`'s; this file must not repeat either.

use std::{
    net::{IpAddr, SocketAddr, ToSocketAddrs as _},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::{Context as _, anyhow};
use hickory_proto::{
    op::ResponseCode,
    rr::{Name, TSigner},
};

use super::EXIT_BAD_CONFIG;
use crate::bundle::{self, BundleError, Inspection, ReaderPolicy, VerifyingKey, WorkerSecretKey};
use crate::clock;
use crate::dns::client::transfer::{self as xfr, Fetched, XfrError};

/// Exit code for a bundle that fails a check.
const EXIT_INVALID: u8 = 3;

#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    /// ADDR[:PORT] of the server (port 53 by default; IPv6 as [ADDR]:PORT).
    #[arg(long)]
    server: String,
    /// The certificate zone, e.g. _certzone.example.net.
    #[arg(long)]
    zone: String,
    /// The cluster's signing public key (SPKI PEM) to pin; a file may hold several keys,
    /// and the option may be given several times.
    #[arg(long, value_name = "FILE", required = true)]
    public_key: Vec<PathBuf>,
    /// The cluster id a format 2 bundle must carry.
    #[arg(long, value_name = "ID")]
    cluster_id: Option<String>,
    /// A worker's secret key (PKCS#8 PEM): also check that it unseals.
    #[arg(long, value_name = "FILE")]
    worker_key: Option<PathBuf>,
    /// TSIG key file; its first key signs the transfer.
    #[arg(long, value_name = "FILE")]
    tsig: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Everything the arguments name, loaded and parsed.
struct Setup {
    server: SocketAddr,
    zone: Name,
    pinned: Vec<VerifyingKey>,
    cluster_id: Option<String>,
    worker: Option<WorkerSecretKey>,
    tsig: Option<TSigner>,
}

/// What the report shows; `error` set means the bundle is invalid.
struct Report {
    fetched: Option<Fetched>,
    inspection: Option<Inspection>,
    worker: Option<WorkerCheck>,
    error: Option<BundleError>,
}

struct WorkerCheck {
    id: String,
    /// `None` when the read stopped before the key rule
    unseals: Option<bool>,
}

pub(super) fn verify(args: &VerifyArgs) -> ExitCode {
    let setup = match Setup::load(args) {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let report = match fetch(&setup) {
        Ok(fetched) => check(&setup, fetched),
        Err(XfrError::Bundle { source, .. }) => Report::refused(None, source),
        Err(e) => return fetch_failed(args, &setup, &e),
    };
    if let Some(note) = report.fallback_note(&setup) {
        eprintln!("note: {note}");
    }
    if args.json {
        println!("{}", report.json(&setup));
    } else {
        report.print(&setup);
    }
    match report.error {
        Some(_) => ExitCode::from(EXIT_INVALID),
        None => ExitCode::SUCCESS,
    }
}

/// Reports a fetch that failed: a server that does not serve the zone is a wrong
/// `--zone` (exit 2), anything else a network error (exit 1); `--json` prints it too.
fn fetch_failed(args: &VerifyArgs, setup: &Setup, error: &XfrError) -> ExitCode {
    let not_served = matches!(
        error,
        XfrError::Rcode { rcode, .. }
            if matches!(*rcode, ResponseCode::Refused | ResponseCode::NotAuth | ResponseCode::NXDomain)
    );
    let (message, code) = if not_served {
        let message = format!(
            "no such zone: server {} does not serve {} ({error}); check --zone",
            setup.server, setup.zone
        );
        (message, ExitCode::from(EXIT_BAD_CONFIG))
    } else {
        (error.to_string(), ExitCode::FAILURE)
    };
    if args.json {
        let out = serde_json::json!({
            "zone": setup.zone.to_string(),
            "server": setup.server.to_string(),
            "fetched": serde_json::Value::Null,
            "valid": false,
            "error": message,
            "network_error": !not_served,
        });
        println!("{out}");
    }
    eprintln!("error: {message}");
    code
}

impl Setup {
    fn load(args: &VerifyArgs) -> anyhow::Result<Self> {
        let pem = |path: &PathBuf| {
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
        };
        let mut pinned = Vec::new();
        for path in &args.public_key {
            let keys = bundle::verifying_keys_from_pem(&pem(path)?)
                .with_context(|| format!("public key {}", path.display()))?;
            pinned.extend(keys);
        }
        let worker = match &args.worker_key {
            Some(path) => Some(
                WorkerSecretKey::from_pem(&pem(path)?)
                    .with_context(|| format!("worker key {}", path.display()))?,
            ),
            None => None,
        };
        Ok(Self {
            server: server_addr(&args.server)?,
            zone: zone_name(&args.zone)?,
            pinned,
            cluster_id: args.cluster_id.clone(),
            worker,
            tsig: tsig_signer(args.tsig.as_ref())?,
        })
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a host name, port 53 by default.
fn server_addr(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let with_port = match text.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => text.to_string(),
        _ => format!("{text}:53"),
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("server {text}"))?
        .next()
        .ok_or_else(|| anyhow!("server {text}: no address"))
}

fn zone_name(text: &str) -> anyhow::Result<Name> {
    let mut zone = Name::from_ascii(text).with_context(|| format!("zone {text:?}"))?;
    zone.set_fqdn(true);
    Ok(zone)
}

fn tsig_signer(path: Option<&PathBuf>) -> anyhow::Result<Option<TSigner>> {
    let Some(path) = path else {
        return Ok(None);
    };
    // parse() refuses a file without a key, so there is a first one
    let keys = crate::tsig::load(path)?;
    Ok(keys.first().map(crate::tsig::TsigKey::signer))
}

fn fetch(setup: &Setup) -> Result<Fetched, XfrError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| XfrError::Io {
            server: setup.server,
            action: "start the runtime",
            source,
        })?;
    let options = xfr::Options::default();
    runtime.block_on(xfr::fetch(
        setup.server,
        &setup.zone,
        setup.tsig.as_ref(),
        &options,
    ))
}

/// Rules 1-6 with `inspect`; with a worker key, every rule with `read`.
fn check(setup: &Setup, fetched: Fetched) -> Report {
    let cluster = setup.cluster_id.as_deref();
    let inspection = match bundle::inspect(&fetched.records, &setup.zone, &setup.pinned, cluster) {
        Ok(inspection) => inspection,
        Err(e) => return Report::refused(Some(fetched), e),
    };
    let (worker, error) = match &setup.worker {
        Some(me) => check_worker(setup, &fetched, &inspection, me),
        None => (None, None),
    };
    Report {
        fetched: Some(fetched),
        inspection: Some(inspection),
        worker,
        error,
    }
}

/// Every rule, no floors; the cluster id given, else the bundle's own (already checked
/// by `inspect` when given).
fn check_worker(
    setup: &Setup,
    fetched: &Fetched,
    inspection: &Inspection,
    me: &WorkerSecretKey,
) -> (Option<WorkerCheck>, Option<BundleError>) {
    let policy = ReaderPolicy {
        cluster_id: inspection.cluster_id.clone().unwrap_or_default(),
        worker: Some(me.clone()),
        ..ReaderPolicy::new(setup.pinned.clone(), clock::unix_now())
    };
    let result = bundle::read(&fetched.records, &setup.zone, &policy);
    let unseals = match &result {
        Ok(_) => Some(true),
        Err(BundleError::NoKeyForMe(_) | BundleError::UnsealFailed | BundleError::KeyMismatch) => {
            Some(false)
        }
        Err(_) => None,
    };
    let id = me.key_id().to_string();
    (Some(WorkerCheck { id, unseals }), result.err())
}

impl Report {
    /// With `--tsig`, a read by queries means the transfer was refused: say so, or the
    /// operator believes the transfer (and its allow list) works.
    fn fallback_note(&self, setup: &Setup) -> Option<String> {
        let fetched = self.fetched.as_ref()?;
        (setup.tsig.is_some() && fetched.method == xfr::Method::Queries).then(|| {
            format!(
                "server {} refused the TSIG-signed transfer (is this address in its \
                 [transfer] allow list?); the bundle was read by plain queries instead",
                setup.server
            )
        })
    }

    fn refused(fetched: Option<Fetched>, error: BundleError) -> Self {
        Self {
            fetched,
            inspection: None,
            worker: None,
            error: Some(error),
        }
    }
}

impl Report {
    /// One fact per line, the verdict last; the reason for an invalid
    /// bundle goes to stderr.
    fn print(&self, setup: &Setup) {
        println!("zone {}", setup.zone);
        println!("server {}", setup.server);
        if let Some(fetched) = &self.fetched {
            println!("fetched by {}", fetched.method.as_str());
            println!("soa serial {}", text_or_none(fetched.serial));
        }
        if let Some(inspection) = &self.inspection {
            print_inspection(inspection);
        }
        if let Some(worker) = &self.worker {
            println!("worker key {}: {}", worker.id, unseal_text(worker.unseals));
        }
        match &self.error {
            Some(e) => {
                println!("invalid: {} check", e.rule());
                eprintln!("error: invalid bundle: {e}");
            }
            None => println!("valid"),
        }
    }

    fn json(&self, setup: &Setup) -> serde_json::Value {
        let mut out = serde_json::json!({
            "zone": setup.zone.to_string(),
            "server": setup.server.to_string(),
            "fetched": self.fetched.as_ref().map(|f| f.method.as_str()),
            "serial": self.fetched.as_ref().and_then(|f| f.serial),
            "valid": self.error.is_none(),
            "error": self.error.as_ref().map(ToString::to_string),
            "rule": self.error.as_ref().map(BundleError::rule),
            "note": self.fallback_note(setup),
            "worker_key": self.worker.as_ref().map(|w| {
                serde_json::json!({ "id": w.id, "unseals": w.unseals })
            }),
        });
        if let (Some(i), Some(map)) = (&self.inspection, out.as_object_mut()) {
            map.extend(inspection_json(i));
        }
        out
    }
}

fn print_inspection(inspection: &Inspection) {
    println!("format {}", inspection.format);
    if inspection.format >= 2 {
        println!("minimum format {}", inspection.minimum_format);
    }
    if let Some(id) = &inspection.cluster_id {
        println!("cluster id {id:?}");
    }
    if let Some(published) = inspection.published {
        println!("published {}", clock::rfc3339_secs(published));
    }
    for (id, pinned) in &inspection.signers {
        let how = if *pinned {
            "pinned, verified"
        } else {
            "not pinned"
        };
        println!("signed by {id} ({how})");
    }
    println!("bundle version {}", inspection.version);
    println!("names {}", inspection.names.join(" "));
    println!("not after {}", clock::rfc3339_secs(inspection.not_after));
    for (i, cert) in inspection.chain.iter().enumerate() {
        println!("certificate {i} subject: {}", cert.subject);
        println!("certificate {i} issuer: {}", cert.issuer);
    }
    println!("sealed keys {}", inspection.workers.len());
}

fn inspection_json(i: &Inspection) -> serde_json::Map<String, serde_json::Value> {
    let chain: Vec<serde_json::Value> = i
        .chain
        .iter()
        .map(|c| serde_json::json!({ "subject": c.subject, "issuer": c.issuer }))
        .collect();
    let workers: Vec<String> = i.workers.iter().map(ToString::to_string).collect();
    let signers: Vec<serde_json::Value> = i
        .signers
        .iter()
        .map(|(id, pinned)| serde_json::json!({ "id": id.to_string(), "pinned": pinned }))
        .collect();
    let value = serde_json::json!({
        "format": i.format,
        "minimum_format": i.minimum_format,
        "cluster_id": i.cluster_id,
        "published": i.published.map(clock::rfc3339_secs),
        "published_unix": i.published,
        "signers": signers,
        "version": i.version,
        "names": i.names,
        "not_after": clock::rfc3339_secs(i.not_after),
        "not_after_unix": i.not_after,
        "chain": chain,
        "sealed_keys": workers.len(),
        "workers": workers,
    });
    match value {
        serde_json::Value::Object(map) => map,
        // local invariant: json!({..}) always builds an object
        _ => serde_json::Map::new(),
    }
}

fn text_or_none(value: Option<u32>) -> String {
    value.map_or_else(|| "none".into(), |v| v.to_string())
}

fn unseal_text(unseals: Option<bool>) -> &'static str {
    match unseals {
        Some(true) => "unseals",
        Some(false) => "does not unseal",
        None => "not checked (an earlier check failed)",
    }
}
