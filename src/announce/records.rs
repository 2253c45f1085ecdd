//! The records announcing the certificate, built from what the master knows: SVCB `_dns`
//! (RFC 9460/9461), TLSA 3 1 1 (RFC 6698, 7671) and CAA `issue` pinned to the ACME account
//! (RFC 8659, 8657). Pure: no I/O.

use hickory_proto::rr::{
    Name, RData, Record,
    rdata::{
        CAA, SVCB, TLSA,
        caa::KeyValue,
        svcb::{Alpn, SvcParamKey, SvcParamValue, Unknown},
        tlsa::{CertUsage, Matching, Selector},
    },
};

use crate::config::PublishConfig;

/// RFC 9461 7.1: the `dohpath` SvcParamKey.
const DOHPATH: u16 = 7;
const DEFAULT_DOT_PORT: u16 = 853;
const DEFAULT_DOH_PORT: u16 = 443;

/// SHA-256 of a key's SubjectPublicKeyInfo: TLSA 3 1 1's data.
pub type SpkiHash = [u8; 32];

/// The CA and account a CAA record pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The CA's issuer domain name (RFC 8659 4.2).
    pub issuer: String,
    /// The account's URL (RFC 8657 3).
    pub account: String,
}

/// What to publish for one state of the rollover.
pub(super) struct Inputs<'a> {
    pub(super) config: &'a PublishConfig,
    /// The certificate's names that lie inside the node's zones (wildcards left out).
    pub(super) names: &'a [Name],
    /// Keys whose TLSA is published: the served one, the next one, old ones until withdrawn.
    pub(super) keys: &'a [SpkiHash],
    pub(super) pin: Option<&'a Pin>,
}

/// Every record to publish, in a stable order.
pub(super) fn records(inputs: &Inputs<'_>) -> Vec<Record> {
    let config = inputs.config;
    let ttl = config.ttl;
    let mut out = Vec::new();
    for name in inputs.names {
        if config.svcb {
            out.extend(
                svcb(name, config).into_iter().map(|data| {
                    Record::from_rdata(prefixed(name, &["_dns"]), ttl, RData::SVCB(data))
                }),
            );
        }
        if config.tlsa {
            for owner in tlsa_owners(name, config) {
                out.extend(
                    inputs
                        .keys
                        .iter()
                        .map(|key| Record::from_rdata(owner.clone(), ttl, RData::TLSA(tlsa(key)))),
                );
            }
        }
        if config.caa
            && let Some(pin) = inputs.pin
        {
            out.push(Record::from_rdata(name.clone(), ttl, RData::CAA(caa(pin))));
        }
    }
    out
}

/// `_<port>._tcp.<name>` for DoT and DoH (one owner when both share a port).
pub(super) fn tlsa_owners(name: &Name, config: &PublishConfig) -> Vec<Name> {
    let mut ports: Vec<u16> = [config.dot_port, config.doh_port]
        .into_iter()
        .flatten()
        .collect();
    ports.dedup();
    ports
        .into_iter()
        .map(|port| prefixed(name, &[&format!("_{port}"), "_tcp"]))
        .collect()
}

/// The TLSA 3 1 1 data for `key`.
fn tlsa(key: &SpkiHash) -> TLSA {
    TLSA::new(
        CertUsage::DaneEe,
        Selector::Spki,
        Matching::Sha256,
        key.to_vec(),
    )
}

/// One ServiceMode record per transport: DoT and DoH differ in port, and `port` applies
/// to every `alpn` of a record (RFC 9461 3).
fn svcb(name: &Name, config: &PublishConfig) -> Vec<SVCB> {
    let mut out = Vec::new();
    let mut priority = 1;
    if let Some(port) = config.dot_port {
        let mut params = vec![alpn("dot")];
        if port != DEFAULT_DOT_PORT {
            params.push((SvcParamKey::Port, SvcParamValue::Port(port)));
        }
        out.push(SVCB::new(priority, name.clone(), params));
        priority += 1;
    }
    if let Some(port) = config.doh_port {
        let mut params = vec![alpn("h2")];
        if port != DEFAULT_DOH_PORT {
            params.push((SvcParamKey::Port, SvcParamValue::Port(port)));
        }
        params.push((
            SvcParamKey::Unknown(DOHPATH),
            SvcParamValue::Unknown(Unknown(config.doh_path.as_bytes().to_vec())),
        ));
        out.push(SVCB::new(priority, name.clone(), params));
    }
    out
}

fn alpn(id: &str) -> (SvcParamKey, SvcParamValue) {
    (
        SvcParamKey::Alpn,
        SvcParamValue::Alpn(Alpn(vec![id.into()])),
    )
}

/// `0 issue "<issuer>; accounturi=<url>; validationmethods=dns-01"`.
fn caa(pin: &Pin) -> CAA {
    // Not an FQDN: RFC 8659's issuer-domain-name has no trailing dot.
    let issuer = Name::from_ascii(&pin.issuer).ok();
    CAA::new_issue(
        false,
        issuer,
        vec![
            KeyValue::new("accounturi", pin.account.clone()),
            KeyValue::new("validationmethods", "dns-01"),
        ],
    )
}

/// `labels` in front of `name`.
fn prefixed(name: &Name, labels: &[&str]) -> Name {
    let mut text = labels.join(".");
    text.push('.');
    text.push_str(&name.to_ascii());
    // Local invariant: the labels are short ASCII and `name` is a valid name; the result
    // can only exceed 255 bytes for names within a few bytes of the limit.
    Name::from_ascii(&text).unwrap_or_else(|_| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PublishConfig {
        PublishConfig {
            svcb: true,
            tlsa: true,
            caa: true,
            ttl: 60,
            dot_port: Some(8530),
            doh_port: Some(443),
            doh_path: "/dns-query{?dns}".into(),
            caa_issuer: None,
            nameservers: vec![],
            dot_servers: vec![],
        }
    }

    #[test]
    fn every_record_type_at_its_owner() {
        let config = config();
        let names = [Name::from_ascii("ns1.example.test.").unwrap()];
        let pin = Pin {
            issuer: "ca.test".into(),
            account: "https://ca.test/acct/1".into(),
        };
        let records = records(&Inputs {
            config: &config,
            names: &names,
            keys: &[[1; 32], [2; 32]],
            pin: Some(&pin),
        });
        let text: Vec<String> = records.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert!(
            all.contains(
                "_dns.ns1.example.test. 60 IN SVCB 1 ns1.example.test. alpn=dot, port=8530"
            ),
            "{all}"
        );
        assert!(
            all.contains("SVCB 2 ns1.example.test. alpn=h2, unknown7=\"/dns-query{?dns}\""),
            "{all}"
        );
        assert_eq!(
            text.iter()
                .filter(|t| t.starts_with("_8530._tcp.ns1.example.test. 60 IN TLSA 3 1 1"))
                .count(),
            2,
            "{all}"
        );
        assert_eq!(
            text.iter()
                .filter(|t| t.starts_with("_443._tcp.ns1.example.test."))
                .count(),
            2,
            "{all}"
        );
        assert!(all.contains("ns1.example.test. 60 IN CAA 0 issue"), "{all}");
        assert!(all.contains("accounturi=https://ca.test/acct/1"), "{all}");
    }
}
