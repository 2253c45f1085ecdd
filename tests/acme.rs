//! Issue "ACME": the master obtains and renews its certificate from real Pebble, answering
//! DNS-01 from its own zone. Each test has its own 127.0.4.x addresses.

mod common;

use std::{net::SocketAddr, path::Path, time::Duration};

use common::{
    Node, Scratch, kdig,
    pebble::{Pebble, PebbleOptions},
    wait_for,
};

const NAMES: &str = r#"["example.test", "www.example.test", "*.example.test"]"#;

/// A master on `ip` whose certificate comes from `pebble`; `acme_extra` goes in `[acme]`.
fn master_config(ip: &str, pebble: &Pebble, acme_extra: &str) -> String {
    format!(
        r#"state-dir = "state"

[listen]
udp = ["{ip}:5300"]
tcp = ["{ip}:5300"]
tls = ["{ip}:8530"]

[tls]
names = {NAMES}
source = "acme"

[acme]
directory = "{directory}"
ca-roots = ["{https_ca}"]
contact = ["mailto:hostmaster@example.test"]
retry-base-secs = 1
max-orders-per-hour = 50
propagation-timeout-secs = 5
{acme_extra}

[[zone]]
name = "example.test."
file = "example.test.zone"
"#,
        directory = pebble.directory(),
        https_ca = pebble.https_ca().display(),
    )
}

fn dns(ip: &str) -> SocketAddr {
    format!("{ip}:5300").parse().unwrap()
}

/// kdig over TLS to `ip`, verifying against `root` and `hostname`; returns the A answer.
fn dot_answer(ip: &str, root: &Path, hostname: &str) -> String {
    let out = kdig(&[
        &format!("@{ip}"),
        "-p",
        "8530",
        "+tls",
        &format!("+tls-ca={}", root.display()),
        &format!("+tls-hostname={hostname}"),
        "+short",
        "www.example.test",
        "A",
    ]);
    out.trim().to_string()
}

#[test]
fn issues_for_two_names_and_a_wildcard_verified_by_kdig() {
    let scratch = Scratch::new();
    let ip = "127.0.4.1";
    let pebble = Pebble::start("127.0.4.101", dns(ip), scratch.dir.path(), &PebbleOptions::default());
    let node = Node::start(&scratch.write("master.toml", &master_config(ip, &pebble, "")));
    node.wait_log("certificate installed", Duration::from_secs(30));
    let root = pebble.root();
    for hostname in ["example.test", "www.example.test", "anything.example.test"] {
        assert_eq!(dot_answer(ip, &root, hostname), "192.0.2.10", "DoT verified for {hostname}");
    }
    let log = node.stderr();
    for step in [
        "ACME account created",
        "ACME order created",
        "authorization pending: dns-01 challenge",
        "challenge is served",
        "challenge marked ready",
        "validation succeeded",
        "certificate installed",
        "next certificate renewal",
    ] {
        assert!(log.contains(step), "the log says {step:?}:\n{log}");
    }
    // The challenge records are gone once the order ends.
    let out = kdig(&["@127.0.4.1", "-p", "5300", "_acme-challenge.example.test", "TXT"]);
    assert!(out.contains("ANSWER: 0"), "challenge removed: {out}");
    node.stop();
}
