//! The cluster's keys: one directory holding the signing key pair, the transfer TSIG key and
//! every worker's sealing key pair, made on first use (or required, with `generate = false`).
//! The names are what `certzone keygen` writes: `signing.key` (+ `.pub`), `transfer.key`,
//! `<worker>.key` (+ `.pub`); and `update-NAME.key` for each `[[update.key]]` (TSIG key
//! `update-NAME.`, in the tsig-keygen form, 0600).
//!
//! Owns which files exist and the rule that a key is never replaced: a public half without
//! its secret is an error, not a reason to make a new pair. It must not decide which node
//! gets which file (`render` does) and never prints key material.

use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use rand_core::OsRng;

use super::{Cluster, ClusterError, NodeSpec};
use crate::{bundle, state, tsig};

/// Paths of the cluster's key files, all present once `ensure` returned.
pub(super) struct KeyFiles {
    pub(super) signing: PathBuf,
    pub(super) signing_public: PathBuf,
    pub(super) transfer: PathBuf,
    dir: PathBuf,
}

impl KeyFiles {
    fn new(dir: &Path) -> Self {
        Self {
            signing: dir.join("signing.key"),
            signing_public: dir.join("signing.key.pub"),
            transfer: dir.join("transfer.key"),
            dir: dir.to_path_buf(),
        }
    }

    /// An update key's file.
    pub(super) fn update(&self, name: &str) -> PathBuf {
        self.dir.join(format!("update-{name}.key"))
    }

    /// A worker's sealing key (secret) and its public half.
    pub(super) fn worker(&self, node: &NodeSpec) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{}.key", node.name)),
            self.dir.join(format!("{}.key.pub", node.name)),
        )
    }
}

/// Makes the missing keys (when allowed) and checks every node has what it needs.
pub(super) fn ensure(cluster: &Cluster) -> Result<KeyFiles, ClusterError> {
    let files = KeyFiles::new(&cluster.keys_dir);
    if cluster.generate_keys {
        state::ensure_dir(&cluster.keys_dir)?;
        signing_pair(&files)?;
        if !files.transfer.exists() {
            let name = Name::from_ascii("transfer.")
                .and_then(|n| n.append_domain(&cluster.domain))
                .map_err(|e| ClusterError::Keys(format!("TSIG key name: {e}")))?;
            let block = tsig::TsigKey::generate(name, tsig::Algorithm::HmacSha256).to_key_block();
            state::write_exclusive(&files.transfer, block.as_bytes(), state::SECRET)?;
        }
        for worker in cluster.workers() {
            worker_pair(&files, worker)?;
        }
        for key in &cluster.update_keys {
            let path = files.update(&key.name);
            if !path.exists() {
                let name = Name::from_ascii(format!("update-{}.", key.name))
                    .map_err(|e| ClusterError::Keys(format!("TSIG key name: {e}")))?;
                let block = tsig::TsigKey::generate(name, tsig::Algorithm::HmacSha256);
                state::write_exclusive(&path, block.to_key_block().as_bytes(), state::SECRET)?;
            }
        }
    }
    require(cluster, &files)?;
    Ok(files)
}

fn signing_pair(files: &KeyFiles) -> Result<(), ClusterError> {
    match (files.signing.exists(), files.signing_public.exists()) {
        (true, true) => Ok(()),
        (false, false) => {
            let key = bundle::generate_signing_key(&mut OsRng);
            let secret = bundle::signing_key_to_pem(&key).map_err(key_error)?;
            let public = bundle::verifying_key_to_pem(key.verifying_key()).map_err(key_error)?;
            state::write_exclusive(&files.signing, secret.as_bytes(), state::SECRET)?;
            state::write_exclusive(&files.signing_public, public.as_bytes(), state::PUBLIC)?;
            Ok(())
        }
        (true, false) => {
            let key = bundle::signing_key_from_pem(&read(&files.signing)?)
                .map_err(|e| ClusterError::Keys(format!("{}: {e}", files.signing.display())))?;
            let public = bundle::verifying_key_to_pem(key.verifying_key()).map_err(key_error)?;
            state::write_exclusive(&files.signing_public, public.as_bytes(), state::PUBLIC)?;
            Ok(())
        }
        (false, true) => Err(ClusterError::Keys(format!(
            "{} exists without its secret half {}: put the signing key there (or remove the \
             public key to make a new pair, which every worker must then pin)",
            files.signing_public.display(),
            files.signing.display()
        ))),
    }
}

fn worker_pair(files: &KeyFiles, node: &NodeSpec) -> Result<(), ClusterError> {
    let (secret_path, public_path) = files.worker(node);
    match (secret_path.exists(), public_path.exists()) {
        (true, true) => Ok(()),
        (false, false) => {
            let key = bundle::WorkerSecretKey::generate(&mut OsRng);
            let secret = key.to_pem().map_err(key_error)?;
            let public = key.public_key().to_pem().map_err(key_error)?;
            state::write_exclusive(&secret_path, secret.as_bytes(), state::SECRET)?;
            state::write_exclusive(&public_path, public.as_bytes(), state::PUBLIC)?;
            Ok(())
        }
        (true, false) => {
            let key = bundle::WorkerSecretKey::from_pem(&read(&secret_path)?)
                .map_err(|e| ClusterError::Keys(format!("{}: {e}", secret_path.display())))?;
            let public = key.public_key().to_pem().map_err(key_error)?;
            state::write_exclusive(&public_path, public.as_bytes(), state::PUBLIC)?;
            Ok(())
        }
        // Never a new pair over a public key the master may already seal for; `require`
        // names the missing secret.
        (false, true) => Ok(()),
    }
}

/// Names, per node, the first key file it needs that is not there.
fn require(cluster: &Cluster, files: &KeyFiles) -> Result<(), ClusterError> {
    let missing = |node: &NodeSpec, what: &str, path: &Path| {
        ClusterError::Keys(format!(
            "node {:?} ({}) needs {what}, but {} does not exist{}",
            node.name,
            node.role.as_str(),
            path.display(),
            if cluster.generate_keys {
                ""
            } else {
                " (keys.generate = false: make it with `certzone keygen`)"
            }
        ))
    };
    let master = cluster.master();
    for (what, path) in [
        ("the signing key", &files.signing),
        ("the transfer TSIG key", &files.transfer),
    ] {
        if !path.exists() {
            return Err(missing(master, what, path));
        }
    }
    for key in &cluster.update_keys {
        let path = files.update(&key.name);
        if !path.exists() {
            return Err(missing(master, "this update key", &path));
        }
    }
    for worker in cluster.workers() {
        let (secret, public) = files.worker(worker);
        if !public.exists() {
            return Err(missing(master, "this worker's public sealing key", &public));
        }
        for (what, path) in [
            ("the signing public key", &files.signing_public),
            ("its sealing key", &secret),
            ("the transfer TSIG key", &files.transfer),
        ] {
            if !path.exists() {
                return Err(missing(worker, what, path));
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, ClusterError> {
    std::fs::read_to_string(path)
        .map_err(|e| ClusterError::State(state::StateError::new("read", path, e)))
}

fn key_error(e: bundle::BundleError) -> ClusterError {
    ClusterError::Keys(e.to_string())
}
