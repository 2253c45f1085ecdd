//! Replication on a hostile path: a real foreign primary (BIND 9) and a scripted
//! one (`common::responder`) in the master's place, a worker that must refuse what they
//! serve, name the failed check, count it, keep its certificate and never fall back to
//! unsigned queries; forged SOA timers; rollback after the cache is lost; floors for a
//! fresh worker; replayed NOTIFY. Nodes on 127.0.1.x, ports of `common::cluster`.

use std::{
    collections::HashSet,
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use crate::common::{
    self, Node,
    bind::{Bind, BindConfig, BindZone, Source, Transfer},
    cluster::{BundleSpec, Cluster, DNS, now},
    kdig,
    responder::{Axfr, Responder, Script},
    wait_for,
};
use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{Name, RecordType},
};

const ZONE: &str = "_certzone.example.test.";
const CLUSTER: &str = "prod";

fn zone() -> Name {
    Name::from_ascii(ZONE).unwrap()
}

/// The SOA serial `ip` serves for the certificate zone.
fn served_serial(ip: &str) -> u32 {
    let out = kdig(&[
        &format!("@{ip}"),
        "-p",
        &DNS.to_string(),
        "+short",
        ZONE,
        "SOA",
    ]);
    out.split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA serial from {ip}: {out}"))
}

/// How many times `needle` is in the node's log.
fn count(node: &Node, needle: &str) -> usize {
    node.stderr().matches(needle).count()
}

/// Waits until `needle` is in the node's log `n` times.
fn wait_count(node: &Node, needle: &str, n: usize, limit: Duration) {
    wait_for(&format!("{n} log lines with {needle:?}"), limit, || {
        (count(node, needle) >= n).then_some(())
    });
}

/// A master and one worker of cluster "prod", both serving; the master stopped again.
/// Returns the cluster, the worker, the leaf it serves and the bundle version it holds.
fn worker_alone(master_ip: &str, worker_ip: &str) -> (Cluster, Node, Vec<u8>, u64) {
    let cluster = Cluster::new(master_ip, &[worker_ip], &[0]);
    cluster.set_cluster_id(CLUSTER);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let leaf = cluster.served_leaf(master_ip).expect("the master serves");
    cluster.wait_serving(worker_ip, &leaf, Duration::from_secs(10));
    let version = common::stored_bundle_version(&cluster.scratch.path("master-state"));
    master.stop();
    (cluster, worker, leaf, version)
}

/// BIND in the master's place serving `text` as the certificate zone, knowing the TSIG
/// key or not; it NOTIFYs the worker (signed when it has the key) and logs every query.
fn bind_primary(cluster: &Cluster, dir: &std::path::Path, text: String, with_key: bool) -> Bind {
    let key = if with_key { " key \"transfer\"" } else { "" };
    Bind::start(
        dir,
        &BindConfig {
            ip: cluster.master_ip.clone(),
            port: DNS,
            keys: if with_key {
                vec![cluster.tsig.to_key_block()]
            } else {
                vec![]
            },
            zones: vec![BindZone {
                name: ZONE.into(),
                source: Source::Primary(text),
                transfer: if with_key {
                    Transfer::Key("transfer".into())
                } else {
                    Transfer::Any
                },
                extra: format!(
                    "notify explicit; also-notify {{ {} port {DNS}{key}; }};",
                    cluster.worker_ips[0]
                ),
            }],
            options: format!("\tnotify-source {};\n\tquerylog yes;", cluster.master_ip),
        },
    )
}

/// A forging BIND primary: another key, an older genuine bundle under a higher serial,
/// another cluster's bundle with our key, garbage CERT records, then BIND without the key.
#[test]
fn a_forging_bind_primary_is_refused_check_by_check() {
    let _gate = common::gate();
    let (cluster, worker, leaf, held) = worker_alone("127.0.1.1", "127.0.1.2");
    let base = served_serial("127.0.1.2");
    let dir = tempfile::tempdir().unwrap();
    let genuine = |version, serial| BundleSpec::genuine(CLUSTER, version, serial);
    let other_key = BundleSpec {
        signer: Some(certzone::bundle::generate_signing_key(
            &mut rand_core::OsRng,
        )),
        ..genuine(held + 6, base.wrapping_add(1000))
    };
    let first = cluster.certificate_zone_text(&other_key);
    let bind = bind_primary(&cluster, dir.path(), first, true);
    let file = dir.path().join("_certzone.example.test.zone");
    let serve = |text: String| {
        std::fs::write(&file, format!("$ORIGIN {ZONE}\n{text}")).unwrap();
        bind.reload();
    };
    let older = genuine(held - 500, base.wrapping_add(2000));
    let staging = BundleSpec {
        cluster: "staging".into(),
        ..genuine(held + 7, base.wrapping_add(3000))
    };
    let garbage = cluster
        .certificate_zone_text(&genuine(held + 8, base.wrapping_add(4000)))
        .replace(" CERT 1 0 0 ", " CERT 1 7 0 ");
    let scenarios: [(&str, Option<String>); 4] = [
        ("signature check: no signature by a pinned key", None),
        (
            "version check: bundle version",
            Some(cluster.certificate_zone_text(&older)),
        ),
        (
            "cluster check: the bundle is for cluster \"staging\"",
            Some(cluster.certificate_zone_text(&staging)),
        ),
        (
            "record check: malformed 0.chain._certzone.example.test.",
            Some(garbage),
        ),
    ];
    for (n, (check, text)) in scenarios.into_iter().enumerate() {
        if let Some(text) = text {
            serve(text);
        }
        wait_count(&worker, "bundle refused", n + 1, Duration::from_secs(15));
        let log = worker.stderr();
        let refused = log
            .lines()
            .filter(|l| l.contains("bundle refused"))
            .nth(n)
            .unwrap()
            .to_string();
        assert!(
            refused.contains(check),
            "scenario {n}: {check:?} not in\n{refused}"
        );
        assert!(
            refused.contains(&format!("refused={}", n + 1)),
            "counted:\n{refused}"
        );
        assert_eq!(
            cluster.served_leaf("127.0.1.2"),
            Some(leaf.clone()),
            "keeps serving"
        );
    }
    let queries = bind.log();
    assert!(
        !queries.contains("manifest._certzone"),
        "transfers worked, so no query was needed:\n{queries}"
    );
    drop(bind);

    // BIND without the key: even a genuine newer bundle is not taken, nothing unsigned asked.
    let dir = tempfile::tempdir().unwrap();
    let text = cluster.certificate_zone_text(&genuine(held + 9, base.wrapping_add(5000)));
    let unkeyed = bind_primary(&cluster, dir.path(), text, false);
    let before = count(&worker, "answer from the primary refused");
    wait_count(
        &worker,
        "answer from the primary refused",
        before + 2,
        Duration::from_secs(15),
    );
    let log = worker.stderr();
    assert!(
        log.contains("the NOTAUTH answer carries TSIG error BADKEY"),
        "the TSIG check is named:\n{log}"
    );
    assert!(log.contains("unauthenticated="), "counted:\n{log}");
    assert_eq!(
        cluster.served_leaf("127.0.1.2"),
        Some(leaf),
        "keeps serving"
    );
    assert_eq!(count(&worker, "from=queries"), 0, "{log}");
    let queries = unkeyed.log();
    assert!(
        !queries.contains("manifest._certzone") && !queries.contains("AXFR"),
        "only signed SOA queries reached BIND:\n{queries}"
    );
    worker.stop();
}

/// A scripted primary that signs its SOA answers: an
/// unsigned REFUSED to AXFR, then a connection closed before any answer. Neither leads to
/// queries.
#[test]
fn an_unsigned_refusal_or_a_silent_close_never_leads_to_unsigned_queries() {
    let _gate = common::gate();
    let (cluster, worker, leaf, _) = worker_alone("127.0.1.3", "127.0.1.4");
    let newer = served_serial("127.0.1.4").wrapping_add(100);
    let addr: SocketAddr = format!("127.0.1.3:{DNS}").parse().unwrap();
    let responder = Responder::start(
        addr,
        Script {
            serials: vec![(zone(), newer)],
            refresh: 2,
            retry: 1,
            expire: 600,
            sign_with: Some(cluster.tsig.clone()),
            axfr: Axfr::UnsignedRefused,
        },
    );
    worker.wait_log(
        "the REFUSED answer is not TSIG-signed",
        Duration::from_secs(10),
    );
    responder.set(|s| s.axfr = Axfr::Close);
    worker.wait_log(
        "the connection closed without a signed answer",
        Duration::from_secs(10),
    );
    let asked = responder.asked();
    assert!(asked.iter().any(|a| a.kind == RecordType::AXFR));
    let other: Vec<_> = asked
        .iter()
        .filter(|a| !matches!(a.kind, RecordType::SOA | RecordType::AXFR))
        .collect();
    assert!(
        other.is_empty(),
        "no query for the bundle's records: {other:?}"
    );
    assert!(
        asked.iter().all(|a| a.signed),
        "every question signed: {asked:?}"
    );
    let log = worker.stderr();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("answer from the primary refused") && l.contains(ZONE))
        .collect();
    assert!(refusals.len() >= 2, "both counted:\n{log}");
    assert_eq!(cluster.served_leaf("127.0.1.4"), Some(leaf));
    worker.stop();
}

/// Forged SOA timers: an unsigned SOA answer with a huge refresh changes nothing (the next
/// checks come on the retry timer); a signed one is clamped to a day.
#[test]
fn forged_soa_timers_change_nothing() {
    let _gate = common::gate();
    let (cluster, worker, leaf, _) = worker_alone("127.0.1.5", "127.0.1.6");
    let held = served_serial("127.0.1.6");
    let addr: SocketAddr = format!("127.0.1.5:{DNS}").parse().unwrap();
    let responder = Responder::start(
        addr,
        Script {
            serials: vec![(zone(), held)],
            refresh: i32::MAX,
            retry: i32::MAX,
            expire: 1,
            sign_with: None,
            axfr: Axfr::UnsignedRefused,
        },
    );
    let checks = || {
        responder
            .asked()
            .into_iter()
            .filter(|a| a.name == zone())
            .collect::<Vec<_>>()
    };
    // The worker's timers are the master's (refresh 2 s, retry 1 s): it keeps asking.
    wait_for(
        "4 SOA checks of the certificate zone",
        Duration::from_secs(10),
        || (checks().len() >= 4).then_some(()),
    );
    let seen = checks();
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps.iter().all(|g| *g < Duration::from_secs(4)),
        "checks every retry, not parked: {gaps:?}"
    );
    assert!(seen.iter().all(|a| a.signed), "the checks are signed");
    worker.wait_log(
        "the NOERROR answer is not TSIG-signed",
        Duration::from_secs(5),
    );
    assert!(worker.stderr().contains("unauthenticated="));
    // The same timers, signed (a broken primary that has the key): clamped.
    responder.set(|s| s.sign_with = Some(cluster.tsig.clone()));
    worker.wait_log("next_check_in=86400s", Duration::from_secs(10));
    let log = worker.stderr();
    assert!(
        log.contains("SOA timers out of bounds; clamped") && log.contains("clamped_refresh=86400s"),
        "{log}"
    );
    let settled = checks().len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        checks().len(),
        settled,
        "no check before the clamped refresh"
    );
    assert_eq!(cluster.served_leaf("127.0.1.6"), Some(leaf));
    worker.stop();
}

/// Rollback after a lost cache: the cache deleted but the held state kept, the worker refuses an older
/// genuine bundle; a fresh worker refuses it under `minimum-version` and under
/// `minimum-published`.
#[test]
fn no_rollback_after_cache_loss_and_floors_for_a_fresh_worker() {
    let _gate = common::gate();
    let cluster = Cluster::new("127.0.1.7", &["127.0.1.8"], &[0]);
    cluster.set_cluster_id(CLUSTER);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let first = cluster.served_leaf("127.0.1.7").unwrap();
    cluster.wait_serving("127.0.1.8", &first, Duration::from_secs(10));
    let old_version = now() - 100;
    let second = cluster.renew_files();
    master.signal("HUP");
    cluster.wait_serving("127.0.1.8", &second, Duration::from_secs(10));
    let held_file = cluster
        .scratch
        .path("worker0-state/held/_certzone.example.test.held");
    let held = std::fs::read_to_string(&held_file).expect("the held state is on disk");
    // Two copies, the newer one with the higher version.
    let version: u64 = held
        .lines()
        .filter_map(|l| l.strip_prefix("version ")?.parse().ok())
        .max()
        .unwrap_or_else(|| panic!("no version in {held}"));
    assert!(held.contains("minimum-format 2"), "{held}");
    worker.stop();
    master.stop();
    std::fs::remove_dir_all(cluster.scratch.path("worker0-state/cache")).unwrap();

    // BIND at the master's address with a genuine bundle older than the one held.
    let dir = tempfile::tempdir().unwrap();
    let serial = (version as u32).wrapping_add(1000);
    let spec = BundleSpec::genuine(CLUSTER, old_version, serial);
    let _bind = bind_primary(
        &cluster,
        dir.path(),
        cluster.certificate_zone_text(&spec),
        true,
    );
    let restarted = cluster.start_worker(0);
    restarted.wait_log("bundle refused", Duration::from_secs(15));
    let floor = format!(
        "version check: bundle version {old_version} is below this reader's floor {version}"
    );
    assert!(
        restarted.stderr().contains(&floor),
        "{}",
        restarted.stderr()
    );
    assert_eq!(
        cluster.served_leaf("127.0.1.8"),
        None,
        "nothing older is served"
    );
    restarted.stop();

    // A fresh worker (no state at all) with a floor.
    let config = std::fs::read_to_string(cluster.worker_config(0)).unwrap();
    let fresh = |floor: &str| {
        let text = config
            .replace(
                "state-dir = \"worker0-state\"",
                "state-dir = \"fresh-state\"",
            )
            .replace(
                "[certificate-zone]\n",
                &format!("[certificate-zone]\n{floor}\n"),
            );
        assert_ne!(text, config);
        let path = cluster.scratch.write("fresh.toml", &text);
        let _ = std::fs::remove_dir_all(cluster.scratch.path("fresh-state"));
        Node::start(&path)
    };
    let node = fresh(&format!("minimum-version = {version}"));
    node.wait_log("bundle refused", Duration::from_secs(15));
    assert!(node.stderr().contains(&floor), "{}", node.stderr());
    node.stop();
    let at = time::OffsetDateTime::from_unix_timestamp((old_version + 50) as i64).unwrap();
    let rfc3339 = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let node = fresh(&format!("minimum-published = \"{rfc3339}\""));
    node.wait_log("bundle refused", Duration::from_secs(15));
    let published = format!(
        "publication time {old_version} is below this reader's floor {}",
        old_version + 50
    );
    assert!(node.stderr().contains(&published), "{}", node.stderr());
    assert_eq!(cluster.served_leaf("127.0.1.8"), None);
    node.stop();
}

/// Replayed NOTIFY: the master's NOTIFY, captured, replayed 100 times from its address
/// within the TSIG window: one transfer; replayed again after the next change: none.
#[test]
fn a_replayed_notify_causes_at_most_one_transfer() {
    let _gate = common::gate();
    let cluster = Cluster::new("127.0.1.9", &["127.0.1.10"], &[]);
    let capture = UdpSocket::bind("127.0.1.11:5499").unwrap();
    capture
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let master_config = std::fs::read_to_string(cluster.master_config()).unwrap();
    let edited = master_config
        .replace("notify = []", "notify = [\"127.0.1.11:5499\"]")
        .replace("refresh-secs = 2", "refresh-secs = 3600");
    assert_ne!(
        master_config, edited,
        "the harness's master config is as expected"
    );
    std::fs::write(cluster.master_config(), edited).unwrap();
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let first = cluster.served_leaf("127.0.1.9").unwrap();
    cluster.wait_serving("127.0.1.10", &first, Duration::from_secs(10));
    let transferred = "zone transferred zone=_certzone.example.test.";
    let transfers = || count(&worker, transferred);
    // The log is read by another thread: wait for the line before counting.
    wait_count(&worker, transferred, 1, Duration::from_secs(5));
    assert_eq!(transfers(), 1);
    // The master retries each NOTIFY with the same bytes: a new one is one not seen yet.
    let mut seen = HashSet::new();
    let mut caught = |until_new: bool| -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok(n) = capture.recv(&mut buf) else {
                if until_new {
                    continue;
                }
                return None;
            };
            let message = Message::from_vec(&buf[..n]).unwrap();
            let ours = message.queries.first().is_some_and(|q| q.name() == &zone());
            if ours && seen.insert(buf[..n].to_vec()) && until_new {
                return Some(buf[..n].to_vec());
            }
        }
        assert!(!until_new, "no new NOTIFY for {ZONE} captured within 10 s");
        None
    };
    caught(false);
    let second = cluster.renew_files();
    master.signal("HUP");
    let notify = caught(true).unwrap();
    let from = UdpSocket::bind("127.0.1.9:0").unwrap();
    from.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let target: SocketAddr = format!("127.0.1.10:{DNS}").parse().unwrap();
    let replay = |times: usize| {
        for _ in 0..times {
            from.send_to(&notify, target).unwrap();
            let mut buf = [0u8; 2048];
            let n = from.recv(&mut buf).expect("every NOTIFY is answered");
            let rcode = Message::from_vec(&buf[..n]).unwrap().metadata.response_code;
            assert_eq!(rcode, ResponseCode::NoError, "acknowledged");
        }
    };
    replay(1);
    cluster.wait_serving("127.0.1.10", &second, Duration::from_secs(10));
    replay(99);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(transfers(), 2, "one transfer for 100 copies of one NOTIFY");
    assert_eq!(
        count(&worker, "NOTIFY replayed; acknowledged and ignored"),
        99
    );
    // A newer serial at the master, the same old NOTIFY: still nothing.
    let third = cluster.renew_files();
    master.signal("HUP");
    let fresh_notify = caught(true).unwrap();
    replay(100);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        transfers(),
        2,
        "replays move nothing, whatever the master holds"
    );
    assert_eq!(cluster.served_leaf("127.0.1.10"), Some(second));
    // The master's new NOTIFY does.
    from.send_to(&fresh_notify, target).unwrap();
    cluster.wait_serving("127.0.1.10", &third, Duration::from_secs(10));
    wait_count(&worker, transferred, 3, Duration::from_secs(5));
    assert_eq!(transfers(), 3);
    worker.stop();
    master.stop();
}

/// The seconds-of-day in a log line's RFC 3339 timestamp (`2026-12-02T23:01:38.594632Z`).
fn logged_at(line: &str) -> f64 {
    let time = line
        .split('T')
        .nth(1)
        .and_then(|t| t.split('Z').next())
        .unwrap();
    let parts: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

/// Transfers of one zone start at least a second apart, however fast the master changes it.
#[test]
fn transfers_of_a_zone_are_paced() {
    let _gate = common::gate();
    let cluster = Cluster::new("127.0.1.12", &["127.0.1.13"], &[0]);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let first = cluster.served_leaf("127.0.1.12").unwrap();
    cluster.wait_serving("127.0.1.13", &first, Duration::from_secs(10));
    let second = cluster.renew_files();
    master.signal("HUP");
    cluster.wait_serving("127.0.1.13", &second, Duration::from_secs(10));
    // At once a third certificate: its NOTIFY comes right after the last transfer.
    let third = cluster.renew_files();
    master.signal("HUP");
    cluster.wait_serving("127.0.1.13", &third, Duration::from_secs(10));
    let transferred = "zone transferred zone=_certzone.example.test.";
    wait_count(&worker, transferred, 3, Duration::from_secs(5));
    let log = worker.stderr();
    let times: Vec<f64> = log
        .lines()
        .filter(|l| l.contains(transferred))
        .map(logged_at)
        .collect();
    assert_eq!(times.len(), 3, "{log}");
    let gap = times[2] - times[1];
    assert!(
        gap >= 0.9,
        "the third transfer {gap:.3} s after the second:\n{log}"
    );
    worker.stop();
    master.stop();
}

/// A NOTIFY from the primary's address, signed with `key`, carrying `serial` in its
/// answer section when given (as BIND, Knot and certzone masters send it).
fn signed_notify(key: &certzone::tsig::TsigKey, serial: Option<u32>) -> Vec<u8> {
    use hickory_proto::{
        op::{MessageType, OpCode, Query},
        rr::{RData, Record, rdata::SOA},
    };
    let mut message = Message::new(
        rand_core::RngCore::next_u32(&mut rand_core::OsRng) as u16,
        MessageType::Query,
        OpCode::Notify,
    );
    message.metadata.authoritative = true;
    message.add_query(Query::query(zone(), RecordType::SOA));
    if let Some(serial) = serial {
        let soa = SOA::new(zone(), zone(), serial, 3600, 3600, 1_209_600, 60);
        message.add_answer(Record::from_rdata(zone(), 60, RData::SOA(soa)));
    }
    let (tsig, _) = key.signer().sign_message(&message, now()).unwrap();
    message.set_signature(tsig);
    message.to_vec().unwrap()
}

/// A signed NOTIFY that carries a serial newer than the worker's goes straight to the
/// transfer (its TSIG covers the serial); one without a serial, or with one not newer,
/// still leads to a signed SOA query first.
#[test]
fn a_signed_notify_with_a_newer_serial_goes_straight_to_the_transfer() {
    let _gate = common::gate();
    let (cluster, worker, leaf, _) = worker_alone("127.0.1.14", "127.0.1.15");
    let held = served_serial("127.0.1.15");
    let addr: SocketAddr = format!("127.0.1.14:{DNS}").parse().unwrap();
    // Long signed timers: no check of the worker's own comes in between.
    let responder = Responder::start(
        addr,
        Script {
            serials: vec![(zone(), held)],
            refresh: 3600,
            retry: 3600,
            expire: 1_209_600,
            sign_with: Some(cluster.tsig.clone()),
            axfr: Axfr::Close,
        },
    );
    wait_for(
        "a signed SOA check answered by the responder",
        Duration::from_secs(15),
        || {
            worker
                .stderr()
                .contains("next_check_in=3600s")
                .then_some(())
        },
    );
    let from = UdpSocket::bind("127.0.1.14:0").unwrap();
    from.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let target = format!("127.0.1.15:{DNS}");
    // Sends a NOTIFY and returns the questions the worker asked in the next 1.5 s.
    let notify = |serial: Option<u32>| {
        let before = responder.asked().len();
        from.send_to(&signed_notify(&cluster.tsig, serial), &target)
            .unwrap();
        let mut buf = [0u8; 512];
        let n = from.recv(&mut buf).expect("the NOTIFY is acknowledged");
        let ack = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(ack.metadata.response_code, ResponseCode::NoError);
        std::thread::sleep(Duration::from_millis(1500));
        let asked: Vec<RecordType> = responder.asked()[before..]
            .iter()
            .filter(|a| a.name == zone())
            .map(|a| a.kind)
            .collect();
        asked
    };
    let newer = held.wrapping_add(5);
    assert_eq!(
        notify(Some(newer)),
        vec![RecordType::AXFR],
        "a newer signed serial: the transfer at once"
    );
    worker.wait_log(
        &format!("NOTIFY accepted peer=127.0.1.14 zone={ZONE}"),
        Duration::from_secs(1),
    );
    assert_eq!(
        notify(None),
        vec![RecordType::SOA],
        "no serial: the SOA query, which says nothing changed"
    );
    assert_eq!(
        notify(Some(held)),
        vec![RecordType::SOA],
        "a serial not newer: the SOA query"
    );
    assert!(
        responder.asked().iter().all(|a| a.signed),
        "every question signed"
    );
    assert_eq!(
        cluster.served_leaf("127.0.1.15"),
        Some(leaf),
        "keeps serving"
    );
    worker.stop();
}
