//! `[update]`, typed: the TSIG keys that may change the master's zones by RFC 2136 UPDATE
//! and, for each, the names and types it may change (in the style of BIND's
//! `update-policy`).
//!
//! Owns the grant syntax and the question "may this key change this record set". It must
//! not read key files (`node::prepare` does) or look at zone contents (`zones`).
//!
//! A grant is one string: `KIND NAME TYPE...`, where KIND is
//! - `name`: exactly NAME;
//! - `subdomain`: NAME and every name below it;
//! - `acme-challenge`: `_acme-challenge.X` for X equal to NAME or below it (`.` for any);
//!
//! and each TYPE is a record type, or `ANY` for every type but SOA (the SOA is the
//! server's: its serial moves with every change). A key without grants gets
//! [`DEFAULT_GRANT`]: TXT at `_acme-challenge` names only.

use std::path::PathBuf;

use hickory_proto::rr::{Name, RecordType};

use super::{Checker, file};

/// What a key with no `grant` may change.
pub const DEFAULT_GRANT: &str = "acme-challenge . TXT";

const ACME_LABEL: &[u8] = b"_acme-challenge";

/// `[update]`: the keys allowed to send UPDATE, each with its grants.
#[derive(Debug, Clone)]
pub struct UpdateConfig {
    pub keys: Vec<UpdateKey>,
    /// How long NOERROR waits for the `[transfer] notify` secondaries to serve a change.
    pub wait_for_workers: std::time::Duration,
}

/// `wait-for-workers-ms` when not given: workers follow within milliseconds; a worker
/// that is down holds each answer this long.
const DEFAULT_WAIT_FOR_WORKERS_MS: u64 = 2000;

/// `[[update.key]]`: one TSIG key file (one key in it) and what that key may change.
#[derive(Debug, Clone)]
pub struct UpdateKey {
    pub file: PathBuf,
    pub grants: Vec<Grant>,
}

impl UpdateKey {
    /// Whether any of the key's grants covers `rtype` at `name`.
    pub fn allows(&self, name: &Name, rtype: RecordType) -> bool {
        self.grants.iter().any(|g| g.allows(name, rtype))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    Name,
    Subdomain,
    AcmeChallenge,
}

/// One rule: a kind of name match and the types it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub kind: GrantKind,
    pub name: Name,
    /// Empty: any type but SOA.
    pub types: Vec<RecordType>,
}

impl Grant {
    /// Reads `KIND NAME TYPE...`; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        let kind = match words.next() {
            Some("name") => GrantKind::Name,
            Some("subdomain") => GrantKind::Subdomain,
            Some("acme-challenge") => GrantKind::AcmeChallenge,
            other => {
                return Err(format!(
                    "grant `{text}`: kind {other:?} is not one of name, subdomain, \
                     acme-challenge"
                ));
            }
        };
        let name = words
            .next()
            .ok_or_else(|| format!("grant `{text}`: no name"))?;
        let mut name =
            Name::from_ascii(name).map_err(|e| format!("grant `{text}`: name `{name}`: {e}"))?;
        name.set_fqdn(true);
        let mut types = Vec::new();
        for word in words {
            if word.eq_ignore_ascii_case("ANY") {
                types.clear();
                return Ok(Self { kind, name, types });
            }
            let rtype: RecordType = word
                .to_ascii_uppercase()
                .parse()
                .map_err(|_| format!("grant `{text}`: `{word}` is not a record type"))?;
            if rtype == RecordType::SOA {
                return Err(format!(
                    "grant `{text}`: SOA cannot be granted (the server raises its serial)"
                ));
            }
            types.push(rtype);
        }
        if types.is_empty() {
            return Err(format!(
                "grant `{text}`: no type (name the types, or ANY for all but SOA)"
            ));
        }
        Ok(Self { kind, name, types })
    }

    /// Whether this grant covers `rtype` at `name`.
    pub fn allows(&self, name: &Name, rtype: RecordType) -> bool {
        if rtype == RecordType::SOA {
            return false;
        }
        let type_ok = self.types.is_empty() || self.types.contains(&rtype);
        type_ok && self.name_matches(name)
    }

    fn name_matches(&self, name: &Name) -> bool {
        match self.kind {
            GrantKind::Name => {
                self.name.zone_of(name) && self.name.num_labels() == name.num_labels()
            }
            GrantKind::Subdomain => self.name.zone_of(name),
            GrantKind::AcmeChallenge => {
                let first = name.iter().next();
                first.is_some_and(|label| label.eq_ignore_ascii_case(ACME_LABEL))
                    && self.name.zone_of(&name.base_name())
            }
        }
    }
}

impl Checker<'_> {
    /// `[update]`: each grant read, each bad one noted with its key's position.
    pub(super) fn update(&self, raw: file::Update) -> UpdateConfig {
        if raw.keys.is_empty() {
            self.note(self.invalid("update.key", "at least one [[update.key]] is needed"));
        }
        let keys = raw.keys.into_iter().enumerate().map(|(i, key)| {
            let texts = key.grant.unwrap_or_else(|| vec![DEFAULT_GRANT.to_string()]);
            if texts.is_empty() {
                self.note(self.invalid(
                    &format!("update.key[{i}].grant"),
                    "an empty list grants nothing; leave it out for the default",
                ));
            }
            let grants = texts
                .iter()
                .filter_map(|text| {
                    Grant::parse(text)
                        .map_err(|m| self.note(self.invalid(&format!("update.key[{i}].grant"), m)))
                        .ok()
                })
                .collect();
            UpdateKey {
                file: self.resolve(&key.tsig_key_file),
                grants,
            }
        });
        let wait = raw
            .wait_for_workers_ms
            .unwrap_or(DEFAULT_WAIT_FOR_WORKERS_MS);
        if wait > 60_000 {
            self.note(self.invalid(
                "update.wait-for-workers-ms",
                format!("{wait}: at most 60000 (clients time out long before)"),
            ));
        }
        UpdateConfig {
            keys: keys.collect(),
            wait_for_workers: std::time::Duration::from_millis(wait.min(60_000)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn the_default_grant_is_txt_at_acme_challenge_names_only() {
        let grant = Grant::parse(DEFAULT_GRANT).unwrap();
        assert!(grant.allows(&name("_acme-challenge.web.example.test."), RecordType::TXT));
        assert!(grant.allows(&name("_ACME-Challenge.example.test."), RecordType::TXT));
        assert!(!grant.allows(&name("_acme-challenge.web.example.test."), RecordType::A));
        assert!(!grant.allows(&name("web.example.test."), RecordType::TXT));
        assert!(!grant.allows(
            &name("x._acme-challenge.web.example.test."),
            RecordType::TXT
        ));
    }

    #[test]
    fn kinds_match_exact_names_subtrees_and_challenges_below_a_subtree() {
        let exact = Grant::parse("name web.example.test A AAAA").unwrap();
        assert!(exact.allows(&name("WEB.example.test."), RecordType::A));
        assert!(!exact.allows(&name("a.web.example.test."), RecordType::A));
        assert!(!exact.allows(&name("web.example.test."), RecordType::TXT));
        let subtree = Grant::parse("subdomain web.example.test. ANY").unwrap();
        assert!(subtree.allows(&name("a.b.web.example.test."), RecordType::MX));
        assert!(!subtree.allows(&name("web.example.test."), RecordType::SOA));
        assert!(!subtree.allows(&name("mail.example.test."), RecordType::MX));
        let acme = Grant::parse("acme-challenge web.example.test. TXT").unwrap();
        assert!(acme.allows(
            &name("_acme-challenge.a.web.example.test."),
            RecordType::TXT
        ));
        assert!(!acme.allows(&name("_acme-challenge.mail.example.test."), RecordType::TXT));
    }

    #[test]
    fn bad_grants_say_what_is_wrong() {
        for (text, want) in [
            ("zone example.test. TXT", "is not one of"),
            ("name", "no name"),
            ("name a.test. BOGUS", "not a record type"),
            ("name a.test.", "no type"),
            ("name a.test. SOA", "SOA cannot"),
        ] {
            let error = Grant::parse(text).unwrap_err();
            assert!(error.contains(want), "{text}: {error}");
        }
    }
}
