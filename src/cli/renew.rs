//! `certzone renew --config FILE`: asks the running node to renew its ACME certificate now,
//! by sending SIGUSR1 to the process that holds `<state-dir>/certzone.lock`.
//!
//! Refuses (exit 2) when the node's certificate source has nothing to renew on request,
//! and signals nothing unless a node holds the state directory's lock: a stale or planted
//! pid file is never trusted.

use std::{path::Path, process::ExitCode};

use nix::{sys::signal, unistd::Pid};

use crate::{
    config::{CertificateSource, Config},
    node::Holder,
};

pub(super) fn renew(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("error: {error}");
            }
            return ExitCode::from(super::EXIT_BAD_CONFIG);
        }
    };
    if let Some(why) = nothing_to_renew(&config) {
        eprintln!("error: nothing to renew: {why}");
        return ExitCode::from(super::EXIT_BAD_CONFIG);
    }
    let state_dir = &config.state_dir;
    let pid = match crate::node::holder(state_dir) {
        Ok(Holder::Node(pid)) => pid,
        Ok(Holder::Nobody) => {
            eprintln!(
                "error: no running node on {}: nothing holds {}",
                state_dir.display(),
                crate::node::lock_path(state_dir).display()
            );
            return ExitCode::FAILURE;
        }
        Ok(Holder::Unknown) => {
            eprintln!(
                "error: a node holds {} but its pid does not read as one",
                crate::node::lock_path(state_dir).display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = signal::kill(Pid::from_raw(pid), signal::Signal::SIGUSR1) {
        eprintln!("error: failed to signal certzone (pid {pid}): {e}");
        return ExitCode::FAILURE;
    }
    println!("renewal requested from certzone (pid {pid}); its log shows the order");
    ExitCode::SUCCESS
}

/// Why a node with this configuration has no certificate to renew on request, if so.
fn nothing_to_renew(config: &Config) -> Option<String> {
    let Some(source) = config.tls.as_ref().map(|t| &t.source) else {
        return Some(format!("{} has no [tls] section", config.path.display()));
    };
    match source {
        CertificateSource::Acme(_) => None,
        CertificateSource::LocalCa { .. } => Some(
            "tls.source is \"local-ca\": the node re-issues its leaf itself when a third of \
             its lifetime is left (delete <state-dir>/local-ca/leaf.pem and restart to \
             re-issue now)"
                .into(),
        ),
        CertificateSource::Files { .. } => Some(
            "tls.source is \"files\": replace the PEM files and send SIGHUP to re-read them".into(),
        ),
        CertificateSource::CertificateZone => Some(
            "tls.source is \"certificate-zone\": a worker serves the master's certificate; \
             renew on the master"
                .into(),
        ),
    }
}
