//! `[acme]`, typed: the CA's directory, the account's contact and binding, and the
//! timers of issuance.
//!
//! Owns the presets, the defaults and the checks that need only the file. It must not talk
//! to the CA nor read the roots it names (`acme::check` does, from `node::prepare`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use super::{Challenge, Checker, ConfigError, KeyAlgorithm, file};

/// `[acme]`, typed.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The directory URL (presets already expanded).
    pub directory: String,
    pub contact: Vec<String>,
    pub challenge: Challenge,
    pub eab: Option<Eab>,
    /// Extra roots for the directory's own HTTPS (Pebble, private CAs).
    pub ca_roots: Vec<PathBuf>,
    pub key_algorithm: KeyAlgorithm,
    /// Servers that must answer the challenge before the CA is told "ready".
    pub authoritative: Vec<SocketAddr>,
    pub propagation_timeout: Duration,
    /// First delay after a failure; later ones grow tenfold, capped.
    pub retry_base: Duration,
    pub max_orders_per_hour: u32,
    /// Every HTTP request to the CA, answer included.
    pub http_timeout: Duration,
    /// A whole order, from creation to the certificate.
    pub order_timeout: Duration,
}

/// External Account Binding credentials.
#[derive(Clone)]
pub struct Eab {
    pub key_id: String,
    pub hmac_key: Vec<u8>,
}

impl std::fmt::Debug for Eab {
    // The HMAC key is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eab")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Directory presets operators can name instead of a URL.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

pub const DEFAULT_PROPAGATION_SECS: u64 = 60;
pub const DEFAULT_RETRY_BASE_SECS: u64 = 60;
const DEFAULT_MAX_ORDERS_PER_HOUR: u32 = 5;

impl Checker<'_> {
    pub(super) fn acme(
        &self,
        raw: file::Acme,
        udp: &[SocketAddr],
    ) -> Result<AcmeConfig, ConfigError> {
        let directory = self.directory(&raw.directory)?;
        if let Some(bad) = raw.contact.iter().find(|c| !c.starts_with("mailto:")) {
            return Err(self.invalid("acme.contact", format!("`{bad}` must be a mailto: URL")));
        }
        let eab = self.eab(raw.eab_key_id, raw.eab_hmac_key)?;
        let authoritative = if raw.authoritative.is_empty() {
            let own = udp.first().ok_or_else(|| {
                self.invalid(
                    "acme.authoritative",
                    "no UDP listener to check the challenge on; list the servers here",
                )
            })?;
            vec![*own]
        } else {
            raw.authoritative
        };
        let (http_timeout, order_timeout) =
            self.acme_timeouts(raw.http_timeout_secs, raw.order_timeout_secs)?;
        let positive = |key: &str, value: u64| {
            if value == 0 {
                Err(self.invalid(key, "must be above 0"))
            } else {
                Ok(value)
            }
        };
        Ok(AcmeConfig {
            directory,
            contact: raw.contact,
            challenge: raw.challenge,
            eab,
            ca_roots: raw.ca_roots.iter().map(|p| self.resolve(p)).collect(),
            key_algorithm: raw.key_algorithm,
            authoritative,
            propagation_timeout: Duration::from_secs(positive(
                "acme.propagation-timeout-secs",
                raw.propagation_timeout_secs
                    .unwrap_or(DEFAULT_PROPAGATION_SECS),
            )?),
            retry_base: Duration::from_secs(positive(
                "acme.retry-base-secs",
                raw.retry_base_secs.unwrap_or(DEFAULT_RETRY_BASE_SECS),
            )?),
            max_orders_per_hour: positive(
                "acme.max-orders-per-hour",
                u64::from(
                    raw.max_orders_per_hour
                        .unwrap_or(DEFAULT_MAX_ORDERS_PER_HOUR),
                ),
            )? as u32,
            http_timeout,
            order_timeout,
        })
    }

    /// The directory URL, presets expanded.
    fn directory(&self, raw: &str) -> Result<String, ConfigError> {
        match raw {
            "letsencrypt" => Ok(LETSENCRYPT.to_string()),
            "letsencrypt-staging" => Ok(LETSENCRYPT_STAGING.to_string()),
            url if url.starts_with("https://") => Ok(url.to_string()),
            other => Err(self.invalid(
                "acme.directory",
                format!("`{other}` is neither an https:// URL nor a preset (letsencrypt, letsencrypt-staging)"),
            )),
        }
    }

    /// `eab-key-id` and `eab-hmac-key`, both or neither.
    fn eab(&self, key_id: Option<String>, key: Option<String>) -> Result<Option<Eab>, ConfigError> {
        match (key_id, key) {
            (None, None) => Ok(None),
            (Some(key_id), Some(key)) => {
                use base64::Engine;
                let hmac_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(key.trim_end_matches('='))
                    .map_err(|e| {
                        self.invalid("acme.eab-hmac-key", format!("not base64url: {e}"))
                    })?;
                Ok(Some(Eab { key_id, hmac_key }))
            }
            _ => Err(self.invalid("acme.eab-key-id", "eab-key-id and eab-hmac-key go together")),
        }
    }
}
