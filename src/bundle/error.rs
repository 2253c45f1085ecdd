//! The one error type of the bundle module: one variant per reader rule, so a
//! caller (and a test) can tell which check refused a bundle.
//!
//! Owns only the error vocabulary; it must not carry secrets (no key bytes in
//! any message) because these errors end up in logs.

use thiserror::Error;

/// Why a bundle could not be published, read or inspected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The manifest carries a format version this reader does not implement.
    #[error("format check: unknown bundle format version {0}")]
    UnknownFormat(u8),
    /// The bundle's format is below the reader's floor (it accepted a bundle that
    /// said so, or was configured with one).
    #[error("format check: format {got} is below this reader's minimum format {floor}")]
    FormatDowngrade {
        /// the reader's minimum format
        floor: u8,
        /// the bundle's format
        got: u8,
    },
    /// A record the manifest calls for is absent.
    #[error("record check: missing record {0}")]
    MissingRecord(String),
    /// Two records claim the same place in the bundle.
    #[error("record check: duplicated record {0}")]
    DuplicateRecord(String),
    /// A record sits in the bundle's namespace that the manifest does not list.
    #[error("record check: unexpected record {0}")]
    UnexpectedRecord(String),
    /// A record's data does not follow the format.
    #[error("record check: malformed {what}: {reason}")]
    Malformed {
        /// the record or field
        what: String,
        /// what is wrong with it
        reason: &'static str,
    },
    /// A count or a size is over the documented limit.
    #[error("size check: {what} is {got}, the limit is {limit}")]
    TooLarge {
        /// what was counted
        what: &'static str,
        /// the count or size found
        got: usize,
        /// the limit
        limit: usize,
    },
    /// A signature by a pinned key does not verify (format 1: no pinned key verifies).
    #[error("signature check: the bundle is not signed by the pinned key")]
    BadSignature,
    /// None of a v2 bundle's signers is a pinned key.
    #[error("signature check: no signature by a pinned key (signed by {})", .0.join(", "))]
    UnknownSigner(Vec<String>),
    /// A v2 bundle made for another zone.
    #[error("zone check: the bundle is for zone {got}, not {expected}")]
    WrongZone {
        /// the zone read
        expected: String,
        /// the zone the bundle names
        got: String,
    },
    /// A v2 bundle made for another cluster.
    #[error("cluster check: the bundle is for cluster {got:?}, not {expected:?}")]
    WrongCluster {
        /// this reader's cluster id
        expected: String,
        /// the bundle's cluster id
        got: String,
    },
    /// A v2 bundle whose version or publication time is ahead of the reader's clock by
    /// more than the bound.
    #[error(
        "freshness check: {what} {got} is more than {limit} s ahead of this clock ({now})",
        limit = super::limits::MAX_AHEAD_SECS
    )]
    TooNew {
        /// "bundle version" or "publication time"
        what: &'static str,
        /// the bundle's value
        got: u64,
        /// the reader's clock, unix seconds
        now: u64,
    },
    /// The bundle is older than the reader's floor (held state, `minimum-version`,
    /// `minimum-published`).
    #[error("version check: {what} {got} is below this reader's floor {floor}")]
    BelowFloor {
        /// "bundle version" or "publication time"
        what: &'static str,
        /// the floor
        floor: u64,
        /// the bundle's value (0 for a v1 bundle's missing publication time)
        got: u64,
    },
    /// The bundle is the one already held.
    #[error("version check: bundle version {0} is the same as the one held")]
    SameVersion(u64),
    /// The bundle is older than the one held.
    #[error("version check: rollback from version {held} to {got}")]
    Rollback {
        /// version held by the reader
        held: u64,
        /// version found in the bundle
        got: u64,
    },
    /// A chain certificate does not parse as X.509.
    #[error("chain check: certificate {0} does not parse")]
    BadCertificate(usize),
    /// Certificate `position` is not issued and signed by the next one.
    #[error("chain check: certificate {position} is not signed by certificate {}", position + 1)]
    ChainBroken {
        /// index of the child certificate (0 = leaf)
        position: usize,
    },
    /// The chain does not end at, or under, one of the configured roots.
    #[error("root check: the chain does not reach a configured root")]
    UntrustedRoot,
    /// The leaf's notBefore is in the future.
    #[error("validity check: leaf not valid before {not_before}, now is {now}")]
    LeafNotYetValid {
        /// leaf notBefore, unix seconds
        not_before: i64,
        /// the reader's clock, unix seconds
        now: u64,
    },
    /// The leaf's notAfter is in the past.
    #[error("validity check: leaf expired at {not_after}, now is {now}")]
    LeafExpired {
        /// leaf notAfter, unix seconds
        not_after: i64,
        /// the reader's clock, unix seconds
        now: u64,
    },
    /// The manifest's not-after differs from the leaf's notAfter.
    #[error("validity check: manifest not-after {manifest} differs from the leaf's {leaf}")]
    NotAfterMismatch {
        /// value in the manifest
        manifest: u64,
        /// value in the leaf
        leaf: i64,
    },
    /// A name the node serves is not covered by the bundle's names.
    #[error("name check: {0} is not covered by the bundle's names")]
    NameNotCovered(String),
    /// A bundle name is not covered by the leaf's subjectAltName.
    #[error("name check: the leaf certificate does not cover {0}")]
    LeafNameMismatch(String),
    /// The bundle has no sealed key for this worker.
    #[error("key check: no sealed key for worker {0}")]
    NoKeyForMe(String),
    /// The sealed key for this worker does not open.
    #[error("key check: the sealed key does not open with this worker's key")]
    UnsealFailed,
    /// The unsealed private key is not the leaf certificate's key.
    #[error("key check: the private key does not match the leaf certificate")]
    KeyMismatch,
    /// Publisher input that cannot make a valid bundle.
    #[error("publish input: {0}")]
    InvalidInput(String),
    /// A PEM or DER key that does not parse.
    #[error("key format: {0}")]
    KeyFormat(&'static str),
}

impl BundleError {
    /// The name of the reader rule that failed, as docs/PROTOCOL.md section 6
    /// names them: `format`, `record`, `size`, `signature`, `zone`, `cluster`,
    /// `freshness`, `version`, `chain`, `root`, `validity`, `name`, `key`, or
    /// `input` for publisher input and key files.
    /// Every name [`Self::rule`] gives, for counters that start at zero.
    pub const RULES: [&'static str; 14] = [
        "format",
        "record",
        "size",
        "signature",
        "zone",
        "cluster",
        "freshness",
        "version",
        "chain",
        "root",
        "validity",
        "name",
        "key",
        "input",
    ];

    pub fn rule(&self) -> &'static str {
        match self {
            Self::UnknownFormat(_) | Self::FormatDowngrade { .. } => "format",
            Self::MissingRecord(_)
            | Self::DuplicateRecord(_)
            | Self::UnexpectedRecord(_)
            | Self::Malformed { .. } => "record",
            Self::TooLarge { .. } => "size",
            Self::BadSignature | Self::UnknownSigner(_) => "signature",
            Self::WrongZone { .. } => "zone",
            Self::WrongCluster { .. } => "cluster",
            Self::TooNew { .. } => "freshness",
            Self::SameVersion(_) | Self::Rollback { .. } | Self::BelowFloor { .. } => "version",
            Self::BadCertificate(_) | Self::ChainBroken { .. } => "chain",
            Self::UntrustedRoot => "root",
            Self::LeafNotYetValid { .. }
            | Self::LeafExpired { .. }
            | Self::NotAfterMismatch { .. } => "validity",
            Self::NameNotCovered(_) | Self::LeafNameMismatch(_) => "name",
            Self::NoKeyForMe(_) | Self::UnsealFailed | Self::KeyMismatch => "key",
            Self::InvalidInput(_) | Self::KeyFormat(_) => "input",
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: &'static str) -> Self {
        Self::Malformed {
            what: what.into(),
            reason,
        }
    }
}
