//! Node directories derived from the cluster file: `<state-dir>/nodes/<name>/node.toml` and
//! every file that node needs beside it, so one directory is all a host (or a container)
//! needs. Paths in `node.toml` are relative to it.
//!
//! Owns the mapping from cluster to node settings. A node gets only its own secrets: the
//! master the signing and TSIG keys, a worker its sealing key and the TSIG key. It must not
//! touch a node's `state/` directory, which belongs to the running node.

use std::{fmt::Write as _, path::Path, path::PathBuf};

use super::{Ca, Cluster, ClusterError, NodeSpec, Role, keys};
use crate::state;

/// One node's derived directory and config file.
#[derive(Debug, Clone)]
pub struct RenderedNode {
    pub node: NodeSpec,
    pub dir: PathBuf,
    pub config: PathBuf,
}

/// Writes every node's directory (keys made on first use) and checks each derived config as
/// `certzone check-config` would. Running it again rewrites the files and keeps the keys and
/// every node's state.
pub fn render(cluster: &Cluster) -> Result<Vec<RenderedNode>, ClusterError> {
    if let Ca::Acme {
        directory: None, ..
    } = cluster.ca
    {
        return Err(no_directory(cluster));
    }
    // The operator's zone file is checked before anything is written: a broken one must
    // not replace the master's good copy, and the error names the operator's file.
    let zone_error = |message: String| ClusterError::Invalid {
        path: cluster.path.clone(),
        key: "cluster.zone-file".into(),
        message,
    };
    let zone_text = std::fs::read(&cluster.zone_file)
        .map_err(|e| zone_error(format!("{}: {e}", cluster.zone_file.display())))?;
    crate::zones::check_file(&cluster.domain, &cluster.zone_file)
        .map_err(|e| zone_error(e.to_string()))?;
    state::ensure_dir(&cluster.state_dir)?;
    let keys = keys::ensure(cluster)?;
    let mut rendered = Vec::new();
    for node in &cluster.nodes {
        let dir = cluster.node_dir(node);
        state::ensure_dir(&dir)?;
        let text = match node.role {
            Role::Master => master(cluster, node, &dir, &keys, &zone_text)?,
            Role::Worker => worker(cluster, node, &dir, &keys)?,
        };
        let config = dir.join("node.toml");
        state::write_atomic(&config, text.as_bytes(), state::PUBLIC)?;
        check(node, &config)?;
        rendered.push(RenderedNode {
            node: node.clone(),
            dir,
            config,
        });
    }
    Ok(rendered)
}

fn master(
    cluster: &Cluster,
    node: &NodeSpec,
    dir: &Path,
    keys: &keys::KeyFiles,
    zone_text: &[u8],
) -> Result<String, ClusterError> {
    copy(&keys.signing, &dir.join("signing.key"), state::SECRET)?;
    copy(&keys.transfer, &dir.join("transfer.key"), state::SECRET)?;
    let zone_file = format!("{}zone", cluster.domain.to_ascii());
    state::write_atomic(&dir.join(&zone_file), zone_text, state::PUBLIC)?;

    let mut text = head(cluster, node, "master");
    text += "[tls]\n";
    writeln!(text, "names = {}", list(&cluster.names)).unwrap();
    let workers_dns: Vec<String> = cluster
        .workers()
        .iter()
        .map(|w| cluster.dns(w).to_string())
        .collect();
    match &cluster.ca {
        Ca::Local { leaf_days } => {
            text += "source = \"local-ca\"\n";
            if let Some(days) = leaf_days {
                writeln!(text, "leaf-days = {days}").unwrap();
            }
        }
        Ca::Acme { .. } => acme(cluster, node, dir, &workers_dns, &mut text)?,
    }
    text += "\n[[zone]]\n";
    writeln!(text, "name = {}", quote(&cluster.domain.to_ascii())).unwrap();
    writeln!(text, "file = {}", quote(&zone_file)).unwrap();

    text += &master_certificate_zone(cluster, dir, keys)?;
    text += &master_publish(cluster);

    text += "\n[transfer]\ntsig-key-file = \"transfer.key\"\n";
    let allow: Vec<String> = cluster
        .workers()
        .iter()
        .map(|w| w.address.to_string())
        .collect();
    writeln!(text, "allow = {}", list(&allow)).unwrap();
    writeln!(text, "notify = {}", list(&workers_dns)).unwrap();
    text += &master_update(cluster, dir, keys)?;
    Ok(text)
}

/// The master's `[update]` section, its key files copied beside it; empty without keys.
fn master_update(
    cluster: &Cluster,
    dir: &Path,
    keys: &keys::KeyFiles,
) -> Result<String, ClusterError> {
    let mut text = String::new();
    if !cluster.update_keys.is_empty() {
        text += "\n[update]\n";
    }
    for key in &cluster.update_keys {
        let file = format!("update-{}.key", key.name);
        copy(&keys.update(&key.name), &dir.join(&file), state::SECRET)?;
        text += "[[update.key]]\n";
        writeln!(text, "tsig-key-file = {}", quote(&file)).unwrap();
        if let Some(grants) = &key.grants {
            writeln!(text, "grant = {}", list(grants)).unwrap();
        }
    }
    Ok(text)
}

/// The master's `[certificate-zone]` section, and its workers' public keys copied beside it.
fn master_certificate_zone(
    cluster: &Cluster,
    dir: &Path,
    keys: &keys::KeyFiles,
) -> Result<String, ClusterError> {
    let mut text = String::from("\n[certificate-zone]\n");
    writeln!(
        text,
        "name = {}",
        quote(&cluster.certificate_zone.to_ascii())
    )
    .unwrap();
    text += "signing-key = \"signing.key\"\n";
    if let Some(secs) = cluster.refresh_secs {
        writeln!(text, "refresh-secs = {secs}").unwrap();
    }
    if let Some(secs) = cluster.retry_secs {
        writeln!(text, "retry-secs = {secs}").unwrap();
    }
    if let Some(id) = &cluster.id {
        writeln!(text, "cluster-id = {}", quote(id)).unwrap();
    }
    for worker in cluster.workers() {
        let (_, public) = keys.worker(worker);
        let name = format!("{}.pub", worker.name);
        copy(&public, &dir.join(&name), state::PUBLIC)?;
        text += "\n[[certificate-zone.worker]]\n";
        writeln!(text, "name = {}", quote(&worker.name)).unwrap();
        writeln!(text, "public-key = {}", quote(&name)).unwrap();
    }
    Ok(text)
}

/// The master's `[publish]` section: every node must answer a new TLSA before a
/// certificate uses its key, and present the new key before the old TLSA goes.
fn master_publish(cluster: &Cluster) -> String {
    let Some(publish) = &cluster.publish else {
        return String::new();
    };
    let mut text = String::from("\n[publish]\n");
    writeln!(text, "svcb = {}", publish.svcb).unwrap();
    writeln!(text, "tlsa = {}", publish.tlsa).unwrap();
    writeln!(text, "caa = {}", publish.caa).unwrap();
    if let Some(ttl) = publish.ttl {
        writeln!(text, "ttl = {ttl}").unwrap();
    }
    if let Some(issuer) = &publish.caa_issuer {
        writeln!(text, "caa-issuer = {}", quote(issuer)).unwrap();
    }
    let dns: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| cluster.dns(n).to_string())
        .collect();
    let dot: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| cluster.tls(n).to_string())
        .collect();
    writeln!(text, "nameservers = {}", list(&dns)).unwrap();
    writeln!(text, "dot-servers = {}", list(&dot)).unwrap();
    text
}

/// The master's `[acme]` section, the CA's roots copied beside its file.
fn acme(
    cluster: &Cluster,
    node: &NodeSpec,
    dir: &Path,
    workers_dns: &[String],
    text: &mut String,
) -> Result<(), ClusterError> {
    let Ca::Acme {
        directory: Some(directory),
        contact,
        ca_roots,
        propagation_timeout_secs,
        retry_base_secs,
        max_orders_per_hour,
    } = &cluster.ca
    else {
        return Err(no_directory(cluster));
    };
    *text += "source = \"acme\"\n\n[acme]\n";
    writeln!(text, "directory = {}", quote(directory)).unwrap();
    if !contact.is_empty() {
        writeln!(text, "contact = {}", list(contact)).unwrap();
    }
    let mut roots = Vec::new();
    for (i, root) in ca_roots.iter().enumerate() {
        let name = format!("acme-root-{i}.pem");
        copy(root, &dir.join(&name), state::PUBLIC)?;
        roots.push(name);
    }
    if !roots.is_empty() {
        writeln!(text, "ca-roots = {}", list(&roots)).unwrap();
    }
    // The CA is told "ready" only once every nameserver answers the challenge.
    let mut authoritative = vec![cluster.dns(node).to_string()];
    authoritative.extend(workers_dns.iter().cloned());
    writeln!(text, "authoritative = {}", list(&authoritative)).unwrap();
    if let Some(secs) = propagation_timeout_secs {
        writeln!(text, "propagation-timeout-secs = {secs}").unwrap();
    }
    if let Some(secs) = retry_base_secs {
        writeln!(text, "retry-base-secs = {secs}").unwrap();
    }
    if let Some(orders) = max_orders_per_hour {
        writeln!(text, "max-orders-per-hour = {orders}").unwrap();
    }
    Ok(())
}

/// ACME without a directory is a cluster file for `cluster docker` only (its test CA).
fn no_directory(cluster: &Cluster) -> ClusterError {
    ClusterError::Invalid {
        path: cluster.path.clone(),
        key: "ca.directory".into(),
        message: "kind = \"acme\" needs the directory URL: [docker] test-ca = true gives one \
                  only to `certzone cluster docker`"
            .into(),
    }
}

fn worker(
    cluster: &Cluster,
    node: &NodeSpec,
    dir: &Path,
    keys: &keys::KeyFiles,
) -> Result<String, ClusterError> {
    let (sealing, _) = keys.worker(node);
    copy(&sealing, &dir.join("sealing.key"), state::SECRET)?;
    copy(
        &keys.signing_public,
        &dir.join("signing.pub"),
        state::PUBLIC,
    )?;
    copy(&keys.transfer, &dir.join("transfer.key"), state::SECRET)?;

    let mut text = head(cluster, node, "worker");
    text += "[tls]\n";
    writeln!(text, "names = {}", list(&cluster.names)).unwrap();
    text += "source = \"certificate-zone\"\n\n[primary]\n";
    writeln!(
        text,
        "address = {}",
        quote(&cluster.dns(cluster.master()).to_string())
    )
    .unwrap();
    text += "tsig-key-file = \"transfer.key\"\n\n[certificate-zone]\n";
    writeln!(
        text,
        "name = {}",
        quote(&cluster.certificate_zone.to_ascii())
    )
    .unwrap();
    text += "signing-public-key = \"signing.pub\"\nsealing-key = \"sealing.key\"\n";
    // The cluster's master publishes format 2: its workers never take format 1.
    text += "minimum-format = 2\n";
    if let Some(id) = &cluster.id {
        writeln!(text, "cluster-id = {}", quote(id)).unwrap();
    }
    text += "\n[[secondary]]\n";
    writeln!(text, "name = {}", quote(&cluster.domain.to_ascii())).unwrap();
    Ok(text)
}

/// The lines every node file starts with: where it came from, role, state, listeners.
fn head(cluster: &Cluster, node: &NodeSpec, role: &str) -> String {
    let mut text = String::new();
    writeln!(
        text,
        "# Node {:?} of the cluster in {}, written by `certzone cluster render`.\n\
         # Edit the cluster file and render again: changes made here are overwritten.\n",
        node.name,
        cluster.path.display()
    )
    .unwrap();
    writeln!(text, "role = {}", quote(role)).unwrap();
    text += "state-dir = \"state\"\n\n[listen]\n";
    let dns = list(&[cluster.dns(node).to_string()]);
    writeln!(text, "udp = {dns}").unwrap();
    writeln!(text, "tcp = {dns}").unwrap();
    writeln!(text, "tls = {}", list(&[cluster.tls(node).to_string()])).unwrap();
    writeln!(text, "https = {}", list(&[cluster.https(node).to_string()])).unwrap();
    text += "\n";
    if let Some(metrics) = cluster.metrics(node) {
        writeln!(
            text,
            "[metrics]\nlisten = {}\n",
            quote(&metrics.to_string())
        )
        .unwrap();
    }
    text
}

/// The derived file must pass the same checks as a hand-written one.
fn check(node: &NodeSpec, config: &Path) -> Result<(), ClusterError> {
    let derived = |message: String| ClusterError::Derived {
        node: node.name.clone(),
        message,
    };
    let parsed = crate::config::Config::load(config).map_err(|errors| {
        let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        derived(messages.join("; "))
    })?;
    crate::node::prepare(parsed)
        .map(drop)
        .map_err(|problems| derived(problems.join("; ")))
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), ClusterError> {
    let bytes = std::fs::read(from).map_err(|e| state::StateError::new("read", from, e))?;
    state::write_atomic(to, &bytes, mode)?;
    Ok(())
}

fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}
