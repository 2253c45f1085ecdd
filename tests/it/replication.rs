//! Replication: a master and workers on 127.0.0.1–127.0.0.21 (other tests use other
//! ports there); NOTIFY, TSIG transfers, the bundle verified and served by every worker.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use crate::common::{
    self,
    client::DotClient,
    cluster::{Cluster, DNS, NAME},
    kdig, wait_for,
};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RecordType},
};

const MASTER: &str = "127.0.0.1";
const WORKERS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// kdig over UDP to `ip`: the whole answer, status line included.
fn udp_answer(ip: &str, name: &str) -> String {
    kdig(&[&format!("@{ip}"), "-p", &DNS.to_string(), name, "A"])
}

/// kdig over DoT to `ip`, verifying the cluster CA and name; the A answer.
fn dot_answer(cluster: &Cluster, ip: &str, name: &str) -> String {
    let out = kdig(&[
        &format!("@{ip}"),
        "-p",
        "8540",
        "+tls",
        &format!("+tls-ca={}", cluster.ca().display()),
        &format!("+tls-hostname={NAME}"),
        "+short",
        name,
        "A",
    ]);
    out.trim().to_string()
}

#[test]
fn every_worker_serves_the_certificate_and_follows_renewals_on_open_connections() {
    let _gate = common::gate();
    // A refresh of an hour: within the waits below, only the NOTIFY can bring a renewal.
    let cluster = Cluster::with_refresh(MASTER, &WORKERS, &[0, 1, 2], 3600);
    let master = cluster.start_master();
    let workers: Vec<_> = (0..3).map(|i| cluster.start_worker(i)).collect();
    let first = cluster
        .served_leaf(MASTER)
        .expect("the master serves its certificate");
    for ip in WORKERS {
        cluster.wait_serving(ip, &first, Duration::from_secs(10));
        assert_eq!(
            dot_answer(&cluster, ip, "www.example.test"),
            "192.0.2.10",
            "kdig over DoT to {ip}"
        );
    }
    let mut held: Vec<DotClient> = WORKERS
        .iter()
        .map(|ip| DotClient::connect(cluster.dot(ip), &cluster.ca(), NAME).unwrap())
        .collect();
    // A renewal: new files, SIGHUP, a new bundle, NOTIFY, transfer, install.
    let second = cluster.renew_files();
    let published = Instant::now();
    master.signal("HUP");
    for ip in WORKERS {
        cluster.wait_serving(ip, &second, Duration::from_secs(10));
    }
    // How fast is benchmarked (tests/bench/propagation.sh); here the time is only shown.
    eprintln!(
        "every worker served the renewal {:?} after SIGHUP",
        published.elapsed()
    );
    for (client, ip) in held.iter_mut().zip(WORKERS) {
        assert_eq!(
            client.peer_leaf(),
            first,
            "{ip}: the open connection keeps its certificate"
        );
        let answer = client
            .ask("www.example.test", RecordType::A)
            .expect("the open connection still answers");
        assert_eq!(answer.answers.len(), 1, "{ip}");
    }
    for worker in workers {
        worker.wait_log(
            "certificate installed from the certificate zone",
            Duration::from_secs(5),
        );
        worker.stop();
    }
    master.stop();
}

#[test]
fn workers_catch_up_after_downtime_and_without_notify() {
    let _gate = common::gate();
    // Worker 1 is never sent NOTIFY: only its refresh timer (2 s) brings changes.
    let ips = ["127.0.0.5", "127.0.0.6"];
    let cluster = Cluster::new("127.0.0.7", &ips, &[0]);
    let master = cluster.start_master();
    let worker0 = cluster.start_worker(0);
    let worker1 = cluster.start_worker(1);
    let first = cluster.served_leaf("127.0.0.7").unwrap();
    cluster.wait_serving(ips[0], &first, Duration::from_secs(10));
    cluster.wait_serving(ips[1], &first, Duration::from_secs(10));
    worker0.stop();
    let second = cluster.renew_files();
    master.signal("HUP");
    cluster.wait_serving(ips[1], &second, Duration::from_secs(10));
    // Logs are read by another thread: wait for the line rather than race it.
    worker1.wait_log("zone transferred", Duration::from_secs(5));
    assert!(
        !worker1.stderr().contains("NOTIFY accepted"),
        "worker 1 was never notified"
    );
    let worker0 = cluster.start_worker(0);
    cluster.wait_serving(ips[0], &second, Duration::from_secs(10));
    worker0.stop();
    worker1.stop();
    master.stop();
}

#[test]
fn master_down_workers_keep_serving_and_a_restarted_worker_serves_from_cache() {
    let _gate = common::gate();
    let ips = ["127.0.0.8", "127.0.0.9"];
    let cluster = Cluster::new("127.0.0.10", &ips, &[0, 1]);
    let master = cluster.start_master();
    let workers: Vec<_> = (0..2).map(|i| cluster.start_worker(i)).collect();
    let leaf = cluster.served_leaf("127.0.0.10").unwrap();
    for ip in ips {
        cluster.wait_serving(ip, &leaf, Duration::from_secs(10));
    }
    master.stop();
    for ip in ips {
        assert_eq!(
            cluster.served_leaf(ip),
            Some(leaf.clone()),
            "{ip} keeps serving with the master down"
        );
        assert_eq!(dot_answer(&cluster, ip, "www.example.test"), "192.0.2.10");
    }
    let mut workers = workers.into_iter();
    workers.next().unwrap().stop();
    let restarted = cluster.start_worker(0);
    // Ready means listening: the cached certificate was installed before that.
    assert_eq!(
        cluster.served_leaf(ips[0]),
        Some(leaf.clone()),
        "served from the cache at once"
    );
    // The ordinary zone too, from the worker's copy on disk, as BIND's secondaries do.
    assert_eq!(
        dot_answer(&cluster, ips[0], "www.example.test"),
        "192.0.2.10",
        "the restarted worker answers for example.test with the master down"
    );
    // The log is read by another thread: wait for it rather than race it.
    restarted.wait_log("from=cache", Duration::from_secs(5));
    restarted.wait_log("zone served from the copy on disk", Duration::from_secs(5));
    let mode = std::fs::metadata(
        cluster
            .scratch
            .path("worker0-state/cache/_certzone.example.test.zone"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    restarted.stop();

    // Earlier releases kept the bundle as zone text: such a cache still serves at once.
    let path = cluster
        .scratch
        .path("worker0-state/cache/_certzone.example.test.zone");
    let records = cache_records(&std::fs::read(&path).unwrap());
    assert!(
        records.len() >= 4,
        "the cache holds the whole certificate zone"
    );
    std::fs::write(&path, certzone::bundle::zone_text(&records)).unwrap();
    let again = cluster.start_worker(0);
    assert_eq!(
        cluster.served_leaf(ips[0]),
        Some(leaf),
        "served at once from a cache written as zone text"
    );
    again.wait_log("from=cache", Duration::from_secs(5));
    again.stop();
    workers.next().unwrap().stop();
}

/// The records of a worker's cache file: a magic line, then each record in wire form
/// after its 32-bit length.
fn cache_records(bytes: &[u8]) -> Vec<hickory_proto::rr::Record> {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    let mut rest = bytes
        .strip_prefix(b"certzone zone cache 1\n".as_slice())
        .expect("the cache's magic line");
    let mut records = Vec::new();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (one, tail) = tail.split_at(u32::from_be_bytes(*len) as usize);
        records.push(hickory_proto::rr::Record::read(&mut BinDecoder::new(one)).unwrap());
        rest = tail;
    }
    records
}

#[test]
fn an_ordinary_zone_expires_without_the_master_but_the_certificate_stays() {
    let _gate = common::gate();
    let ips = ["127.0.0.20"];
    let cluster = Cluster::new("127.0.0.21", &ips, &[0]);
    // SOA refresh 1 s, retry 1 s, expire 4 s.
    let zone = std::fs::read_to_string(cluster.scratch.path("example.test.zone")).unwrap();
    let short = zone
        .replace("3600       ; refresh", "1 ; refresh")
        .replace("600        ; retry", "1 ; retry")
        .replace("1209600    ; expire", "4 ; expire");
    assert_ne!(
        zone, short,
        "the test zone's timers are where this test expects"
    );
    cluster.scratch.write("example.test.zone", &short);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let leaf = cluster.served_leaf("127.0.0.21").unwrap();
    cluster.wait_serving(ips[0], &leaf, Duration::from_secs(10));
    wait_for(
        "the worker to answer for example.test",
        Duration::from_secs(10),
        || (dot_answer(&cluster, ips[0], "www.example.test") == "192.0.2.10").then_some(()),
    );
    master.stop();
    let stopped = Instant::now();
    worker.wait_log("zone expired", Duration::from_secs(15));
    assert!(
        stopped.elapsed() >= Duration::from_secs(3),
        "not before the SOA expire (4 s since the last refresh)"
    );
    let out = udp_answer(ips[0], "www.example.test");
    assert!(
        out.contains("status: REFUSED"),
        "expired zone not answered:\n{out}"
    );
    assert_eq!(
        cluster.served_leaf(ips[0]),
        Some(leaf),
        "the valid certificate stays in service"
    );
    // Restarted with an expired copy on disk: still not served.
    worker.stop();
    let restarted = cluster.start_worker(0);
    restarted.wait_log("older than its SOA expire", Duration::from_secs(5));
    let out = udp_answer(ips[0], "www.example.test");
    assert!(out.contains("status: REFUSED"), "{out}");
    // The master back: the zone comes back whole.
    let master = cluster.start_master();
    wait_for("the zone to come back", Duration::from_secs(10), || {
        (dot_answer(&cluster, ips[0], "www.example.test") == "192.0.2.10").then_some(())
    });
    restarted.stop();
    master.stop();
}

/// A NOTIFY for the certificate zone, from `local`, signed with `key` if given.
fn notify(
    from: &str,
    to: SocketAddr,
    key: Option<&certzone::tsig::TsigKey>,
) -> Option<ResponseCode> {
    let mut message = Message::new(7, MessageType::Query, OpCode::Notify);
    message.add_query(Query::query(
        Name::from_ascii("_certzone.example.test.").unwrap(),
        RecordType::SOA,
    ));
    if let Some(key) = key {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (tsig, _) = key.signer().sign_message(&message, now).unwrap();
        message.set_signature(tsig);
    }
    let socket = UdpSocket::bind(format!("{from}:0")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(&message.to_vec().unwrap(), to).unwrap();
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap().metadata.response_code)
}

#[test]
fn rogue_notifies_are_refused_and_a_foreign_bundle_is_not_installed() {
    let _gate = common::gate();
    let ips = ["127.0.0.11"];
    let cluster = Cluster::new("127.0.0.12", &ips, &[0]);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let leaf = cluster.served_leaf("127.0.0.12").unwrap();
    cluster.wait_serving(ips[0], &leaf, Duration::from_secs(10));
    let target: SocketAddr = format!("{}:{DNS}", ips[0]).parse().unwrap();
    assert_eq!(
        notify("127.0.0.13", target, Some(&cluster.tsig)),
        Some(ResponseCode::Refused),
        "not from the primary"
    );
    assert_eq!(
        notify("127.0.0.12", target, None),
        Some(ResponseCode::NotAuth),
        "unsigned"
    );
    let stranger = certzone::tsig::TsigKey::generate(
        Name::from_ascii("transfer.").unwrap(),
        certzone::tsig::Algorithm::HmacSha256,
    );
    assert_eq!(
        notify("127.0.0.12", target, Some(&stranger)),
        Some(ResponseCode::NotAuth),
        "wrong secret"
    );
    assert_eq!(
        notify("127.0.0.12", target, Some(&cluster.tsig)),
        Some(ResponseCode::NoError),
        "the master"
    );
    // A rogue primary at the master's address, with the transfer key but another signing key.
    master.stop();
    let rogue = Cluster::new("127.0.0.12", &ips, &[0]);
    std::fs::copy(
        cluster.scratch.path("transfer.key"),
        rogue.scratch.path("transfer.key"),
    )
    .unwrap();
    std::fs::copy(
        cluster.scratch.path("worker0.pub"),
        rogue.scratch.path("worker0.pub"),
    )
    .unwrap();
    // Its version is ahead (within the hour a publisher may be ahead of the clock), so the
    // worker is sure to fetch it.
    std::fs::create_dir_all(rogue.scratch.path("master-state/bundle")).unwrap();
    let ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1_000;
    std::fs::write(
        rogue.scratch.path("master-state/bundle/version"),
        format!("{ahead}\n"),
    )
    .unwrap();
    let rogue_master = rogue.start_master();
    worker.wait_log("bundle refused", Duration::from_secs(10));
    assert!(
        worker.stderr().contains("signature"),
        "the failed check is named:\n{}",
        worker.stderr()
    );
    assert_eq!(
        cluster.served_leaf(ips[0]),
        Some(leaf),
        "the worker keeps its certificate"
    );
    rogue_master.stop();
    worker.stop();
}

#[test]
fn ordinary_zone_is_replicated_and_follows_reloads() {
    let _gate = common::gate();
    let ips = ["127.0.0.14"];
    let cluster = Cluster::new("127.0.0.15", &ips, &[0]);
    // Only the worker's address may transfer: its transfers must come from it.
    let config = std::fs::read_to_string(cluster.master_config()).unwrap();
    std::fs::write(
        cluster.master_config(),
        config.replace("[transfer]\n", "[transfer]\nallow = [\"127.0.0.14\"]\n"),
    )
    .unwrap();
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let ask = |name: &str| {
        kdig(&["@127.0.0.14", "-p", "5400", "+short", name, "A"])
            .trim()
            .to_string()
    };
    wait_for(
        "the worker to serve example.test",
        Duration::from_secs(10),
        || (ask("www.example.test") == "192.0.2.10").then_some(()),
    );
    let zone = cluster.scratch.path("example.test.zone");
    let text = std::fs::read_to_string(&zone)
        .unwrap()
        .replace("2026112201 ; serial", "2026112202 ; serial");
    std::fs::write(&zone, format!("{text}added IN A 192.0.2.99\n")).unwrap();
    master.signal("HUP");
    wait_for("the change on the worker", Duration::from_secs(5), || {
        (ask("added.example.test") == "192.0.2.99").then_some(())
    });
    use base64::Engine;
    let key = format!(
        "hmac-sha256:transfer:{}",
        base64::engine::general_purpose::STANDARD.encode(&cluster.tsig.secret)
    );
    let refused = kdig(&[
        "@127.0.0.15",
        "-p",
        "5400",
        "-b",
        "127.0.0.1",
        "-y",
        &key,
        "AXFR",
        "example.test.",
    ]);
    assert!(
        refused.contains("REFUSED"),
        "a transfer from an unlisted address is refused:\n{refused}"
    );
    let out = kdig(&["@127.0.0.14", "-p", "5400", "www.example.test", "A"]);
    assert!(
        out.contains("qr aa"),
        "the worker answers authoritatively:\n{out}"
    );
    worker.stop();
    master.stop();
}

#[test]
fn an_older_bundle_from_a_primary_with_the_key_is_refused() {
    let _gate = common::gate();
    use crate::common::bind::{Bind, BindConfig, BindZone, Source, Transfer};
    let ips = ["127.0.0.16"];
    let cluster = Cluster::new("127.0.0.17", &ips, &[0]);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let leaf = cluster.served_leaf("127.0.0.17").unwrap();
    cluster.wait_serving(ips[0], &leaf, Duration::from_secs(10));
    master.stop();
    // BIND takes the master's address and serves a bundle signed with the right key but an
    // older version, under a higher SOA serial, and NOTIFYs the worker with the right key.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ca = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![NAME.to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca)
        .unwrap();
    let input = certzone::bundle::BundleInput {
        zone: Name::from_ascii("_certzone.example.test.").unwrap(),
        ttl: 60,
        format: 2,
        minimum_format: 2,
        version: now - 100_000,
        published: now - 100_000,
        cluster_id: String::new(),
        names: vec![NAME.to_string()],
        chain: vec![cert.der().to_vec(), ca_cert.der().to_vec()],
        private_key: rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
        workers: vec![cluster.workers[0].public_key()],
    };
    let records =
        certzone::bundle::publish(&input, &cluster.signing, &mut rand_core::OsRng).unwrap();
    let serial = (now + 100_000) as u32;
    let zone = format!(
        "$TTL 60\n@ IN SOA ns1.example.test. hm.example.test. {serial} 2 1 600 60\n@ IN NS ns1.example.test.\n{}",
        certzone::bundle::zone_text(&records)
    );
    let dir = tempfile::tempdir().unwrap();
    let _bind = Bind::start(
        dir.path(),
        &BindConfig {
            ip: "127.0.0.17".into(),
            port: DNS,
            keys: vec![cluster.tsig.to_key_block()],
            zones: vec![BindZone {
                name: "_certzone.example.test.".into(),
                source: Source::Primary(zone),
                transfer: Transfer::Key("transfer".into()),
                extra: format!(
                    "notify explicit; also-notify {{ {} port {DNS} key \"transfer\"; }};",
                    ips[0]
                ),
            }],
            options: "\tnotify-source 127.0.0.17;".into(),
        },
    );
    worker.wait_log("bundle refused", Duration::from_secs(15));
    assert!(
        worker.stderr().contains("version check: bundle version"),
        "the failed check is named:\n{}",
        worker.stderr()
    );
    assert_eq!(
        cluster.served_leaf(ips[0]),
        Some(leaf),
        "the worker keeps its certificate"
    );
    worker.stop();
}

#[test]
fn an_expired_certificate_is_taken_out_of_service() {
    let _gate = common::gate();
    let ips = ["127.0.0.18"];
    let cluster = Cluster::new("127.0.0.19", &ips, &[0]);
    // X.509 times have whole seconds: the leaf lives 4 to 5 more seconds.
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let leaf = cluster.renew_files_until(Some(not_after));
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    cluster.wait_serving(ips[0], &leaf, Duration::from_secs(3));
    wait_for(
        "the worker to stop serving the expired certificate",
        Duration::from_secs(15),
        || cluster.served_leaf(ips[0]).is_none().then_some(()),
    );
    // Logs are read by another thread: wait for the line rather than race it.
    worker.wait_log("the certificate expired", Duration::from_secs(5));
    // Plain DNS goes on.
    assert_eq!(
        kdig(&[
            &format!("@{}", ips[0]),
            "-p",
            "5400",
            "+short",
            "www.example.test",
            "A"
        ])
        .trim(),
        "192.0.2.10"
    );
    worker.stop();
    master.stop();
}
