//! What a user checks, asked with kdig from the client container: a node's answer to the
//! domain's SOA over DoT or DoH, the chain verified against the roots the client trusts
//! and the certificate's first name.
//!
//! Owns kdig's arguments and the reading of its output. The leaf a node serves is told
//! apart by the SHA-256 public key pin kdig prints (certzone makes a new key for every
//! certificate). It must not change anything in the cluster.

use std::collections::BTreeMap;

use super::project::{CLIENT_MOUNT, Project};
use crate::cluster::NodeSpec;

/// DoT or DoH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    Tls,
    Https,
}

impl Transport {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Tls => "DoT",
            Self::Https => "DoH",
        }
    }
}

/// What `kdig -d` printed for a verified answer.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    /// The served leaf's public key pin.
    pub(super) pin: String,
    /// The rcode (NOERROR, REFUSED, ...).
    pub(super) status: String,
    /// Whether the answer section holds the domain's SOA.
    pub(super) soa: bool,
}

impl Answer {
    /// None unless kdig trusted the chain and got an answer.
    pub(super) fn parse(domain: &str, output: &str) -> Option<Self> {
        if !output.contains("The certificate is trusted") {
            return None;
        }
        let pin = output
            .lines()
            .find_map(|l| l.split_once("SHA-256 PIN:"))
            .map(|(_, pin)| pin.trim().to_string())?;
        let status = output
            .lines()
            .find(|l| l.contains("->>HEADER<<-"))
            .and_then(|l| l.split_once("status: "))
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
            .map(String::from)?;
        let soa = output.lines().any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            matches!(fields.as_slice(),
                [owner, _, "IN", "SOA", ..] if owner.eq_ignore_ascii_case(domain))
        });
        Some(Self { pin, status, soa })
    }

    /// Served: NOERROR with the domain's SOA.
    pub(super) fn serves(&self) -> bool {
        self.status == "NOERROR" && self.soa
    }
}

/// kdig's arguments for the domain's SOA from `ip` over `transport`, as a user types them;
/// `ip` may be a shell variable in the client's query loop.
pub(super) fn args(project: &Project, ip: &str, transport: Transport) -> Vec<String> {
    let cluster = &project.cluster;
    let (port, flag) = match transport {
        Transport::Tls => (cluster.ports.tls, "+tls"),
        Transport::Https => (cluster.ports.https, "+https"),
    };
    vec![
        "kdig".into(),
        format!("@{ip}"),
        "-p".into(),
        port.to_string(),
        flag.into(),
        format!("+tls-ca={CLIENT_MOUNT}/ca.pem"),
        format!("+tls-hostname={}", cluster.names[0]),
        "+timeout=2".into(),
        "+retry=0".into(),
        cluster.domain.to_ascii(),
        "SOA".into(),
    ]
}

/// With `-d`, kdig prints the chain it received, each certificate's key pin, and whether it
/// trusts the chain: what [`Answer::parse`] reads.
pub(super) fn debug(mut args: Vec<String>) -> Vec<String> {
    args.insert(1, "-d".into());
    args
}

/// The node's verified answer, or None (no answer, an untrusted chain, kdig failed).
pub(super) fn ask(project: &Project, node: &NodeSpec, transport: Transport) -> Option<Answer> {
    let args = debug(args(project, &node.address.to_string(), transport));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = project.client(&args).ok()?;
    if !output.status.success() {
        return None;
    }
    Answer::parse(
        &project.cluster.domain.to_ascii(),
        &String::from_utf8_lossy(&output.stdout),
    )
}

/// The pin of the leaf `node` serves with the domain's SOA over `transport`, if it does.
pub(super) fn pin(project: &Project, node: &NodeSpec, transport: Transport) -> Option<String> {
    ask(project, node, transport)
        .filter(Answer::serves)
        .map(|a| a.pin)
}

/// What each of `nodes` serves over DoT: its pin, or None.
pub(super) fn pins<'a>(
    project: &Project,
    nodes: impl IntoIterator<Item = &'a NodeSpec>,
) -> BTreeMap<String, Option<String>> {
    nodes
        .into_iter()
        .map(|n| (n.name.clone(), pin(project, n, Transport::Tls)))
        .collect()
}

/// What each node serves, for messages: `NODE serves pin PIN` or `NODE: no verified answer`.
pub(super) fn describe(pins: &BTreeMap<String, Option<String>>) -> String {
    let each: Vec<String> = pins
        .iter()
        .map(|(node, pin)| match pin {
            Some(pin) => format!("{node} serves pin {pin}"),
            None => format!("{node}: no verified DoT answer with the SOA"),
        })
        .collect();
    each.join("; ")
}

/// The one pin every node in `pins` serves, if they all serve and agree.
pub(super) fn agreed(pins: &BTreeMap<String, Option<String>>) -> Option<String> {
    let mut values = pins.values();
    let first = values.next()?.clone()?;
    values
        .all(|p| p.as_deref() == Some(first.as_str()))
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::Answer;

    const OUTPUT: &str = "\
;; DEBUG: Querying for owner(example.test.), class(1), type(6), server(172.30.77.11), port(853), protocol(TCP)
;; DEBUG: TLS, imported 1 certificates from '/client/ca.pem'
;; DEBUG: TLS, received certificate hierarchy:
;; DEBUG:  #1, CN=ns1.example.test
;; DEBUG:      SHA-256 PIN: dwCny0+P+fSBEJCxjc/GpMLlOfik6g6BKa8FlpOW/3M=
;; DEBUG:  #2, CN=Pebble Intermediate CA 427ac1
;; DEBUG:      SHA-256 PIN: K6VhwqMAk6YRyoCzX14v3OQrbzLHMRv1vhySSX5fvB8=
;; DEBUG: TLS, skipping certificate PIN check
;; DEBUG: TLS, The certificate is trusted. 
;; TLS session (TLS1.3)-(ECDHE-X25519)-(ECDSA-SECP256R1-SHA256)-(AES-256-GCM)
;; ->>HEADER<<- opcode: QUERY; status: NOERROR; id: 4242
;; Flags: qr aa; QUERY: 1; ANSWER: 1; AUTHORITY: 0; ADDITIONAL: 0

;; QUESTION SECTION:
;; example.test.       \t\tIN\tSOA

;; ANSWER SECTION:
example.test.       \t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 7 10 2 1209600 300
";

    #[test]
    fn reads_the_leaf_pin_status_and_soa() {
        let answer = Answer::parse("example.test.", OUTPUT).unwrap();
        assert_eq!(answer.pin, "dwCny0+P+fSBEJCxjc/GpMLlOfik6g6BKa8FlpOW/3M=");
        assert_eq!(answer.status, "NOERROR");
        assert!(answer.serves());
        let other_zone = Answer::parse("other.test.", OUTPUT).unwrap();
        assert!(!other_zone.serves());
        let untrusted = OUTPUT.replace("The certificate is trusted", "certificate is NOT trusted");
        assert!(Answer::parse("example.test.", &untrusted).is_none());
        let refused = OUTPUT.replace("status: NOERROR", "status: REFUSED");
        assert!(!Answer::parse("example.test.", &refused).unwrap().serves());
    }
}
