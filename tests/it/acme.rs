//! ACME: the master obtains and renews its certificate from real Pebble, answering
//! DNS-01 from its own zone. Each test has its own 127.0.4.x addresses.

use std::{net::SocketAddr, path::Path, time::Duration};

use hickory_proto::rr::RecordType;

use crate::common::{
    self, Node, Scratch, certzone, client, kdig,
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
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.4.1";
    let pebble = Pebble::start(
        "127.0.4.101",
        dns(ip),
        scratch.dir.path(),
        &PebbleOptions::default(),
    );
    let node = Node::start(&scratch.write("master.toml", &master_config(ip, &pebble, "")));
    node.wait_log("certificate installed", Duration::from_secs(30));
    let root = pebble.root();
    for hostname in ["example.test", "www.example.test", "anything.example.test"] {
        assert_eq!(
            dot_answer(ip, &root, hostname),
            "192.0.2.10",
            "DoT verified for {hostname}"
        );
    }
    // The last step logged; lines before it have been read once it has.
    node.wait_log("next certificate renewal", Duration::from_secs(5));
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
    let out = kdig(&[
        "@127.0.4.1",
        "-p",
        "5300",
        "_acme-challenge.example.test",
        "TXT",
    ]);
    assert!(out.contains("ANSWER: 0"), "challenge removed: {out}");
    node.stop();
}

/// The leaf the node serves to a new DoT handshake, verified against `root`.
fn served_leaf(ip: &str, root: &Path) -> Option<Vec<u8>> {
    let addr = format!("{ip}:8530").parse().unwrap();
    client::DotClient::connect(addr, root, "www.example.test")
        .ok()
        .map(|c| c.peer_leaf())
}

/// The leaf stored in the node's state directory.
fn stored_leaf(scratch: &Scratch) -> Vec<u8> {
    let pem = std::fs::read(scratch.path("state/acme/cert.pem")).unwrap();
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[test]
fn short_lived_certificate_is_renewed_without_restart() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.4.2";
    let options = PebbleOptions {
        validity_secs: Some(60),
        ..PebbleOptions::default()
    };
    let pebble = Pebble::start("127.0.4.102", dns(ip), scratch.dir.path(), &options);
    let node = Node::start(&scratch.write("master.toml", &master_config(ip, &pebble, "")));
    node.wait_log("certificate installed", Duration::from_secs(30));
    let root = pebble.root();
    let first = served_leaf(ip, &root).expect("first certificate served");
    let mut held = client::DotClient::connect(
        format!("{ip}:8530").parse().unwrap(),
        &root,
        "www.example.test",
    )
    .unwrap();
    // A 60 s certificate renews at half its life, within a window of a tenth of it. The
    // held connection keeps querying meanwhile, as a client using it would.
    let second = wait_for(
        "the renewed certificate on a new handshake",
        Duration::from_secs(60),
        || {
            let answer = held
                .ask("www.example.test", RecordType::A)
                .expect("the held connection answers");
            assert_eq!(answer.answers.len(), 1);
            std::thread::sleep(Duration::from_millis(200));
            served_leaf(ip, &root).filter(|leaf| *leaf != first)
        },
    );
    assert_eq!(
        held.peer_leaf(),
        first,
        "the connection opened before keeps its certificate"
    );
    let answer = held
        .ask("www.example.test", RecordType::A)
        .expect("old connection still answers");
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(
        stored_leaf(&scratch),
        second,
        "the state on disk is the new certificate"
    );
    assert_eq!(
        node.stderr().matches("ACME order created").count(),
        2,
        "one order per certificate"
    );
    node.stop();
}

#[test]
fn ca_down_means_backoff_and_the_old_certificate_until_it_is_back() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.4.3";
    let options = PebbleOptions {
        validity_secs: Some(60),
        ..PebbleOptions::default()
    };
    let pebble = Pebble::start("127.0.4.103", dns(ip), scratch.dir.path(), &options);
    let config = master_config(ip, &pebble, "");
    let node = Node::start(&scratch.write("master.toml", &config));
    node.wait_log("certificate installed", Duration::from_secs(30));
    let first_root = pebble.root();
    let saved_root = scratch.path("first-root.pem");
    std::fs::copy(&first_root, &saved_root).unwrap();
    let first = served_leaf(ip, &saved_root).unwrap();
    pebble.stop();
    // Renewal comes due at half life (~30 s): two failures, 1 s apart, then a 10 s wait.
    wait_for("a second failed attempt", Duration::from_secs(60), || {
        node.stderr().contains("attempt=2").then_some(())
    });
    let log = node.stderr();
    assert!(
        log.contains("retry_in=1s") && log.contains("retry_in=10s"),
        "delays grow:\n{log}"
    );
    assert!(log.contains("keeping the current certificate"), "{log}");
    assert_eq!(
        served_leaf(ip, &saved_root),
        Some(first.clone()),
        "the old certificate is still served"
    );
    // The CA comes back (a new Pebble: new root, no memory of the account).
    let pebble = Pebble::start("127.0.4.103", dns(ip), scratch.dir.path(), &options);
    let new_root = pebble.root();
    let renewed = wait_for(
        "the renewal once the CA is back",
        Duration::from_secs(30),
        || served_leaf(ip, &new_root).filter(|leaf| *leaf != first),
    );
    assert_eq!(stored_leaf(&scratch), renewed);
    // Logs are read by another thread: wait for the line rather than race it.
    node.wait_log("creating a new one", Duration::from_secs(5));
    node.stop();
}

#[test]
fn nonce_storm_means_retries_then_issuance_when_healthy() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.4.5";
    let stormy = PebbleOptions {
        nonce_reject: 90,
        ..PebbleOptions::default()
    };
    let pebble = Pebble::start("127.0.4.105", dns(ip), scratch.dir.path(), &stormy);
    let node = Node::start(&scratch.write("master.toml", &master_config(ip, &pebble, "")));
    wait_for("a second failed attempt", Duration::from_secs(30), || {
        node.stderr().contains("attempt=2").then_some(())
    });
    assert!(
        node.stderr().contains("badNonce"),
        "the CA's problem type is shown:\n{}",
        node.stderr()
    );
    pebble.stop();
    let pebble = Pebble::start(
        "127.0.4.105",
        dns(ip),
        scratch.dir.path(),
        &PebbleOptions::default(),
    );
    node.wait_log("certificate installed", Duration::from_secs(30));
    assert_eq!(
        dot_answer(ip, &pebble.root(), "www.example.test"),
        "192.0.2.10"
    );
    node.stop();
}

#[test]
fn a_lagging_authoritative_server_stops_the_order_before_ready() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.4.4";
    // The laggard: a second node serving the same zone file, which never gets the challenge.
    let laggard_config = "state-dir = \"lag-state\"\n[listen]\nudp = [\"127.0.4.14:5300\"]\n[[zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n";
    let laggard = Node::start(&scratch.write("laggard.toml", laggard_config));
    let pebble = Pebble::start(
        "127.0.4.104",
        dns(ip),
        scratch.dir.path(),
        &PebbleOptions::default(),
    );
    let mut config = master_config(
        ip,
        &pebble,
        "authoritative = [\"127.0.4.4:5300\", \"127.0.4.4:5301\", \"127.0.4.14:5300\"]",
    );
    config = config.replace(
        "propagation-timeout-secs = 5",
        "propagation-timeout-secs = 2",
    );
    config = config.replace(
        &format!("udp = [\"{ip}:5300\"]"),
        &format!("udp = [\"{ip}:5300\", \"{ip}:5301\"]"),
    );
    let node = Node::start(&scratch.write("master.toml", &config));
    node.wait_log("certificate order failed", Duration::from_secs(30));
    let log = node.stderr();
    assert!(
        log.contains("authoritative server 127.0.4.14:5300 did not serve _acme-challenge."),
        "the error names the laggard:\n{log}"
    );
    assert!(
        log.contains("challenge is served server=127.0.4.4:5301"),
        "the second listener was checked:\n{log}"
    );
    assert!(
        !log.contains("challenge marked ready"),
        "the CA was never told ready:\n{log}"
    );
    let pebble_log = pebble.log();
    assert!(
        !pebble_log.contains("Starting 3 validations") && !pebble_log.contains("INVALID"),
        "no validation:\n{pebble_log}"
    );
    node.stop();
    laggard.stop();
}

#[test]
fn restart_reuses_account_and_certificate_and_renew_forces_an_order() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.4.6";
    let pebble = Pebble::start(
        "127.0.4.106",
        dns(ip),
        scratch.dir.path(),
        &PebbleOptions::default(),
    );
    let config = scratch.write("master.toml", &master_config(ip, &pebble, ""));
    let node = Node::start(&config);
    node.wait_log("certificate installed", Duration::from_secs(30));
    let root = pebble.root();
    let first = served_leaf(ip, &root).unwrap();
    let account = std::fs::read(scratch.path("state/acme/account.json")).unwrap();
    node.stop();
    let node = Node::start(&config);
    // The stored certificate is served at once: it was installed before the ready line.
    assert_eq!(served_leaf(ip, &root), Some(first.clone()));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !node.stderr().contains("ACME order created"),
        "no order with a valid certificate:\n{}",
        node.stderr()
    );
    let out = certzone(&["renew", "--config", config.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let renewed = wait_for("the forced renewal", Duration::from_secs(30), || {
        served_leaf(ip, &root).filter(|leaf| *leaf != first)
    });
    assert_eq!(stored_leaf(&scratch), renewed);
    node.wait_log("certificate installed", Duration::from_secs(5));
    node.wait_log("ACME account loaded", Duration::from_secs(5));
    let log = node.stderr();
    assert!(
        log.contains("certificate renewal forced") && log.contains("ACME account loaded"),
        "{log}"
    );
    assert!(
        !log.contains("ACME account created"),
        "the account is reused:\n{log}"
    );
    assert_eq!(
        std::fs::read(scratch.path("state/acme/account.json")).unwrap(),
        account
    );
    use std::os::unix::fs::PermissionsExt;
    for secret in ["state/acme/account.json", "state/acme/key.pem"] {
        let mode = std::fs::metadata(scratch.path(secret))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }
    node.stop();
}

#[test]
fn external_account_binding_is_used_and_its_absence_is_explained() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let eab = PebbleOptions {
        eab: Some(("kid-1".to_string(), key.to_string())),
        ..PebbleOptions::default()
    };
    let ip = "127.0.4.7";
    let pebble = Pebble::start("127.0.4.107", dns(ip), scratch.dir.path(), &eab);
    let with = master_config(
        ip,
        &pebble,
        &format!("eab-key-id = \"kid-1\"\neab-hmac-key = \"{key}\""),
    );
    let node = Node::start(&scratch.write("with.toml", &with));
    node.wait_log("certificate installed", Duration::from_secs(30));
    assert_eq!(dot_answer(ip, &pebble.root(), "example.test"), "192.0.2.10");
    node.stop();
    let without = master_config("127.0.4.8", &pebble, "")
        .replace("state-dir = \"state\"", "state-dir = \"state-noeab\"");
    let node = Node::start(&scratch.write("without.toml", &without));
    node.wait_log("certificate order failed", Duration::from_secs(30));
    let log = node.stderr();
    assert!(
        log.contains("failed to create the account") && log.contains("externalAccountRequired"),
        "{log}"
    );
    node.stop();
}

#[test]
fn challenge_reaches_two_workers_which_then_serve_the_new_chain() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let (master_ip, workers) = ("127.0.4.9", ["127.0.4.10", "127.0.4.11"]);
    for (kind, file) in [
        ("signing", "signing.pem"),
        ("worker", "w0.key"),
        ("worker", "w1.key"),
    ] {
        scratch.keygen(&[kind], file);
    }
    scratch.keygen(&["tsig", "transfer"], "transfer.key");
    let pebble = Pebble::start(
        "127.0.4.108",
        dns(master_ip),
        scratch.dir.path(),
        &PebbleOptions::default(),
    );
    let servers: Vec<String> = std::iter::once(master_ip)
        .chain(workers)
        .map(|ip| format!("\"{ip}:5300\""))
        .collect();
    let acme = format!("authoritative = [{}]", servers.join(", "));
    let publish = format!(
        "[certificate-zone]\nname = \"_certzone.example.test.\"\nsigning-key = \"signing.pem\"\n[[certificate-zone.worker]]\nname = \"w0\"\npublic-key = \"w0.key.pub\"\n[[certificate-zone.worker]]\nname = \"w1\"\npublic-key = \"w1.key.pub\"\n\n[transfer]\ntsig-key-file = \"transfer.key\"\nnotify = [{}]\n",
        servers[1..].join(", ")
    );
    let config = format!("{}\n{publish}", master_config(master_ip, &pebble, &acme));
    let master = Node::start(&scratch.write("master.toml", &config));
    let worker_nodes: Vec<Node> = workers
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let text = format!(
                "role = \"worker\"\nstate-dir = \"w{i}-state\"\n[listen]\nudp = [\"{ip}:5300\"]\ntcp = [\"{ip}:5300\"]\ntls = [\"{ip}:8530\"]\n[tls]\nnames = [\"www.example.test\"]\nsource = \"certificate-zone\"\n[primary]\naddress = \"{master_ip}:5300\"\ntsig-key-file = \"transfer.key\"\n[certificate-zone]\nname = \"_certzone.example.test.\"\nsigning-public-key = \"signing.pem.pub\"\nsealing-key = \"w{i}.key\"\n[[secondary]]\nname = \"example.test.\"\n"
            );
            Node::start(&scratch.write(&format!("w{i}.toml"), &text))
        })
        .collect();
    master.wait_log("certificate installed", Duration::from_secs(30));
    let log = master.stderr();
    for ip in workers {
        assert!(
            log.contains(&format!("challenge is served server={ip}:5300")),
            "the master confirmed {ip}:\n{log}"
        );
    }
    let root = pebble.root();
    let leaf = served_leaf(master_ip, &root).expect("the master serves the ACME chain");
    for ip in workers {
        wait_for(
            &format!("{ip} to serve the ACME chain"),
            Duration::from_secs(10),
            || (served_leaf(ip, &root).as_ref() == Some(&leaf)).then_some(()),
        );
        assert_eq!(
            dot_answer(ip, &root, "www.example.test"),
            "192.0.2.10",
            "kdig verifies {ip}"
        );
    }
    for node in worker_nodes {
        node.stop();
    }
    master.stop();
}
