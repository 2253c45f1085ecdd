//! The master's current certificate, read from its container, for the table `up` prints:
//! its not-after and fingerprint, and the public key pin kdig reports for it.
//!
//! Owns reading the stored leaf (`state/acme/cert.pem` or `state/local-ca/leaf.pem` in the
//! master's directory). It must not judge what the nodes serve: the caller compares pins.

use base64::Engine as _;
use rustls_pki_types::{CertificateDer, pem::PemObject};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{compose::NODE_MOUNT, engine::QUICK, project::Project};
use crate::{cluster::Ca, tls};

/// The master's stored leaf, summarised.
pub(super) struct Leaf {
    /// base64 SHA-256 of the leaf's public key, as kdig prints it.
    pub(super) pin: String,
    pub(super) not_after: String,
    /// SHA-256 of the certificate, hex, as `cluster up` prints it.
    pub(super) fingerprint: String,
}

/// The leaf the master has stored, if it can be read.
pub(super) fn master_leaf(project: &Project) -> Option<Leaf> {
    let file = match project.cluster.ca {
        Ca::Local { .. } => "state/local-ca/leaf.pem",
        Ca::Acme { .. } => "state/acme/cert.pem",
    };
    let master = project.container(&project.cluster.master().name);
    let path = format!("{NODE_MOUNT}/{file}");
    let out = project
        .engine
        .docker_output(&["exec", &master, "cat", &path], QUICK)
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let leaf = CertificateDer::from_pem_slice(&out.stdout).ok()?;
    let summary = tls::summarize(&leaf).ok()?;
    Some(Leaf {
        pin: pin(&leaf)?,
        not_after: crate::clock::rfc3339(summary.not_after),
        fingerprint: summary.fingerprint,
    })
}

/// The public key pin of RFC 7469: base64 SHA-256 of the SubjectPublicKeyInfo.
fn pin(leaf: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    Some(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}
