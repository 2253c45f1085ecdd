//! What the ACME issuer keeps in `<state-dir>/acme/`: the account (`account.json`, 0600),
//! the certificate (`cert.pem`) and its key (`key.pem`, 0600), and the times of recent
//! orders (`orders.json`) so a restart loop cannot hammer the CA.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

use crate::{
    state::{self, StateError},
    tls::{self, Served},
};

/// The persisted files of one node's issuer.
#[derive(Debug, Clone)]
pub(super) struct Store {
    dir: PathBuf,
}

/// The account and the directory it belongs to (accounts do not move between CAs).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredAccount {
    pub(super) directory: String,
    pub(super) credentials: instant_acme::AccountCredentials,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Orders {
    /// Unix seconds of each order in the last hour.
    times: Vec<u64>,
}

const HOUR: Duration = Duration::from_secs(3600);

impl Store {
    pub(super) fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("acme"),
        }
    }

    pub(super) fn ensure(&self) -> Result<(), StateError> {
        state::ensure_dir(&self.dir)
    }

    /// The stored account for `directory`, if any (an unreadable file is treated as none).
    pub(super) fn account(&self, directory: &str) -> Result<Option<StoredAccount>, StateError> {
        let Some(bytes) = state::read_optional(&self.dir.join("account.json"))? else {
            return Ok(None);
        };
        let account = serde_json::from_slice::<StoredAccount>(&bytes)
            .ok()
            .filter(|a| a.directory == directory);
        Ok(account)
    }

    pub(super) fn save_account(&self, account: &StoredAccount) -> Result<(), StateError> {
        // Local invariant: credentials always serialize.
        let json = serde_json::to_vec_pretty(account).expect("account credentials serialize");
        state::write_atomic(&self.dir.join("account.json"), &json, state::SECRET)
    }

    /// Drops the stored account: the CA no longer knows it.
    pub(super) fn forget_account(&self) -> Result<(), StateError> {
        match std::fs::remove_file(self.dir.join("account.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StateError::new("remove", &self.dir.join("account.json"), e))
            }
            _ => Ok(()),
        }
    }

    /// The stored certificate and key, if both exist and parse.
    pub(super) fn certificate(&self) -> Result<Option<(String, Served)>, StateError> {
        let cert = state::read_optional(&self.dir.join("cert.pem"))?;
        let key = state::read_optional(&self.dir.join("key.pem"))?;
        let (Some(cert), Some(key)) = (cert, key) else {
            return Ok(None);
        };
        let pem = String::from_utf8_lossy(&cert).into_owned();
        Ok(tls::parse_pem(&cert, &key).ok().map(|served| (pem, served)))
    }

    /// Key first, then chain: a crash in between leaves a key without its chain, which is
    /// read as "no certificate", never a chain with the wrong key.
    pub(super) fn save_certificate(
        &self,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<(), StateError> {
        let _ = std::fs::remove_file(self.dir.join("cert.pem"));
        state::write_atomic(&self.dir.join("key.pem"), key_pem.as_bytes(), state::SECRET)?;
        state::write_atomic(
            &self.dir.join("cert.pem"),
            chain_pem.as_bytes(),
            state::PUBLIC,
        )
    }

    /// Orders placed in the hour before `now`.
    pub(super) fn recent_orders(&self, now: SystemTime) -> Result<Vec<SystemTime>, StateError> {
        let orders = self.orders()?;
        let since = now - HOUR;
        Ok(orders
            .times
            .iter()
            .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(*t))
            .filter(|t| *t > since)
            .collect())
    }

    pub(super) fn record_order(&self, now: SystemTime) -> Result<(), StateError> {
        let mut times: Vec<u64> = self
            .recent_orders(now)?
            .iter()
            .map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs()
            })
            .collect();
        times.push(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        );
        let json = serde_json::to_vec(&Orders { times }).expect("order times serialize");
        state::write_atomic(&self.dir.join("orders.json"), &json, state::PUBLIC)
    }

    fn orders(&self) -> Result<Orders, StateError> {
        let bytes = state::read_optional(&self.dir.join("orders.json"))?;
        Ok(bytes
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }
}
