//! `[listen]` and `[metrics]`, typed: the addresses the node serves on.
//!
//! Owns the clash checks between listeners and the need for a certificate where TLS is
//! served. It must not bind anything (`dns::server::Bound` and `metrics` do).

use std::{collections::HashSet, net::SocketAddr};

use super::{CertificateSource, Checker, Config, TlsConfig, file};

/// The listener addresses (each list may be empty) and how they answer.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    /// Whether answers from the zones are prepared once and reused (`crate::prepared`).
    pub prepared_answers: bool,
}

impl From<file::Listen> for Listen {
    fn from(raw: file::Listen) -> Self {
        Self {
            udp: raw.udp,
            tcp: raw.tcp,
            tls: raw.tls,
            https: raw.https,
            prepared_answers: raw.prepared_answers.unwrap_or(true),
        }
    }
}

impl Listen {
    /// Every TCP-based listener address, for clash checks and messages.
    fn stream_addresses(&self) -> impl Iterator<Item = (&'static str, &SocketAddr)> {
        self.tcp
            .iter()
            .map(|a| ("listen.tcp", a))
            .chain(self.tls.iter().map(|a| ("listen.tls", a)))
            .chain(self.https.iter().map(|a| ("listen.https", a)))
    }
}

impl Checker<'_> {
    /// Listener lists must not clash, and TLS listeners need a certificate. Notes every
    /// problem; `tls_given`: a `[tls]` section was there (refused or not).
    pub(super) fn listeners(&self, config: &Config, tls_given: bool) {
        let listen = &config.listen;
        let mut udp = HashSet::new();
        for addr in &listen.udp {
            if !udp.insert(addr) {
                self.note(self.invalid("listen.udp", format!("{addr} is listed twice")));
            }
        }
        let mut stream = HashSet::new();
        for (key, addr) in listen.stream_addresses() {
            if !stream.insert(addr) {
                self.note(self.invalid(key, format!("{addr} is already used by another listener")));
            }
        }
        if let Some(metrics) = config.metrics
            && stream.contains(&metrics)
        {
            let message = format!("{metrics} is already a DNS listener; give metrics its own port");
            self.note(self.invalid("metrics.listen", message));
        }
        let wants_tls = !listen.tls.is_empty() || !listen.https.is_empty();
        if wants_tls && !tls_given {
            self.note(self.invalid("tls", "listen.tls and listen.https need a [tls] section"));
        }
        // The challenge check reads the zones: skipped when a zone was refused.
        if let Some(TlsConfig {
            names,
            source: CertificateSource::Acme(_),
        }) = &config.tls
            && self.problems.borrow().is_empty()
            && let Err(e) = self.challenges_in_zones(names, &config.zones)
        {
            self.note(e);
        }
        if listen.udp.is_empty() && stream.is_empty() {
            self.note(self.invalid("listen", "no listener is configured"));
        }
    }
}
