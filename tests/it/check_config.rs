//! Bad input refuses to start, with a message naming the problem; `check-config` and `run`
//! say the same thing and exit 2.

use std::time::Duration;

use crate::common::{self, Node, Scratch, certzone, node_config};

/// `check-config` exits 2 naming `expected`; `run` refuses to start with the same message.
fn refused(scratch: &Scratch, config_text: &str, expected: &[&str]) {
    let config = scratch.write("node.toml", config_text);
    let path = config.to_str().unwrap();
    let out = certzone(&["check-config", "--config", path]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "check-config exit code; stderr: {stderr}"
    );
    for needle in expected {
        assert!(
            stderr.contains(needle),
            "check-config names {needle:?}: {stderr}"
        );
    }
    let mut node = Node::spawn(&config);
    let code = node.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(2), "run refuses to start");
    assert!(
        !node.stdout().contains("certzone ready"),
        "run never became ready"
    );
    let run_err = node.stderr();
    for needle in expected {
        assert!(run_err.contains(needle), "run names {needle:?}: {run_err}");
    }
}

const IP: &str = "127.0.3.1";

#[test]
fn good_config_passes() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let config = scratch.write("node.toml", &node_config(IP, "state", "", ""));
    let out = certzone(&["check-config", "--config", config.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !scratch.path("state").exists(),
        "check-config writes nothing"
    );
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let text = node_config(IP, "state", "", "").replace("[listen]", "[listen]\nudp-port = 53");
    refused(&scratch, &text, &["node.toml", "udp-port", "line 4"]);
}

#[test]
fn missing_zone_file_is_named() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    std::fs::remove_file(scratch.path("example.test.zone")).unwrap();
    refused(
        &scratch,
        &node_config(IP, "state", "", ""),
        &["example.test.zone", "No such file"],
    );
}

#[test]
fn zone_syntax_error_names_file_and_line() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let zone = std::fs::read_to_string(scratch.path("example.test.zone")).unwrap();
    let broken = zone.replace("mail    IN A    192.0.2.25", "mail    IN A    192.0.2.25.9");
    let line = broken
        .lines()
        .position(|l| l.contains("192.0.2.25.9"))
        .unwrap()
        + 1;
    scratch.write("example.test.zone", &broken);
    refused(
        &scratch,
        &node_config(IP, "state", "", ""),
        &[&format!("example.test.zone line {line}")],
    );
}

#[test]
fn unparseable_address_is_named() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let text =
        node_config(IP, "state", "", "").replace(&format!("\"{IP}:8530\""), "\"127.0.0.1:85300\"");
    refused(&scratch, &text, &["node.toml", "line 6", "socket address"]);
}

#[test]
fn key_file_that_is_not_pem_is_named() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ns1.example.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    scratch.write("tls.pem", &cert.pem());
    std::fs::write(scratch.path("tls.key"), key.serialize_der()).unwrap();
    let tls = "names = [\"ns1.example.test\"]\nsource = \"files\"\ncert-file = \"tls.pem\"\nkey-file = \"tls.key\"";
    refused(
        &scratch,
        &node_config(IP, "state", tls, ""),
        &["tls.key", "not a PEM private key"],
    );
}

#[test]
fn several_problems_are_all_named() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let text = format!(
        "{}\n[[zone]]\nname = \"missing.test\"\nfile = \"missing.test.zone\"\n",
        node_config(IP, "state", "", "")
    );
    std::fs::write(
        scratch.path("example.test.zone"),
        "$ORIGIN example.test.\nwww 60 IN A 192.0.2.1\n",
    )
    .unwrap();
    refused(&scratch, &text, &["missing.test.zone", "no SOA record"]);
}

#[test]
fn a_tsig_secret_under_16_bytes_is_refused() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    // 8 bytes: hmac-sha256 would take it, but it is guessable in bulk
    scratch.write(
        "transfer.key",
        "key \"transfer\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2hvcnRrZXk=\";\n};\n",
    );
    let text = format!(
        "{}\n[transfer]\ntsig-key-file = \"transfer.key\"\n",
        node_config(IP, "state", "", "")
    );
    refused(
        &scratch,
        &text,
        &["transfer.key", "key transfer.", "8 bytes", "at least 16"],
    );
}

/// Config-level problems in three sections (a missing key-file, a listener clash, a
/// forwarder without tls-name) are all listed in one run, not one per run.
#[test]
fn every_config_level_problem_is_named_in_one_run() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let tls = "names = [\"ns1.example.test\"]\nsource = \"files\"\ncert-file = \"tls.pem\"";
    let forward =
        "\n[forward]\n[[forward.upstream]]\naddress = \"127.0.3.2:853\"\nprotocol = \"tls\"\n";
    let text = node_config(IP, "state", tls, forward).replace(
        &format!("https = [\"{IP}:4430\"]"),
        &format!("https = [\"{IP}:8530\"]"),
    );
    refused(
        &scratch,
        &text,
        &[
            "`tls.key-file`: missing",
            &format!("`listen.https`: {IP}:8530 is already used by another listener"),
            "`forward.upstream[0].tls-name`: missing",
        ],
    );
}

/// IP addresses in [tls] names of a master that publishes the certificate zone are
/// refused by name, not left to fail at publication ("bad name") and on every worker.
#[test]
fn an_ip_address_in_a_publishing_masters_names_is_refused() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    scratch.keygen(&["signing"], "signing.pem");
    let tls = "names = [\"ns1.example.test\", \"127.0.0.7\"]";
    let publish = "\n[certificate-zone]\nsigning-key = \"signing.pem\"\n";
    refused(
        &scratch,
        &node_config(IP, "state", tls, publish),
        &["`tls.names`: `127.0.0.7` is an IP address: a master publishing [certificate-zone]"],
    );
}

/// A worker's names must be covered by the master's certificate, which has no addresses.
#[test]
fn an_ip_address_in_a_workers_names_is_refused() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let text = format!(
        "role = \"worker\"\nstate-dir = \"state\"\n[listen]\nudp = [\"{IP}:5300\"]\n\
         [tls]\nnames = [\"::1\"]\nsource = \"certificate-zone\"\n\
         [primary]\naddress = \"127.0.3.2:5300\"\ntsig-key-file = \"transfer.key\"\n\
         [certificate-zone]\nsigning-public-key = \"s.pub\"\nsealing-key = \"w.key\"\n\
         [[secondary]]\nname = \"example.test.\"\n"
    );
    refused(
        &scratch,
        &text,
        &["`tls.names`: `::1` is an IP address: a worker serves the master's certificate"],
    );
}

/// A worker with only [[secondary]]: its certificate zone is `_certzone.<that zone>`.
#[test]
fn a_worker_with_only_secondaries_needs_no_certificate_zone_name() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    scratch.keygen(&["signing"], "signing.pem");
    scratch.keygen(&["worker"], "sealing.key");
    scratch.keygen(&["tsig", "transfer"], "transfer.key");
    let text = format!(
        r#"role = "worker"
state-dir = "state"

[listen]
udp = ["{IP}:5300"]

[tls]
names = ["ns1.example.test"]
source = "certificate-zone"

[primary]
address = "127.0.3.2:5300"
tsig-key-file = "transfer.key"

[certificate-zone]
signing-public-key = "signing.pem.pub"
sealing-key = "sealing.key"

[[secondary]]
name = "example.test."
"#
    );
    let config = scratch.write("worker.toml", &text);
    let out = certzone(&["check-config", "--config", config.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A cluster file given to check-config: the message points at `cluster render`.
#[test]
fn a_cluster_file_is_pointed_to_cluster_render() {
    let _gate = common::gate();
    let out = certzone(&[
        "check-config",
        "--config",
        common::repo().join("config/cluster.toml").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown field `cluster`") && stderr.contains("certzone cluster render"),
        "{stderr}"
    );
}
