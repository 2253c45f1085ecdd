//! Node directories derived from the cluster file: `<state-dir>/nodes/<name>/node.toml` and
//! every file that node needs beside it, so one directory is all a host (or a container)
//! needs. Paths in `node.toml` are relative to it.
//!
//! Owns the mapping from cluster to node settings, built as [`config::file`] values and
//! written by serde: a derived file has the schema of a hand-written one. A node gets only
//! its own secrets: the master the signing and TSIG keys, a worker its sealing key and the
//! TSIG key. It must not touch a node's `state/` directory, which belongs to the running
//! node, nor check the derived files beyond their writing (the CLI runs the node checks).

use std::path::{Path, PathBuf};

use super::{Ca, Cluster, ClusterError, NodeSpec, Role, keys};
use crate::{config::file, state};

/// One node's derived directory and config file.
#[derive(Debug, Clone)]
pub struct RenderedNode {
    pub node: NodeSpec,
    pub dir: PathBuf,
    pub config: PathBuf,
}

/// Writes every node's directory (keys made on first use). Running it again rewrites the
/// files and keeps the keys and every node's state.
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
        let file = match node.role {
            Role::Master => master(cluster, node, &dir, &keys, &zone_text)?,
            Role::Worker => worker(cluster, node, &dir, &keys)?,
        };
        let text = toml::to_string(&file).map_err(|e| ClusterError::Derived {
            node: node.name.clone(),
            message: e.to_string(),
        })?;
        let config = dir.join("node.toml");
        let text = header(cluster, node) + &text;
        state::write_atomic(&config, text.as_bytes(), state::PUBLIC)?;
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
) -> Result<file::File, ClusterError> {
    copy(&keys.signing, &dir.join("signing.key"), state::SECRET)?;
    copy(&keys.transfer, &dir.join("transfer.key"), state::SECRET)?;
    let zone_file = format!("{}zone", cluster.domain.to_ascii());
    state::write_atomic(&dir.join(&zone_file), zone_text, state::PUBLIC)?;

    let workers = cluster.workers();
    let (tls, acme) = match &cluster.ca {
        Ca::Local { leaf_days } => {
            let source = file::CertSource::LocalCa;
            (tls(cluster, source, *leaf_days), None)
        }
        Ca::Acme { .. } => {
            let acme = acme(cluster, node, dir)?;
            (tls(cluster, file::CertSource::Acme, None), Some(acme))
        }
    };
    Ok(file::File {
        tls: Some(tls),
        acme,
        zones: vec![file::Zone {
            name: cluster.domain.to_ascii(),
            file: zone_file.into(),
        }],
        certificate_zone: Some(master_certificate_zone(cluster, dir, keys)?),
        publish: master_publish(cluster),
        transfer: Some(file::Transfer {
            tsig_key_file: "transfer.key".into(),
            allow: workers.iter().map(|w| w.address).collect(),
            notify: workers.iter().map(|w| cluster.dns(w)).collect(),
        }),
        update: master_update(cluster, dir, keys)?,
        ..base(cluster, node)
    })
}

/// `[tls]`: the cluster's names, from `source`.
fn tls(cluster: &Cluster, source: file::CertSource, leaf_days: Option<u32>) -> file::Tls {
    file::Tls {
        names: cluster.names.clone(),
        source,
        leaf_days,
        ..file::Tls::default()
    }
}

/// The master's `[update]` section, its key files copied beside it; none without keys.
fn master_update(
    cluster: &Cluster,
    dir: &Path,
    keys: &keys::KeyFiles,
) -> Result<Option<file::Update>, ClusterError> {
    if cluster.update_keys.is_empty() {
        return Ok(None);
    }
    let mut entries = Vec::new();
    for key in &cluster.update_keys {
        let file = format!("update-{}.key", key.name);
        copy(&keys.update(&key.name), &dir.join(&file), state::SECRET)?;
        entries.push(file::UpdateKey {
            tsig_key_file: file.into(),
            grant: key.grants.clone(),
        });
    }
    Ok(Some(file::Update {
        keys: entries,
        wait_for_workers_ms: None,
    }))
}

/// The master's `[certificate-zone]` section, and its workers' public keys copied beside it.
fn master_certificate_zone(
    cluster: &Cluster,
    dir: &Path,
    keys: &keys::KeyFiles,
) -> Result<file::CertificateZone, ClusterError> {
    let mut workers = Vec::new();
    for worker in cluster.workers() {
        let (_, public) = keys.worker(worker);
        let name = format!("{}.pub", worker.name);
        copy(&public, &dir.join(&name), state::PUBLIC)?;
        workers.push(file::Worker {
            name: worker.name.clone(),
            public_key: name.into(),
        });
    }
    Ok(file::CertificateZone {
        name: Some(cluster.certificate_zone.to_ascii()),
        signing_key: Some("signing.key".into()),
        workers,
        refresh_secs: cluster.refresh_secs,
        retry_secs: cluster.retry_secs,
        cluster_id: cluster.id.clone(),
        ..file::CertificateZone::default()
    })
}

/// The master's `[publish]` section: every node must answer a new TLSA before a
/// certificate uses its key, and present the new key before the old TLSA goes.
fn master_publish(cluster: &Cluster) -> Option<file::Publish> {
    let publish = cluster.publish.as_ref()?;
    Some(file::Publish {
        svcb: publish.svcb,
        tlsa: publish.tlsa,
        caa: publish.caa,
        ttl: publish.ttl,
        caa_issuer: publish.caa_issuer.clone(),
        nameservers: cluster.nodes.iter().map(|n| cluster.dns(n)).collect(),
        dot_servers: cluster.nodes.iter().map(|n| cluster.tls(n)).collect(),
        ..file::Publish::default()
    })
}

/// The master's `[acme]` section, the CA's roots copied beside its file.
fn acme(cluster: &Cluster, node: &NodeSpec, dir: &Path) -> Result<file::Acme, ClusterError> {
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
    let mut roots = Vec::new();
    for (i, root) in ca_roots.iter().enumerate() {
        let name = format!("acme-root-{i}.pem");
        copy(root, &dir.join(&name), state::PUBLIC)?;
        roots.push(name.into());
    }
    // The CA is told "ready" only once every nameserver answers the challenge.
    let nameservers = std::iter::once(node).chain(cluster.workers());
    Ok(file::Acme {
        directory: directory.clone(),
        contact: contact.clone(),
        ca_roots: roots,
        authoritative: nameservers.map(|n| cluster.dns(n)).collect(),
        propagation_timeout_secs: *propagation_timeout_secs,
        retry_base_secs: *retry_base_secs,
        max_orders_per_hour: *max_orders_per_hour,
        ..file::Acme::default()
    })
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
) -> Result<file::File, ClusterError> {
    let (sealing, _) = keys.worker(node);
    copy(&sealing, &dir.join("sealing.key"), state::SECRET)?;
    copy(
        &keys.signing_public,
        &dir.join("signing.pub"),
        state::PUBLIC,
    )?;
    copy(&keys.transfer, &dir.join("transfer.key"), state::SECRET)?;
    Ok(file::File {
        tls: Some(tls(cluster, file::CertSource::CertificateZone, None)),
        primary: Some(file::Primary {
            address: cluster.dns(cluster.master()),
            tsig_key_file: "transfer.key".into(),
        }),
        certificate_zone: Some(file::CertificateZone {
            name: Some(cluster.certificate_zone.to_ascii()),
            signing_public_key: Some("signing.pub".into()),
            sealing_key: Some("sealing.key".into()),
            // The cluster's master publishes format 2: its workers never take format 1.
            minimum_format: Some(2),
            cluster_id: cluster.id.clone(),
            ..file::CertificateZone::default()
        }),
        secondaries: vec![file::Secondary {
            name: cluster.domain.to_ascii(),
        }],
        ..base(cluster, node)
    })
}

/// What every node file holds: role, state, listeners, metrics.
fn base(cluster: &Cluster, node: &NodeSpec) -> file::File {
    let dns = cluster.dns(node);
    file::File {
        role: node.role,
        state_dir: "state".into(),
        listen: file::Listen {
            udp: vec![dns],
            tcp: vec![dns],
            tls: vec![cluster.tls(node)],
            https: vec![cluster.https(node)],
            prepared_answers: None,
        },
        metrics: cluster.metrics(node).map(|listen| file::Metrics { listen }),
        ..file::File::default()
    }
}

/// Where the file came from, so nobody edits it in place.
fn header(cluster: &Cluster, node: &NodeSpec) -> String {
    format!(
        "# Node {:?} of the cluster in {}, written by `certzone cluster render`.\n\
         # Edit the cluster file and render again: changes made here are overwritten.\n\n",
        node.name,
        cluster.path.display()
    )
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), ClusterError> {
    let bytes = std::fs::read(from).map_err(|e| state::StateError::new("read", from, e))?;
    state::write_atomic(to, &bytes, mode)?;
    Ok(())
}
