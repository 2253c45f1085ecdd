//! One node from one TOML file, checked with kdig, dig and clients
//! that hold a connection, against the real binary. Each test has its own 127.0.2.x address.

use std::{net::SocketAddr, path::Path, time::Duration};

use crate::common::{self, Node, Scratch, client, dig, kdig, node_config, wait_for};
use hickory_proto::{op::ResponseCode, rr::RecordType};

/// The example zone's basic questions and what kdig +short prints for each (empty for none).
const CASES: &[(&str, &str, &str)] = &[
    ("www.example.test", "A", "192.0.2.10"),
    ("www.example.test", "AAAA", "2001:db8::10"),
    (
        "txt.example.test",
        "TXT",
        "\"hello from certzone\" \"second string\"",
    ),
    (
        "cert.example.test",
        "CERT",
        "1 0 0 MIIBszCCAVmgAwIBAgIUBvK4",
    ),
];

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

#[test]
fn kdig_and_dig_get_answers_over_udp_tcp_tls_and_https() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.2.1";
    let config = scratch.write("node.toml", &node_config(ip, "state", "", ""));
    let node = Node::start(&config);
    let ca = scratch.local_ca("state");
    let ca_arg = format!("+tls-ca={}", ca.display());
    let server = format!("@{ip}");
    let transports: &[(&str, &[&str])] = &[
        ("udp", &["-p", "5300", "+notcp"]),
        ("tcp", &["-p", "5300", "+tcp"]),
        (
            "tls",
            &[
                "-p",
                "8530",
                "+tls",
                &ca_arg,
                "+tls-hostname=ns1.example.test",
            ],
        ),
        (
            "https post",
            &[
                "-p",
                "4430",
                "+https",
                &ca_arg,
                "+tls-hostname=ns1.example.test",
            ],
        ),
        (
            "https get",
            &[
                "-p",
                "4430",
                "+https-get",
                &ca_arg,
                "+tls-hostname=ns1.example.test",
            ],
        ),
    ];
    for (transport, args) in transports {
        for (name, rtype, expected) in CASES {
            let mut all = vec![server.as_str(), "+short"];
            all.extend_from_slice(args);
            all.extend_from_slice(&[name, rtype]);
            let out = kdig(&all);
            assert_eq!(
                out.trim(),
                *expected,
                "kdig {transport} {name} {rtype}: {out}"
            );
        }
        let mut nodata = vec![server.as_str()];
        nodata.extend_from_slice(args);
        nodata.extend_from_slice(&["www.example.test", "MX"]);
        let out = kdig(&nodata);
        assert!(
            out.contains("status: NOERROR"),
            "kdig {transport} NODATA: {out}"
        );
        assert!(
            out.contains("ANSWER: 0") && out.contains("AUTHORITY: 1"),
            "NODATA with SOA: {out}"
        );
        assert!(
            out.contains("SOA"),
            "kdig {transport} NODATA carries the SOA: {out}"
        );
        let mut nx = vec![server.as_str()];
        nx.extend_from_slice(args);
        nx.extend_from_slice(&["nope.example.test", "A"]);
        let out = kdig(&nx);
        assert!(
            out.contains("status: NXDOMAIN") && out.contains("SOA"),
            "kdig {transport} NXDOMAIN: {out}"
        );
        // A TLS failure must not be hidden: kdig says so on stderr.
        assert!(!out.contains("WARNING"), "kdig {transport}: {out}");
    }
    let dig_transports: &[(&str, &[&str])] = &[
        ("udp", &["-p", "5300"]),
        ("tcp", &["-p", "5300", "+tcp"]),
        (
            "tls",
            &[
                "-p",
                "8530",
                "+tls",
                &ca_arg,
                "+tls-hostname=ns1.example.test",
            ],
        ),
        (
            "https post",
            &[
                "-p",
                "4430",
                "+https",
                &ca_arg,
                "+tls-hostname=ns1.example.test",
            ],
        ),
        (
            "https get",
            &[
                "-p",
                "4430",
                "+https-get",
                &ca_arg,
                "+tls-hostname=ns1.example.test",
            ],
        ),
    ];
    for (transport, args) in dig_transports {
        for (name, rtype, expected) in CASES.iter().take(3) {
            let mut all = vec![server.as_str(), "+short"];
            all.extend_from_slice(args);
            all.extend_from_slice(&[name, rtype]);
            let out = dig(&all);
            assert_eq!(
                out.trim(),
                *expected,
                "dig {transport} {name} {rtype}: {out}"
            );
        }
        let mut nx = vec![server.as_str()];
        nx.extend_from_slice(args);
        nx.extend_from_slice(&["nope.example.test", "A"]);
        let out = dig(&nx);
        assert!(
            out.contains("status: NXDOMAIN"),
            "dig {transport} NXDOMAIN: {out}"
        );
    }
    node.stop();
}

#[test]
fn kdig_refuses_a_certificate_for_another_name() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.2.2";
    let config = scratch.write("node.toml", &node_config(ip, "state", "", ""));
    let _node = Node::start(&config);
    let ca_arg = format!("+tls-ca={}", scratch.local_ca("state").display());
    let out = kdig(&[
        &format!("@{ip}"),
        "-p",
        "8530",
        "+tls",
        &ca_arg,
        "+tls-hostname=other.example",
        "www.example.test",
    ]);
    assert!(!out.contains("192.0.2.10"), "the name is verified: {out}");
}

/// Twenty sequential queries on one connection: the Nagle/delayed-ACK pattern makes each
/// wait ~40 ms. The bound is generous (debug build, shared CI cores), not a speed test.
#[test]
fn no_nagle_stalls_on_tcp_dot_or_doh() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.2.3";
    let config = scratch.write("node.toml", &node_config(ip, "state", "", ""));
    let node = Node::start(&config);
    let ca = scratch.local_ca("state");
    let check = |transport: &str, times: Vec<Duration>| {
        let mut sorted = times.clone();
        sorted.sort();
        let median = sorted[sorted.len() / 2];
        let stalls = times
            .iter()
            .filter(|t| **t >= Duration::from_millis(35))
            .count();
        assert!(
            median < Duration::from_millis(15) && stalls <= 2,
            "{transport}: per-query times {times:?}"
        );
    };
    let mut tcp = client::TcpClient::connect(addr(ip, 5300));
    tcp.ask("www.example.test", RecordType::A).unwrap();
    check(
        "tcp",
        client::time_each(20, || {
            assert_eq!(
                tcp.ask("www.example.test", RecordType::A)
                    .unwrap()
                    .answers
                    .len(),
                1
            )
        }),
    );
    let mut dot = client::DotClient::connect(addr(ip, 8530), &ca, "ns1.example.test").unwrap();
    dot.ask("www.example.test", RecordType::A).unwrap();
    check(
        "dot",
        client::time_each(20, || {
            assert_eq!(
                dot.ask("www.example.test", RecordType::A)
                    .unwrap()
                    .answers
                    .len(),
                1
            )
        }),
    );
    let mut doh = client::DohClient::connect(addr(ip, 4430), &ca, "ns1.example.test");
    doh.ask("www.example.test", RecordType::A, true);
    for post in [true, false] {
        let times = client::time_each(20, || {
            let (status, answer) = doh.ask("www.example.test", RecordType::A, post);
            assert_eq!(status, 200);
            assert_eq!(answer.unwrap().answers.len(), 1);
        });
        check(if post { "doh post" } else { "doh get" }, times);
    }
    node.stop();
}

#[test]
fn doh_answers_requests_whatever_their_authority() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.2.4";
    let config = scratch.write("node.toml", &node_config(ip, "state", "", ""));
    let _node = Node::start(&config);
    let ca = scratch.local_ca("state");
    // The client's :authority is the address, not a configured name: still answered.
    let mut doh = client::DohClient::connect(addr(ip, 4430), &ca, "ns1.example.test");
    let (status, answer) = doh.ask("www.example.test", RecordType::A, false);
    assert_eq!(status, 200);
    assert_eq!(
        answer.unwrap().metadata.response_code,
        ResponseCode::NoError
    );
}

/// Test certificates made here, so a swap can be checked by fingerprint.
fn test_ca(dir: &Path) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("test-ca.pem"), cert.pem()).unwrap();
    (cert, key)
}

fn test_leaf(dir: &Path, ca: &(rcgen::Certificate, rcgen::KeyPair)) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["ns1.example.test".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
    // Written the way an operator's renewal tool would: new files, then SIGHUP.
    std::fs::write(dir.join("tls.key.new"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls.pem.new"), cert.pem()).unwrap();
    std::fs::rename(dir.join("tls.key.new"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.pem.new"), dir.join("tls.pem")).unwrap();
    cert.der().to_vec()
}

const FILES_TLS: &str = "names = [\"ns1.example.test\"]\nsource = \"files\"\ncert-file = \"tls.pem\"\nkey-file = \"tls.key\"";

#[test]
fn certificate_swap_keeps_open_connections_and_new_handshakes_see_it() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.2.5";
    let ca = test_ca(scratch.dir.path());
    let first = test_leaf(scratch.dir.path(), &ca);
    let config = scratch.write("node.toml", &node_config(ip, "state", FILES_TLS, ""));
    let node = Node::start(&config);
    let ca_pem = scratch.path("test-ca.pem");
    let mut held = client::DotClient::connect(addr(ip, 8530), &ca_pem, "ns1.example.test").unwrap();
    assert_eq!(held.peer_leaf(), first);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let answer = held
                    .ask("www.example.test", RecordType::A)
                    .expect("query on the held connection");
                assert_eq!(answer.answers.len(), 1);
                answered += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (held, answered)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let second = test_leaf(scratch.dir.path(), &ca);
    node.signal("HUP");
    wait_for(
        "a new DoT handshake to see the new certificate",
        Duration::from_secs(10),
        || {
            let fresh =
                client::DotClient::connect(addr(ip, 8530), &ca_pem, "ns1.example.test").ok()?;
            (fresh.peer_leaf() == second).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut held, answered) = looping
        .join()
        .expect("no query failed on the held connection");
    assert!(answered > 20, "the loop kept querying ({answered})");
    assert_eq!(
        held.peer_leaf(),
        first,
        "the held connection keeps its certificate"
    );
    assert_eq!(
        held.ask("www.example.test", RecordType::A)
            .unwrap()
            .answers
            .len(),
        1
    );
    // kdig, a new client, verifies the new chain too.
    let out = kdig(&[
        &format!("@{ip}"),
        "-p",
        "8530",
        "+tls",
        &format!("+tls-ca={}", ca_pem.display()),
        "+tls-hostname=ns1.example.test",
        "+short",
        "www.example.test",
    ]);
    assert_eq!(out.trim(), "192.0.2.10", "{out}");
    node.stop();
}

#[test]
fn broken_zone_on_sighup_keeps_old_answers_and_good_change_is_served() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.2.6";
    let config = scratch.write("node.toml", &node_config(ip, "state", "", ""));
    let node = Node::start(&config);
    let zone = scratch.path("example.test.zone");
    let original = std::fs::read_to_string(&zone).unwrap();
    let ask = |name: &str| {
        kdig(&[&format!("@{ip}"), "-p", "5300", "+short", name, "A"])
            .trim()
            .to_string()
    };
    std::fs::write(&zone, format!("{original}new IN A 192.0.2.77\n")).unwrap();
    node.signal("HUP");
    wait_for(
        "the added record after SIGHUP",
        Duration::from_secs(10),
        || (ask("new.example.test") == "192.0.2.77").then_some(()),
    );
    let broken = original.replace("www     IN A    192.0.2.10", "www     IN A    192.0.2.300");
    let line = broken
        .lines()
        .position(|l| l.contains("192.0.2.300"))
        .unwrap()
        + 1;
    std::fs::write(&zone, broken).unwrap();
    node.signal("HUP");
    node.wait_log("zone reload failed", Duration::from_secs(10));
    let log = node.stderr();
    assert!(
        log.contains(&format!("example.test.zone line {line}")),
        "the error names file and line {line}: {log}"
    );
    assert_eq!(
        ask("www.example.test"),
        "192.0.2.10",
        "old answers are kept"
    );
    assert_eq!(
        ask("new.example.test"),
        "192.0.2.77",
        "the last good contents stay"
    );
    node.stop();
}

#[test]
fn forwarding_over_dot_and_refused_without_forward() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    // The upstream: a second node serving other.test over DoT with its own local CA.
    scratch.write(
        "other.test.zone",
        "$ORIGIN other.test.\n$TTL 60\n@ IN SOA ns hm 1 60 60 600 60\n IN NS ns\nns IN A 127.0.0.1\nwww IN A 198.51.100.7\n",
    );
    let upstream_config = "state-dir = \"up-state\"\n[listen]\nudp = [\"127.0.2.8:5300\"]\ntls = [\"127.0.2.8:8530\"]\n[tls]\nnames = [\"dns.other.test\"]\n[[zone]]\nname = \"other.test\"\nfile = \"other.test.zone\"\n";
    let upstream = Node::start(&scratch.write("upstream.toml", upstream_config));
    let forward = "[forward]\ntimeout-ms = 2000\n[[forward.upstream]]\naddress = \"127.0.2.8:8530\"\nprotocol = \"tls\"\ntls-name = \"dns.other.test\"\nca-file = \"up-state/local-ca/ca.pem\"\n";
    let forwarder =
        Node::start(&scratch.write("fwd.toml", &node_config("127.0.2.7", "state", "", forward)));
    let plain =
        Node::start(&scratch.write("plain.toml", &node_config("127.0.2.9", "state2", "", "")));
    for transport in ["+notcp", "+tcp"] {
        let out = kdig(&[
            "@127.0.2.7",
            "-p",
            "5300",
            transport,
            "+short",
            "www.other.test",
            "A",
        ]);
        assert_eq!(
            out.trim(),
            "198.51.100.7",
            "forwarded over DoT ({transport}): {out}"
        );
    }
    let out = kdig(&[
        "@127.0.2.7",
        "-p",
        "5300",
        "+short",
        "www.example.test",
        "A",
    ]);
    assert_eq!(
        out.trim(),
        "192.0.2.10",
        "own zone still answered locally: {out}"
    );
    let out = kdig(&["@127.0.2.9", "-p", "5300", "www.other.test", "A"]);
    assert!(out.contains("status: REFUSED"), "without [forward]: {out}");
    // The upstream's name is verified: a wrong tls-name gets no answer (SERVFAIL).
    let wrong = forward.replace(
        "tls-name = \"dns.other.test\"",
        "tls-name = \"wrong.other.test\"",
    );
    let bad =
        Node::start(&scratch.write("bad.toml", &node_config("127.0.2.10", "state3", "", &wrong)));
    let out = kdig(&["@127.0.2.10", "-p", "5300", "www.other.test", "A"]);
    assert!(
        out.contains("status: SERVFAIL"),
        "unverified upstream is not used: {out}"
    );
    for node in [forwarder, plain, bad, upstream] {
        node.stop();
    }
}

#[test]
fn restart_keeps_the_local_ca() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.2.11";
    let config = scratch.write("node.toml", &node_config(ip, "state", "", ""));
    let node = Node::start(&config);
    let ca = scratch.local_ca("state");
    let saved = scratch.path("trusted-before-restart.pem");
    std::fs::copy(&ca, &saved).unwrap();
    node.stop();
    let node = Node::start(&config);
    assert_eq!(
        std::fs::read(&ca).unwrap(),
        std::fs::read(&saved).unwrap(),
        "same CA file"
    );
    let out = kdig(&[
        &format!("@{ip}"),
        "-p",
        "8530",
        "+tls",
        &format!("+tls-ca={}", saved.display()),
        "+tls-hostname=ns1.example.test",
        "+short",
        "www.example.test",
    ]);
    assert_eq!(
        out.trim(),
        "192.0.2.10",
        "clients that trusted the CA before still verify: {out}"
    );
    node.stop();
}
