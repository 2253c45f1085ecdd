//! Interop with BIND 9 and `certzone verify` against a running master: BIND as a TSIG
//! secondary of the master (certificate zone and an ordinary zone, after NOTIFY), a
//! certzone worker as a secondary of a BIND primary, and zones of 100,000 records both
//! ways. Addresses 127.0.8.x.

use std::{process::Command, time::Duration};

use crate::common::{
    self, Node, Scratch,
    bind::{Bind, BindConfig, BindZone, Source, Transfer, zone_file},
    certzone, client, kdig, node_config, wait_for,
};
use certzone::tsig::TsigKey;
use hickory_proto::{
    op::ResponseCode,
    rr::{Name, RecordType},
};

const CERT_ZONE: &str = "_certzone.example.test.";

fn transfer_key(scratch: &Scratch) -> TsigKey {
    let key = TsigKey::generate(
        Name::from_ascii("transfer.").unwrap(),
        certzone::tsig::Algorithm::HmacSha256,
    );
    scratch.write("transfer.key", &key.to_key_block());
    key
}

/// A master publishing the certificate zone for one worker key, NOTIFYing `notify`.
fn master_extra(notify: &str) -> String {
    format!(
        "[certificate-zone]\nname = \"{CERT_ZONE}\"\nsigning-key = \"signing.pem\"\n[[certificate-zone.worker]]\nname = \"w0\"\npublic-key = \"w0.key.pub\"\n\n[transfer]\ntsig-key-file = \"transfer.key\"\nnotify = [{notify}]\n"
    )
}

fn secondary(name: &str, primary: &str) -> BindZone {
    BindZone {
        name: name.into(),
        source: Source::Secondary {
            primary: primary.parse().unwrap(),
            key: Some("transfer".into()),
        },
        transfer: Transfer::Any,
        extra: String::new(),
    }
}

/// Records in an AXFR as kdig counts them.
fn kdig_axfr(server: &str, zone: &str, key: Option<&TsigKey>) -> String {
    let (ip, port) = server.split_once(':').unwrap();
    let mut args = vec![format!("@{ip}"), "-p".into(), port.into()];
    if let Some(key) = key {
        use base64::Engine;
        let secret = base64::engine::general_purpose::STANDARD.encode(&key.secret);
        args.extend(["-y".into(), format!("hmac-sha256:transfer:{secret}")]);
    }
    args.extend(["AXFR".into(), zone.into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kdig(&args)
}

/// Every record of a transfer as kdig prints it, sorted (the closing SOA counted too, the
/// messages' TSIG records not).
fn axfr_records(server: &str, zone: &str, key: Option<&TsigKey>) -> Vec<String> {
    let out = kdig_axfr(server, zone, key);
    let mut records: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        // Each message's TSIG differs by server; the zone's records are what count.
        .filter(|fields| fields.get(3) != Some(&"TSIG"))
        .map(|fields| fields.join(" "))
        .collect();
    records.sort();
    records
}

fn axfr_count(server: &str, zone: &str, key: Option<&TsigKey>) -> usize {
    let out = kdig_axfr(server, zone, key);
    let line = out
        .lines()
        .find(|l| l.contains("Received") && l.contains("records"))
        .unwrap_or_default();
    // ";; Received 1234 B (5 messages, 100003 records)"
    line.split(", ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no record count from kdig AXFR {zone} @{server}:\n{}",
                &out[out.len().saturating_sub(500)..]
            )
        })
}

#[test]
fn bind_secondary_of_the_master_and_verify_against_it() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let key = transfer_key(&scratch);
    scratch.keygen(&["signing"], "signing.pem");
    scratch.keygen(&["worker"], "w0.key");
    let master_ip = "127.0.8.1";
    let bind_addr = "127.0.8.2:5300";
    let config = node_config(
        master_ip,
        "state",
        "",
        &master_extra(&format!("\"{bind_addr}\"")),
    );
    let master = Node::start(&scratch.write("master.toml", &config));
    let bind_dir = tempfile::tempdir().unwrap();
    let bind = Bind::start(
        bind_dir.path(),
        &BindConfig {
            ip: "127.0.8.2".into(),
            port: 5300,
            keys: vec![key.to_key_block()],
            zones: vec![
                secondary(CERT_ZONE, "127.0.8.1:5300"),
                secondary("example.test.", "127.0.8.1:5300"),
            ],
            options: String::new(),
        },
    );
    for zone in [CERT_ZONE, "example.test."] {
        bind.wait_zone(zone, Duration::from_secs(20));
        let file = bind_dir.path().join(zone_file(zone));
        wait_for(
            &format!("BIND to write {zone}"),
            Duration::from_secs(10),
            || file.exists().then_some(()),
        );
        let check = Command::new("named-checkzone")
            .args(["-i", "local", zone])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "named-checkzone accepts {zone}:\n{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    // A change on the master reaches BIND by NOTIFY (BIND's refresh timer is an hour).
    let zone = scratch.path("example.test.zone");
    let text = std::fs::read_to_string(&zone)
        .unwrap()
        .replace("2026112201 ; serial", "2026112202 ; serial");
    std::fs::write(&zone, format!("{text}notified IN A 192.0.2.55\n")).unwrap();
    master.signal("HUP");
    wait_for(
        "BIND to serve the change after NOTIFY",
        Duration::from_secs(10),
        || {
            let out = kdig(&[
                "@127.0.8.2",
                "-p",
                "5300",
                "+short",
                "notified.example.test",
                "A",
            ]);
            (out.trim() == "192.0.2.55").then_some(())
        },
    );
    // BIND's acknowledgement is TSIG-signed, and the master checked it.
    master.wait_log("NOTIFY acknowledged", Duration::from_secs(5));
    assert!(
        !master.stderr().contains("NOTIFY answer ignored"),
        "{}",
        master.stderr()
    );
    // certzone verify against the running master: AXFR with TSIG, the worker key unseals.
    let out = certzone(&[
        "verify",
        "--server",
        "127.0.8.1:5300",
        "--zone",
        CERT_ZONE,
        "--public-key",
        scratch.path("signing.pem.pub").to_str().unwrap(),
        "--tsig",
        scratch.path("transfer.key").to_str().unwrap(),
        "--worker-key",
        scratch.path("w0.key").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("fetched by axfr") && stdout.contains("unseals"),
        "{stdout}"
    );
    assert!(stdout.contains("ns1.example.test"), "{stdout}");
    drop(bind);
    master.stop();
}

#[test]
fn worker_replicates_from_a_bind_primary_after_its_notify() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let key = transfer_key(&scratch);
    let (bind_ip, worker_ip) = ("127.0.8.3", "127.0.8.4");
    let zone_text = |serial: u32, extra: &str| {
        format!(
            "$TTL 60\n@ IN SOA ns hm {serial} 3600 60 600 60\n IN NS ns\nns IN A 127.0.8.3\nwww IN A 198.51.100.1\n{extra}"
        )
    };
    let bind_dir = tempfile::tempdir().unwrap();
    let primary = BindZone {
        name: "bind.test.".into(),
        source: Source::Primary(zone_text(1, "")),
        transfer: Transfer::Key("transfer".into()),
        extra: format!(
            "notify explicit; also-notify {{ {worker_ip} port 5300 key \"transfer\"; }};"
        ),
    };
    let bind = Bind::start(
        bind_dir.path(),
        &BindConfig {
            ip: bind_ip.into(),
            port: 5300,
            keys: vec![key.to_key_block()],
            zones: vec![primary],
            // NOTIFY must come from the primary's own address, which the worker checks.
            options: format!("\tnotify-source {bind_ip};\n\ttransfer-source {bind_ip};"),
        },
    );
    let worker = format!(
        "role = \"worker\"\nstate-dir = \"state\"\n[listen]\nudp = [\"{worker_ip}:5300\"]\ntcp = [\"{worker_ip}:5300\"]\n[primary]\naddress = \"{bind_ip}:5300\"\ntsig-key-file = \"transfer.key\"\n[[secondary]]\nname = \"bind.test.\"\n"
    );
    let worker = Node::start(&scratch.write("worker.toml", &worker));
    let ask = |name: &str| {
        kdig(&["@127.0.8.4", "-p", "5300", "+short", name, "A"])
            .trim()
            .to_string()
    };
    wait_for(
        "the worker to transfer bind.test",
        Duration::from_secs(10),
        || (ask("www.bind.test") == "198.51.100.1").then_some(()),
    );
    // BIND reloads a changed file on SIGHUP and NOTIFYs its also-notify list.
    std::fs::write(
        bind_dir.path().join(zone_file("bind.test.")),
        format!(
            "$ORIGIN bind.test.\n{}",
            zone_text(2, "new IN A 198.51.100.2\n")
        ),
    )
    .unwrap();
    bind.reload();
    wait_for(
        "the worker to follow BIND's NOTIFY",
        Duration::from_secs(10),
        || (ask("new.bind.test") == "198.51.100.2").then_some(()),
    );
    // Logs are read by another thread: wait for the line rather than race it.
    worker.wait_log("NOTIFY accepted", Duration::from_secs(5));
    worker.stop();
}

#[test]
fn hundred_thousand_records_transfer_whole_in_every_direction() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let key = transfer_key(&scratch);
    let mut big =
        String::from("$TTL 300\n@ IN SOA ns hm 1 3600 60 600 60\n IN NS ns\nns IN A 127.0.8.5\n");
    for i in 0..100_000u32 {
        big.push_str(&format!(
            "h{i} IN A 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    const TOTAL: usize = 100_000 + 3 + 1; // hosts, SOA, NS, ns A, closing SOA
    scratch.write("big.test.zone", &format!("$ORIGIN big.test.\n{big}"));
    // Master (certzone) with the big zone.
    let master = "state-dir = \"m\"\n[listen]\nudp = [\"127.0.8.5:5300\"]\ntcp = [\"127.0.8.5:5300\"]\n[[zone]]\nname = \"big.test.\"\nfile = \"big.test.zone\"\n[transfer]\ntsig-key-file = \"transfer.key\"\n";
    // Debug builds parse 100,000 records slowly; release builds take about a second.
    let master = Node::start_within(
        &scratch.write("master.toml", master),
        Duration::from_secs(180),
    );
    assert_eq!(
        axfr_count("127.0.8.5:5300", "big.test.", Some(&key)),
        TOTAL,
        "master AXFR"
    );
    // certzone worker of the certzone master.
    let worker = |ip: &str, primary: &str, state: &str| {
        format!(
            "role = \"worker\"\nstate-dir = \"{state}\"\n[listen]\nudp = [\"{ip}:5300\"]\ntcp = [\"{ip}:5300\"]\n[primary]\naddress = \"{primary}\"\ntsig-key-file = \"transfer.key\"\n[[secondary]]\nname = \"big.test.\"\n[transfer]\ntsig-key-file = \"transfer.key\"\n"
        )
    };
    let w1 = Node::start(&scratch.write("w1.toml", &worker("127.0.8.6", "127.0.8.5:5300", "w1")));
    w1.wait_log("zone transferred zone=big.test.", Duration::from_secs(60));
    assert_eq!(
        axfr_count("127.0.8.6:5300", "big.test.", Some(&key)),
        TOTAL,
        "certzone master -> certzone worker"
    );
    // BIND secondary of the certzone master.
    let bind_dir = tempfile::tempdir().unwrap();
    let bind = Bind::start(
        bind_dir.path(),
        &BindConfig {
            ip: "127.0.8.7".into(),
            port: 5300,
            keys: vec![key.to_key_block()],
            zones: vec![secondary("big.test.", "127.0.8.5:5300")],
            options: String::new(),
        },
    );
    bind.wait_zone("big.test.", Duration::from_secs(60));
    assert_eq!(
        axfr_count("127.0.8.7:5300", "big.test.", None),
        TOTAL,
        "certzone master -> BIND secondary"
    );
    // certzone worker of a BIND primary (the same zone, from BIND).
    let bind_primary_dir = tempfile::tempdir().unwrap();
    let _primary = Bind::start(
        bind_primary_dir.path(),
        &BindConfig {
            ip: "127.0.8.8".into(),
            port: 5300,
            keys: vec![key.to_key_block()],
            zones: vec![BindZone {
                name: "big.test.".into(),
                source: Source::Primary(big),
                transfer: Transfer::Key("transfer".into()),
                extra: String::new(),
            }],
            options: String::new(),
        },
    );
    let w2 = Node::start(&scratch.write("w2.toml", &worker("127.0.8.9", "127.0.8.8:5300", "w2")));
    w2.wait_log("zone transferred zone=big.test.", Duration::from_secs(60));
    assert_eq!(
        axfr_count("127.0.8.9:5300", "big.test.", Some(&key)),
        TOTAL,
        "BIND primary -> certzone worker"
    );
    // The same records, byte for byte as kdig decodes them, from certzone and from BIND
    // serving the same file: the transfer writer's name compression loses nothing.
    let ours = axfr_records("127.0.8.5:5300", "big.test.", Some(&key));
    let bind_view = axfr_records("127.0.8.8:5300", "big.test.", Some(&key));
    assert_eq!(ours.len(), TOTAL);
    assert!(
        ours == bind_view,
        "certzone's AXFR differs from BIND's of the same file"
    );
    // Over UDP a transfer is refused (streams only, with TSIG), IXFR as much as AXFR.
    let socket = std::net::UdpSocket::bind("127.0.8.5:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    for rtype in [RecordType::AXFR, RecordType::IXFR] {
        socket
            .send_to(&client::query(7, "big.test.", rtype), "127.0.8.5:5300")
            .unwrap();
        let mut buf = vec![0; 65535];
        let (len, _) = socket.recv_from(&mut buf).expect("an answer over UDP");
        let answer = client::parse(&buf[..len]);
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::Refused,
            "{rtype} over UDP"
        );
        assert!(answer.answers.is_empty(), "{rtype} over UDP gave records");
    }
    for node in [w2, w1, master] {
        node.stop();
    }
}
