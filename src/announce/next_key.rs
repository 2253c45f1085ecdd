//! The next certificate key, made ahead of renewal so its TLSA can be served first:
//! `<state-dir>/announce/next-key.pem` (PKCS#8, 0600), kept until a certificate with it is
//! served, then replaced by a new one.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{AnnounceError, SpkiHash};
use crate::state;

/// The key waiting for the next certificate.
pub(super) struct NextKey {
    /// PKCS#8 PEM; wiped when dropped.
    pem: Zeroizing<String>,
    pub(super) hash: SpkiHash,
}

impl NextKey {
    /// The key for a new certificate, made from the kept PEM.
    pub(super) fn key_pair(&self) -> Result<rcgen::KeyPair, AnnounceError> {
        rcgen::KeyPair::from_pem(&self.pem).map_err(AnnounceError::Key)
    }
}

pub(super) struct Store {
    path: PathBuf,
}

impl Store {
    pub(super) fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("announce").join("next-key.pem"),
        }
    }

    /// The kept key if it is one of `algorithm` and is not `served`; else a new one, written
    /// (0600) before it is published.
    pub(super) fn load_or_make(
        &self,
        algorithm: &'static rcgen::SignatureAlgorithm,
        served: Option<SpkiHash>,
    ) -> Result<NextKey, AnnounceError> {
        if let Some(bytes) = state::read_optional(&self.path)? {
            let pem = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
            match rcgen::KeyPair::from_pem(&pem) {
                Ok(key) if key.algorithm() == algorithm && Some(hash(&key)) != served => {
                    return Ok(NextKey {
                        hash: hash(&key),
                        pem,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    path = %self.path.display(),
                    error = %e,
                    "the next key is unreadable; making a new one"
                ),
            }
        }
        self.make(algorithm)
    }

    /// A new key, replacing the kept one.
    pub(super) fn make(
        &self,
        algorithm: &'static rcgen::SignatureAlgorithm,
    ) -> Result<NextKey, AnnounceError> {
        let key = rcgen::KeyPair::generate_for(algorithm).map_err(AnnounceError::Key)?;
        let pem = Zeroizing::new(key.serialize_pem());
        if let Some(dir) = self.path.parent() {
            state::ensure_dir(dir)?;
        }
        state::write_atomic(&self.path, pem.as_bytes(), state::SECRET)?;
        let hash = hash(&key);
        tracing::info!(tlsa = %hex(&hash), "next certificate key made");
        Ok(NextKey { pem, hash })
    }
}

pub(super) fn hash(key: &rcgen::KeyPair) -> SpkiHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.public_key_der());
    // Local invariant: SHA-256 digests are 32 bytes.
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

pub(super) fn hex(hash: &SpkiHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}
