//! A master restarted with nothing changed serves what it served before: the same zone
//! serial, the same bundle version, no NOTIFY, so a BIND secondary transfers nothing; and a
//! zone edited without a new serial is served and announced with one. Addresses 127.0.19.1x.

use std::time::Duration;

use crate::common::{
    self, Node, Scratch,
    bind::{Bind, BindConfig, BindZone, Source, Transfer},
    dig, node_config, wait_for,
};
use certzone::tsig::TsigKey;
use hickory_proto::rr::Name;

const CERT_ZONE: &str = "_certzone.example.test.";
const MASTER: &str = "127.0.19.11";
const BIND_IP: &str = "127.0.19.12";

fn master(scratch: &Scratch) -> std::path::PathBuf {
    let key = TsigKey::generate(
        Name::from_ascii("transfer.").unwrap(),
        certzone::tsig::Algorithm::HmacSha256,
    );
    scratch.write("transfer.key", &key.to_key_block());
    scratch.keygen(&["signing"], "signing.pem");
    scratch.keygen(&["worker"], "w0.key");
    let extra = format!(
        "[certificate-zone]\nname = \"{CERT_ZONE}\"\nsigning-key = \"signing.pem\"\n\
         [[certificate-zone.worker]]\nname = \"w0\"\npublic-key = \"w0.key.pub\"\n\n\
         [transfer]\ntsig-key-file = \"transfer.key\"\nnotify = [\"{BIND_IP}:5300\"]\n"
    );
    scratch.write("master.toml", &node_config(MASTER, "state", "", &extra))
}

/// BIND as the master's secondary for both zones, checking the master's SOA every second
/// or two whatever the SOA's refresh says: a changed serial would be transferred at once.
fn bind_secondary(scratch: &Scratch, dir: &std::path::Path) -> Bind {
    let key = std::fs::read_to_string(scratch.path("transfer.key")).unwrap();
    let zone = |name: &str| BindZone {
        name: name.into(),
        source: Source::Secondary {
            primary: format!("{MASTER}:5300").parse().unwrap(),
            key: Some("transfer".into()),
        },
        transfer: Transfer::Any,
        extra: "min-refresh-time 1; max-refresh-time 2; min-retry-time 1; max-retry-time 2;".into(),
    };
    Bind::start(
        dir,
        &BindConfig {
            ip: BIND_IP.into(),
            port: 5300,
            keys: vec![key],
            zones: vec![zone(CERT_ZONE), zone("example.test.")],
            options: String::new(),
        },
    )
}

fn serial(server: &str, zone: &str) -> String {
    let answer = dig(&[&format!("@{server}"), "-p", "5300", zone, "SOA", "+short"]);
    answer
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no SOA for {zone} from {server}: {answer}"))
        .to_string()
}

fn transfers(bind: &Bind) -> usize {
    bind.log().matches("Transfer completed").count()
}

#[test]
fn five_restarts_change_nothing_a_secondary_sees() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let config = master(&scratch);
    let node = Node::start(&config);
    let bind_dir = tempfile::tempdir().unwrap();
    let bind = bind_secondary(&scratch, bind_dir.path());
    for zone in [CERT_ZONE, "example.test."] {
        bind.wait_zone(zone, Duration::from_secs(20));
    }
    let before = (serial(MASTER, "example.test."), serial(MASTER, CERT_ZONE));
    let version = std::fs::read_to_string(scratch.path("state/bundle/version")).unwrap();
    wait_for("BIND's two transfers", Duration::from_secs(10), || {
        (transfers(&bind) == 2).then_some(())
    });
    node.stop();
    for round in 1..=5 {
        let node = Node::start(&config);
        let now = (serial(MASTER, "example.test."), serial(MASTER, CERT_ZONE));
        assert_eq!(now, before, "restart {round}: the same serials");
        assert!(
            node.stderr()
                .contains("certificate zone served as before the restart"),
            "restart {round}: the kept bundle\n{}",
            node.stderr()
        );
        assert!(!node.stderr().contains("certificate zone published"));
        node.stop();
    }
    let node = Node::start(&config);
    let after = std::fs::read_to_string(scratch.path("state/bundle/version")).unwrap();
    assert_eq!(after, version, "the same bundle version");
    // BIND checks the SOA every 1-2 s: give it two checks after the last restart.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        (serial(BIND_IP, "example.test."), serial(BIND_IP, CERT_ZONE)),
        before
    );
    assert_eq!(transfers(&bind), 2, "no new transfer:\n{}", bind.log());

    // An edit without a new serial: served with one, announced, transferred.
    let zone = scratch.path("example.test.zone");
    let text = std::fs::read_to_string(&zone).unwrap();
    std::fs::write(&zone, format!("{text}edited IN A 192.0.2.77\n")).unwrap();
    node.signal("HUP");
    node.wait_log(
        "zone file changed but its SOA serial did not",
        Duration::from_secs(5),
    );
    let expected = (before.0.parse::<u32>().unwrap() + 1).to_string();
    assert_eq!(serial(MASTER, "example.test."), expected);
    wait_for("BIND to serve the edit", Duration::from_secs(10), || {
        let out = dig(&[
            &format!("@{BIND_IP}"),
            "-p",
            "5300",
            "+short",
            "edited.example.test",
            "A",
        ]);
        (out.trim() == "192.0.2.77").then_some(())
    });
    assert!(
        node.stderr()
            .contains(&format!("file_serial={} serial={expected}", before.0)),
        "the warning names the serials:\n{}",
        node.stderr()
    );
    node.stop();
}
