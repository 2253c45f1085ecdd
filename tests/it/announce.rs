//! Announcing the certificate: after `cluster up` every node serves the master's
//! `_dns` SVCB, TLSA 3 1 1 and CAA records; the key each node serves over DoT is in its
//! TLSA; renewals under probing every 50 ms never serve a key whose TLSA a client could
//! lack, and the old TLSA goes within one refresh. CAA for another account refuses the
//! order. Real Pebble, real nodes, kdig. Addresses 127.0.20.x and 127.0.21.x.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::{
    self, Node, Scratch, certzone,
    client::{self, DotClient},
    kdig,
    pebble::{Pebble, PebbleOptions},
    wait_for,
};
use hickory_proto::rr::{RData, RecordType};

const IPS: [&str; 3] = ["127.0.20.1", "127.0.20.2", "127.0.20.3"];
const NAME: &str = "ns1.example.test";
/// The published records' TTL in the test: the least time a new TLSA is out first.
const TTL: Duration = Duration::from_secs(2);
/// The certificate zone's SOA refresh: the bound on the old TLSA's withdrawal.
const REFRESH: Duration = Duration::from_secs(5);
const ZERO_TLSA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The example zone with hand-written records at the names the master publishes at.
fn zone(dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(common::repo().join("zones/example.test.zone")).unwrap();
    text.push_str(&format!("_8530._tcp.ns1 IN TLSA 3 1 1 {ZERO_TLSA}\n"));
    text.push_str("_dns.ns1 IN SVCB 1 ns1.example.test. alpn=dot\n");
    let path = dir.join("example.test.zone");
    std::fs::write(&path, text).unwrap();
    path
}

fn cluster_file(dir: &Path, pebble: &Pebble) -> PathBuf {
    let text = format!(
        r#"[cluster]
state-dir = "state"
domain = "example.test."
zone-file = "example.test.zone"
names = ["{NAME}"]
refresh-secs = {refresh}
retry-secs = 1
id = "announce-test"

[ports]
dns = 5300
tls = 8530
https = 4430

[ca]
kind = "acme"
directory = "{directory}"
ca-roots = ["{https_ca}"]
propagation-timeout-secs = 10
retry-base-secs = 1
max-orders-per-hour = 50

[publish]
svcb = true
tlsa = true
caa = true
ttl = {ttl}
caa-issuer = "pebble.test"

[[node]]
name = "master"
role = "master"
address = "{m}"

[[node]]
name = "worker1"
role = "worker"
address = "{w1}"

[[node]]
name = "worker2"
role = "worker"
address = "{w2}"
"#,
        refresh = REFRESH.as_secs(),
        ttl = TTL.as_secs(),
        directory = pebble.directory(),
        https_ca = pebble.https_ca().display(),
        m = IPS[0],
        w1 = IPS[1],
        w2 = IPS[2],
    );
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn up(config: &Path) -> Node {
    let args = ["cluster", "up", "--config"].map(std::ffi::OsStr::new);
    let mut args = args.to_vec();
    args.push(config.as_os_str());
    let mut node = Node::spawn_args(&args, config);
    node.wait_stdout_line("cluster ready", Duration::from_secs(90));
    node
}

fn dig_short(ip: &str, name: &str, rtype: &str) -> String {
    kdig(&[&format!("@{ip}"), "-p", "5300", "+short", name, rtype])
}

/// TLSA 3 1 1 data kdig shows, lower-case hex.
fn tlsa_hashes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("3 1 1 "))
        .map(|hex| hex.replace(' ', "").to_lowercase())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SPKI SHA-256 of the leaf `ip` presents over DoT, verified against `root`.
fn served_key(ip: &str, root: &Path) -> Option<String> {
    let address: SocketAddr = format!("{ip}:8530").parse().unwrap();
    let client = DotClient::connect(address, root, NAME).ok()?;
    let leaf = rustls_pki_types::CertificateDer::from(client.peer_leaf());
    Some(hex(&certzone::tls::spki_sha256(&leaf).unwrap()))
}

/// The TLSA 3 1 1 data `ip` answers at `_8530._tcp.<NAME>`, over UDP.
fn tlsa_now(ip: &str) -> Option<BTreeSet<String>> {
    let socket = UdpSocket::bind(format!("{ip}:0")).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let query = client::query(7, &format!("_8530._tcp.{NAME}."), RecordType::TLSA);
    socket.send_to(&query, format!("{ip}:5300")).ok()?;
    let mut buf = [0; 1500];
    let len = socket.recv(&mut buf).ok()?;
    let answer = client::parse(&buf[..len]);
    Some(
        answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(hex(&t.cert_data)),
                _ => None,
            })
            .collect(),
    )
}

/// What the prober saw: TLSA sets (when the answer arrived) and served keys (when the
/// handshake started), by node.
#[derive(Default)]
struct Seen {
    tlsa: Vec<(Instant, usize, BTreeSet<String>)>,
    keys: Vec<(Instant, usize, String)>,
}

/// Asks every node for its TLSA and its DoT key every 50 ms until `stop`.
fn probe(root: PathBuf, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        for (node, ip) in IPS.iter().enumerate() {
            let started = Instant::now();
            if let Some(key) = served_key(ip, &root) {
                seen.lock().unwrap().keys.push((started, node, key));
            }
            if let Some(set) = tlsa_now(ip) {
                seen.lock().unwrap().tlsa.push((Instant::now(), node, set));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every served key was in every TLSA set answered during the TTL before (a client could
/// hold any of them), and a key new during the run was first answered at least one TTL
/// before that node served it.
fn check_rollover(seen: &Seen, initial: &str) {
    assert!(
        seen.keys.len() > 100,
        "probed often: {} keys",
        seen.keys.len()
    );
    let mut first_tlsa: BTreeMap<(usize, &str), Instant> = BTreeMap::new();
    for (at, node, set) in &seen.tlsa {
        for key in set {
            first_tlsa.entry((*node, key.as_str())).or_insert(*at);
        }
    }
    let mut new_keys_checked = 0;
    for (at, node, key) in &seen.keys {
        for (tlsa_at, tlsa_node, set) in &seen.tlsa {
            if *tlsa_at <= *at && *tlsa_at + TTL >= *at {
                assert!(
                    set.contains(key),
                    "node {} served {key} while node {tlsa_node}'s TLSA, answered {:?} before, \
                     lacked it: {set:?}",
                    IPS[*node],
                    *at - *tlsa_at
                );
            }
        }
        if key != initial {
            let first = first_tlsa
                .get(&(*node, key.as_str()))
                .unwrap_or_else(|| panic!("{} served {key} never seen in its TLSA", IPS[*node]));
            assert!(
                *first + TTL <= *at,
                "{} served {key} only {:?} after its TLSA was first answered",
                IPS[*node],
                at.saturating_duration_since(*first)
            );
            new_keys_checked += 1;
        }
    }
    assert!(new_keys_checked > 0, "the renewed keys were probed");
}

/// Forces a renewal and waits until every node serves a key other than `before`; then
/// until `before`'s TLSA is gone from every node, which must take at most one refresh.
fn renew_and_withdraw(master_config: &Path, root: &Path, before: &str) -> String {
    let out = certzone(&["renew", "--config", master_config.to_str().unwrap()]);
    assert!(out.status.success(), "certzone renew: {out:?}");
    let new = wait_for(
        "every node to serve the renewed key",
        Duration::from_secs(60),
        || {
            let keys: Vec<Option<String>> = IPS.iter().map(|ip| served_key(ip, root)).collect();
            let first = keys[0].clone().filter(|k| k != before)?;
            keys.iter()
                .all(|k| k.as_ref() == Some(&first))
                .then_some(first)
        },
    );
    let all_serving = Instant::now();
    wait_for(
        "the old TLSA to be withdrawn from every node",
        REFRESH,
        || {
            IPS.iter()
                .all(|ip| tlsa_now(ip).is_some_and(|set| !set.contains(before)))
                .then_some(())
        },
    );
    println!(
        "old TLSA gone from every node {:?} after all of them served the new key",
        all_serving.elapsed()
    );
    new
}

#[test]
fn cluster_publishes_svcb_tlsa_caa_and_rolls_tlsa_ahead_of_renewals() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let pebble = Pebble::start(
        "127.0.20.101",
        format!("{}:5300", IPS[0]).parse().unwrap(),
        dir,
        &PebbleOptions::default(),
    );
    zone(dir);
    let config = cluster_file(dir, &pebble);
    let started = Instant::now();
    let cluster = up(&config);
    let root = pebble.root();
    let master_log = || std::fs::read_to_string(dir.join("state/nodes/master/node.log")).unwrap();

    // What a user checks with kdig, on every node.
    let account: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("state/nodes/master/state/acme/account.json")).unwrap(),
    )
    .unwrap();
    let account = account["credentials"]["id"].as_str().unwrap().to_string();
    let initial = served_key(IPS[0], &root).expect("the master serves over DoT");
    for ip in IPS {
        let svcb = wait_for(
            "the published SVCB on every node",
            Duration::from_secs(10),
            || {
                let svcb = dig_short(ip, &format!("_dns.{NAME}"), "SVCB");
                svcb.contains("alpn=h2").then_some(svcb)
            },
        );
        assert!(
            svcb.contains("1 ns1.example.test. alpn=dot port=8530"),
            "{ip}: {svcb}"
        );
        assert!(
            svcb.contains("2 ns1.example.test. alpn=h2 port=4430")
                && svcb.contains("/dns-query{?dns}"),
            "{ip}: {svcb}"
        );
        assert_eq!(
            svcb.lines().count(),
            2,
            "the hand-written SVCB is replaced: {svcb}"
        );
        for port in [8530, 4430] {
            // Workers transfer each zone at most once a second: the next key's TLSA, made
            // when the first certificate was installed, may reach them just after it.
            let tlsa = wait_for(
                "the served key's and the next key's TLSA",
                Duration::from_secs(5),
                || {
                    let tlsa = tlsa_hashes(&dig_short(ip, &format!("_{port}._tcp.{NAME}"), "TLSA"));
                    (tlsa.len() == 2).then_some(tlsa)
                },
            );
            let served = served_key(ip, &root).unwrap();
            assert!(
                tlsa.contains(&served),
                "{ip} serves a key in its TLSA at port {port}: {tlsa:?}"
            );
            assert!(
                !tlsa.contains(ZERO_TLSA),
                "the hand-written TLSA is replaced: {tlsa:?}"
            );
        }
        let caa = dig_short(ip, NAME, "CAA");
        assert_eq!(
            caa.trim(),
            format!("0 issue \"pebble.test; accounturi={account}; validationmethods=dns-01\""),
            "{ip}"
        );
    }
    let log = master_log();
    assert!(
        log.contains("are replaced by the ones this node publishes"),
        "the master warns about the hand-written records:\n{log}"
    );
    println!(
        "cluster up and every record checked in {:?}",
        started.elapsed()
    );

    // Two renewals back to back, probed every 50 ms: the second must wait for the TLSA of
    // the key made when the first was installed.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (root, seen, stop) = (root.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || probe(root, seen, stop))
    };
    std::thread::sleep(Duration::from_millis(500));
    let master_config = dir.join("state/nodes/master/node.toml");
    let renewals = Instant::now();
    let second = renew_and_withdraw(&master_config, &root, &initial);
    let third = renew_and_withdraw(&master_config, &root, &second);
    println!("two renewals and withdrawals in {:?}", renewals.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap();
    let seen = seen.lock().unwrap();
    println!(
        "probed {} handshakes and {} TLSA answers",
        seen.keys.len(),
        seen.tlsa.len()
    );
    check_rollover(&seen, &initial);
    assert!(
        seen.keys.iter().any(|(_, _, k)| *k == third),
        "the last key was probed"
    );
    let log = master_log();
    assert!(
        log.contains("renewal waits until the next key's TLSA has been served for one TTL"),
        "the second renewal waited for its key's TLSA:\n{log}"
    );
    assert!(
        std::fs::metadata(dir.join("state/nodes/master/state/announce/next-key.pem"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap()
            == 0o600,
        "the next key is kept 0600"
    );
    drop(cluster);
    pebble.stop();
}

/// A master alone with Pebble; `zone_extra` is appended to the example zone.
fn caa_master(scratch: &Scratch, pebble: &Pebble, zone_extra: &str) -> PathBuf {
    let mut zone = std::fs::read_to_string(common::repo().join("zones/example.test.zone")).unwrap();
    zone.push_str(zone_extra);
    scratch.write("example.test.zone", &zone);
    let config = format!(
        r#"state-dir = "state"

[listen]
udp = ["127.0.21.1:5300"]
tcp = ["127.0.21.1:5300"]
tls = ["127.0.21.1:8530"]

[tls]
names = ["{NAME}"]
source = "acme"

[acme]
directory = "{directory}"
ca-roots = ["{https_ca}"]
retry-base-secs = 1
max-orders-per-hour = 50
propagation-timeout-secs = 5

[publish]
caa-issuer = "pebble.test"

[[zone]]
name = "example.test."
file = "example.test.zone"
"#,
        directory = pebble.directory(),
        https_ca = pebble.https_ca().display(),
    );
    scratch.write("master.toml", &config)
}

#[test]
fn caa_for_another_account_refuses_the_order_until_it_is_gone() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let pebble = Pebble::start(
        "127.0.21.101",
        "127.0.21.1:5300".parse().unwrap(),
        scratch.dir.path(),
        &PebbleOptions::default(),
    );
    let other = "https://127.0.21.101:14000/my-account/999999";
    let record = format!("ns1 IN CAA 0 issue \"pebble.test; accounturi={other}\"\n");
    let config = caa_master(&scratch, &pebble, &record);
    let node = Node::start(&config);
    node.wait_log("refusing to order", Duration::from_secs(30));
    let log = node.stderr();
    assert!(
        log.contains(&format!(
            "`ns1.example.test. CAA 0 issue \"pebble.test; accounturi={other}\"` is for another ACME account"
        )),
        "the refusal names the record:\n{log}"
    );
    assert!(
        !log.contains("ACME order created"),
        "no order is placed:\n{log}"
    );

    // The operator removes the record and names this CA at the apex (the example zone's
    // `letsencrypt.org` would refuse it too): the next attempt orders and Pebble issues.
    let zone = std::fs::read_to_string(common::repo().join("zones/example.test.zone")).unwrap();
    let zone = zone.replace(
        "CAA  0 issue \"letsencrypt.org\"",
        "CAA  0 issue \"pebble.test\"",
    );
    assert!(
        zone.contains("pebble.test"),
        "the example zone's CAA line is as expected"
    );
    scratch.write("example.test.zone", &zone);
    node.signal("HUP");
    node.wait_log("certificate installed", Duration::from_secs(60));
    node.stop();
    pebble.stop();
}
