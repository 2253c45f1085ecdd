//! What an operator reads: a worker's start-up banner (its zones, lines that answer, the CA
//! to trust) and a log free of rustls's warning for clients that send an IP address as
//! SNI. The real binary on 127.0.19.3x.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use crate::common::{self, Scratch, binary, cluster::Cluster, kdig, wait_for};

#[test]
fn a_workers_banner_names_its_zones_and_lines_that_answer() {
    let _gate = common::gate();
    let cluster = Cluster::new("127.0.19.31", &["127.0.19.32"], &[0]);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let banner = worker.stdout();
    assert!(
        banner.contains(
            "zones: example.test. (secondary) _certzone.example.test. (certificate zone)"
        ),
        "{banner}"
    );
    assert!(
        !banner.contains(". NS"),
        "no root query (REFUSED): {banner}"
    );
    assert!(
        banner.contains("dig @127.0.19.32 -p 5400 example.test. SOA"),
        "{banner}"
    );
    let kdig_line = banner
        .lines()
        .find(|l| l.trim_start().starts_with("kdig @127.0.19.32") && l.contains("+tls "))
        .unwrap_or_else(|| panic!("a kdig line for DoT: {banner}"));
    assert!(kdig_line.contains("+tls-ca=CA.pem"), "{kdig_line}");
    assert!(banner.contains("CA to trust"), "{banner}");
    // The line, with the CA put in, is answered.
    let ca = cluster.ca();
    let args: Vec<String> = kdig_line
        .split_whitespace()
        .skip(1)
        .map(|a| a.replace("CA.pem", ca.to_str().unwrap()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    wait_for(
        "the worker to serve over DoT",
        Duration::from_secs(20),
        || {
            let out = kdig(&args);
            out.contains("NOERROR").then_some(())
        },
    );
    worker.stop();
    master.stop();
}

/// rustls warns for every client that sends an address as SNI; certzone's default log
/// level keeps that out (CERTZONE_LOG unset, as an operator runs it).
#[test]
fn an_ip_address_as_sni_is_not_logged_at_the_default_level() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.19.35";
    let config = scratch.write(
        "node.toml",
        &format!(
            "state-dir = \"state\"\n[listen]\nudp = [\"{ip}:5300\"]\ntls = [\"{ip}:8530\"]\n\
             [tls]\nnames = [\"ns1.example.test\"]\n[[zone]]\nname = \"example.test.\"\n\
             file = \"example.test.zone\"\n"
        ),
    );
    let log = std::fs::File::create(scratch.path("node.log")).unwrap();
    let mut child = Command::new(binary())
        .args(["run", "--config", config.to_str().unwrap()])
        .env_remove("CERTZONE_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start certzone");
    let ca = scratch.local_ca("state");
    let sni = format!("+tls-sni={ip}");
    let trust = format!("+tls-ca={}", ca.display());
    let answered = wait_for(
        "an answer over DoT with an IP as SNI",
        Duration::from_secs(20),
        || {
            let out = kdig(&[
                &format!("@{ip}"),
                "-p",
                "8530",
                "+tls",
                &sni,
                &trust,
                "+tls-hostname=ns1.example.test",
                "example.test",
                "SOA",
            ]);
            out.contains("NOERROR").then_some(out)
        },
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_for("certzone to exit", Duration::from_secs(10), || {
        child.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(scratch.path("node.log")).unwrap();
    assert!(
        text.contains("certificate installed"),
        "info lines are logged: {text}"
    );
    assert!(!text.contains("Illegal SNI"), "{answered}\n{text}");
}

/// A refused bundle on a worker that has no certificate yet: the log does not claim to keep
/// one.
#[test]
fn a_refused_bundle_without_a_certificate_keeps_nothing() {
    let _gate = common::gate();
    let cluster = Cluster::new("127.0.19.36", &["127.0.19.37"], &[0]);
    // The worker pins another signing key: the master's bundle fails its signature check.
    let other = certzone::bundle::generate_signing_key(&mut rand_core::OsRng);
    cluster.scratch.write(
        "signing.pub",
        &certzone::bundle::verifying_key_to_pem(other.verifying_key()).unwrap(),
    );
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    worker.wait_log("bundle refused", Duration::from_secs(20));
    let log = worker.stderr();
    assert!(
        log.contains("bundle refused; no certificate served yet"),
        "{log}"
    );
    assert!(!log.contains("keeping the current certificate"), "{log}");
    worker.stop();
    master.stop();
}
