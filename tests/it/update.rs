//! Dynamic updates: nsupdate (bind9-dnsutils) changes the master's zone by
//! RFC 2136 UPDATE with a TSIG key from `[update]`; every worker follows; refusals and
//! failed prerequisites get their RFC rcodes; restarts, `kill -9` and SIGHUP lose nothing.
//! Addresses 127.0.16.1-9.

use std::{
    io::Write,
    net::UdpSocket,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use certzone::tsig::{Algorithm, TsigKey};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::common::{self, Node, client, cluster::Cluster, kdig, wait_for};

const CHALLENGE: &str = "_acme-challenge.web.example.test.";

/// A cluster whose master takes updates from `web` (TXT at `_acme-challenge` names below
/// web.example.test) and `host` (A and AAAA at host.example.test exactly).
fn cluster(master: &str, workers: &[&str]) -> (Cluster, TsigKey, TsigKey) {
    let notified: Vec<usize> = (0..workers.len()).collect();
    let cluster = Cluster::new(master, workers, &notified);
    let web = key("update-web.");
    let host = key("update-host.");
    cluster.scratch.write("update-web.key", &web.to_key_block());
    cluster
        .scratch
        .write("update-host.key", &host.to_key_block());
    let config = std::fs::read_to_string(cluster.master_config()).unwrap();
    let update = "\n[update]\n[[update.key]]\ntsig-key-file = \"update-web.key\"\ngrant = \
                  [\"acme-challenge web.example.test. TXT\"]\n\n[[update.key]]\n\
                  tsig-key-file = \"update-host.key\"\ngrant = [\"name host.example.test. A AAAA\"]\n";
    std::fs::write(cluster.master_config(), config + update).unwrap();
    (cluster, web, host)
}

fn key(name: &str) -> TsigKey {
    TsigKey::generate(Name::from_ascii(name).unwrap(), Algorithm::HmacSha256)
}

/// nsupdate's `-y` argument for `key`.
fn key_arg(key: &TsigKey) -> String {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.encode(&key.secret);
    format!(
        "hmac-sha256:{}:{secret}",
        key.name.to_string().trim_end_matches('.')
    )
}

/// Runs nsupdate against `server` (port 5400) with `commands` (zone example.test., then
/// `send`); returns whether it succeeded and what it printed.
fn nsupdate(server: &str, key: Option<&TsigKey>, commands: &str) -> (bool, String) {
    let mut command = Command::new("nsupdate");
    command.args(["-t", "5", "-v"]);
    if let Some(key) = key {
        command.args(["-y", &key_arg(key)]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nsupdate (bind9-dnsutils, installed by tests/setup.sh)");
    let script = format!("server {server} 5400\nzone example.test.\n{commands}\nsend\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Asserts that nsupdate's update was answered with `rcode`.
fn assert_rcode(result: (bool, String), rcode: &str, what: &str) {
    let (ok, text) = result;
    assert!(
        !ok && text.contains(&format!("update failed: {rcode}")),
        "{what}: expected {rcode}, nsupdate said:\n{text}"
    );
}

/// The TXT strings at `name` on `ip`, asked over UDP.
fn txt(ip: &str, name: &str) -> Vec<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let query = client::query(7, name, RecordType::TXT);
    socket.send_to(&query, format!("{ip}:5400")).unwrap();
    let mut buf = [0u8; 4096];
    let Ok((n, _)) = socket.recv_from(&mut buf) else {
        return vec!["(no answer)".into()];
    };
    let mut values: Vec<String> = client::parse(&buf[..n])
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.to_string()),
            _ => None,
        })
        .collect();
    values.sort();
    values
}

/// Waits until every worker in `ips` has `want` at `name`; prints how long each took
/// after `since` (the master's NOERROR).
fn follow(ips: &[&str], name: &str, want: &[&str], since: Instant, what: &str) {
    for ip in ips {
        // Polled every millisecond (not `wait_for`'s 20), so the time printed is the
        // worker's, not the poll's.
        let deadline = since + Duration::from_secs(5);
        while txt(ip, name) != want {
            assert!(
                Instant::now() < deadline,
                "timed out after 5 s waiting for {what} on worker {ip}: {:?}",
                txt(ip, name)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        println!(
            "{what}: worker {ip} serves it {:.1} ms after the NOERROR (or the check's start)",
            since.elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// Workers start transfers of one zone at least a second apart (a guard against NOTIFY
/// floods, `replication::worker`); a change within a second of the last transfer waits
/// for it. The measured updates come after that second, as an ACME client's do (its
/// order takes longer than that between adding and deleting).
fn past_transfer_floor() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// Starts the master and workers and waits until every worker serves example.test.
fn start(cluster: &Cluster) -> (Node, Vec<Node>) {
    let master = cluster.start_master();
    let workers: Vec<Node> = (0..cluster.worker_ips.len())
        .map(|i| cluster.start_worker(i))
        .collect();
    for ip in &cluster.worker_ips {
        wait_for(
            &format!("worker {ip} to serve example.test"),
            Duration::from_secs(10),
            || (txt(ip, "txt.example.test.").len() == 1).then_some(()),
        );
    }
    (master, workers)
}

#[test]
fn nsupdate_adds_and_deletes_a_challenge_and_every_worker_follows() {
    let _gate = common::gate();
    const MASTER: &str = "127.0.16.1";
    const WORKERS: [&str; 2] = ["127.0.16.2", "127.0.16.3"];
    let (cluster, web, _) = cluster(MASTER, &WORKERS);
    // NOERROR at once, so what is printed is how long the workers take after it (by
    // default the master waits for them before answering; tests/update_clients.rs).
    let config = std::fs::read_to_string(cluster.master_config()).unwrap();
    let config = config.replace("[update]\n", "[update]\nwait-for-workers-ms = 0\n");
    std::fs::write(cluster.master_config(), config).unwrap();
    let (master, workers) = start(&cluster);
    let serial_before = soa_serial(MASTER);

    past_transfer_floor();
    let add = format!("update add {CHALLENGE} 60 TXT \"token-1\"");
    let (ok, text) = nsupdate(MASTER, Some(&web), &add);
    let acknowledged = Instant::now();
    assert!(ok, "the web key adds its challenge:\n{text}");
    assert_eq!(
        txt(MASTER, CHALLENGE),
        ["token-1"],
        "master answers at once"
    );
    follow(&WORKERS, CHALLENGE, &["token-1"], acknowledged, "added TXT");
    let serial_after = soa_serial(MASTER);
    assert_eq!(
        serial_after,
        serial_before.wrapping_add(1),
        "one update, one serial"
    );

    // A change sent from here, so the NOERROR's arrival is timed exactly (nsupdate's exit
    // comes after it).
    past_transfer_floor();
    let acknowledged = send_update(MASTER, &web, "token-2");
    follow(
        &WORKERS,
        CHALLENGE,
        &["token-1", "token-2"],
        acknowledged,
        "second TXT",
    );

    past_transfer_floor();
    let delete = format!("update delete {CHALLENGE} TXT");
    let (ok, text) = nsupdate(MASTER, Some(&web), &delete);
    let acknowledged = Instant::now();
    assert!(ok, "the web key deletes its challenge:\n{text}");
    follow(&WORKERS, CHALLENGE, &[], acknowledged, "deleted TXT");

    drop(workers);
    master.stop();
}

#[test]
fn refusals_and_failed_prerequisites_get_their_rcodes() {
    let _gate = common::gate();
    const MASTER: &str = "127.0.16.4";
    const WORKERS: [&str; 1] = ["127.0.16.5"];
    let (cluster, web, host) = cluster(MASTER, &WORKERS);
    let (master, _workers) = start(&cluster);
    let add = format!("update add {CHALLENGE} 60 TXT \"x\"");

    assert_rcode(
        nsupdate(MASTER, None, &add),
        "REFUSED",
        "an unsigned update",
    );
    master.wait_log("update refused", Duration::from_secs(2));
    let log = master.stderr();
    assert!(
        log.contains("key=\"(unsigned)\"") && log.contains(CHALLENGE),
        "the refusal names the key and the name tried:\n{log}"
    );
    let stranger = key("update-web.");
    let (ok, text) = nsupdate(MASTER, Some(&stranger), &add);
    assert!(
        !ok && text.contains("NOTAUTH") || text.contains("tsig verify failure"),
        "a key with the right name and a wrong secret gets NOTAUTH (BADSIG):\n{text}"
    );
    let outside = "update add www2.example.test. 60 A 192.0.2.7";
    assert_rcode(
        nsupdate(MASTER, Some(&web), outside),
        "REFUSED",
        "web's key outside its grant",
    );
    let host_txt = "update add host.example.test. 60 TXT \"no\"";
    assert_rcode(
        nsupdate(MASTER, Some(&host), host_txt),
        "REFUSED",
        "host's key, TXT not granted",
    );
    let (ok, text) = nsupdate(
        MASTER,
        Some(&host),
        "update add host.example.test. 60 A 192.0.2.8",
    );
    assert!(ok, "host's key adds its A:\n{text}");
    assert!(
        !master.stderr().contains("secret"),
        "no secret in the log:\n{}",
        master.stderr()
    );

    let cases = [
        ("prereq yxdomain nothing-here.example.test.", "NXDOMAIN"),
        ("prereq nxdomain www.example.test.", "YXDOMAIN"),
        ("prereq yxrrset host.example.test. AAAA", "NXRRSET"),
        ("prereq nxrrset host.example.test. A", "YXRRSET"),
        ("prereq yxrrset host.example.test. A 192.0.2.99", "NXRRSET"),
    ];
    for (prereq, rcode) in cases {
        let commands = format!("{prereq}\nupdate add host.example.test. 60 AAAA 2001:db8::8");
        assert_rcode(nsupdate(MASTER, Some(&host), &commands), rcode, prereq);
    }
    assert_eq!(
        kdig(&[
            "@127.0.16.4",
            "-p",
            "5400",
            "+short",
            "host.example.test.",
            "AAAA"
        ])
        .trim(),
        "",
        "no failed update changed anything"
    );
    let commands = "prereq yxrrset host.example.test. A 192.0.2.8\nupdate add host.example.test. 60 AAAA 2001:db8::8";
    let (ok, text) = nsupdate(MASTER, Some(&host), commands);
    assert!(
        ok,
        "a holding value-dependent prerequisite lets the update through:\n{text}"
    );

    let notzone = "update add host.example.net. 60 A 192.0.2.9";
    assert_rcode(
        nsupdate(MASTER, Some(&host), notzone),
        "NOTZONE",
        "a name outside the zone",
    );
    let (ok, text) = nsupdate(WORKERS[0], Some(&web), &add);
    assert!(
        !ok && text.contains("REFUSED"),
        "a worker refuses updates (they go to the master):\n{text}"
    );
    master.stop();
}

#[test]
fn restarts_kill_9_and_reloads_keep_acknowledged_updates() {
    let _gate = common::gate();
    const MASTER: &str = "127.0.16.6";
    const WORKERS: [&str; 1] = ["127.0.16.7"];
    let (cluster, web, _) = cluster(MASTER, &WORKERS);
    let (master, _workers) = start(&cluster);
    let (ok, text) = nsupdate(
        MASTER,
        Some(&web),
        &format!("update add {CHALLENGE} 60 TXT \"kept\""),
    );
    assert!(ok, "{text}");
    master.stop();
    let master = cluster.start_master();
    assert_eq!(
        txt(MASTER, CHALLENGE),
        ["kept"],
        "a clean restart loses nothing"
    );

    // Acknowledged, then killed before anything else can happen.
    let (ok, text) = nsupdate(
        MASTER,
        Some(&web),
        &format!("update add {CHALLENGE} 60 TXT \"killed\""),
    );
    master.signal("KILL");
    assert!(ok, "{text}");
    drop(master);
    let master = cluster.start_master();
    let want = ["killed", "kept"];
    let mut want_sorted = want.to_vec();
    want_sorted.sort();
    assert_eq!(
        txt(MASTER, CHALLENGE),
        want_sorted,
        "kill -9 after NOERROR loses nothing"
    );
    follow(
        &WORKERS,
        CHALLENGE,
        &want_sorted,
        Instant::now(),
        "after kill -9",
    );

    master.stop();
}

#[test]
fn sighup_replays_updates_until_the_files_serial_moves() {
    let _gate = common::gate();
    const MASTER: &str = "127.0.16.8";
    const WORKERS: [&str; 1] = ["127.0.16.9"];
    let (cluster, web, _) = cluster(MASTER, &WORKERS);
    let (master, _workers) = start(&cluster);
    let add = format!("update add {CHALLENGE} 60 TXT \"kept\"");
    let (ok, text) = nsupdate(MASTER, Some(&web), &add);
    assert!(ok, "{text}");
    let want = vec!["kept".to_string()];

    // SIGHUP with the file's serial unchanged: the changes are replayed on top of it.
    let zone = cluster.scratch.path("example.test.zone");
    let text = std::fs::read_to_string(&zone).unwrap();
    std::fs::write(&zone, format!("{text}edited IN A 192.0.2.50\n")).unwrap();
    master.signal("HUP");
    wait_for("the edit served", Duration::from_secs(5), || {
        kdig(&[
            "@127.0.16.8",
            "-p",
            "5400",
            "+short",
            "edited.example.test.",
            "A",
        ])
        .contains("192.0.2.50")
        .then_some(())
    });
    assert_eq!(
        txt(MASTER, CHALLENGE),
        want,
        "an edit without a new serial keeps them"
    );
    follow(
        &WORKERS,
        CHALLENGE,
        &["kept"],
        Instant::now(),
        "after the edit",
    );

    // SIGHUP with a new serial in the file: the file wins, the changes are set aside.
    let text = std::fs::read_to_string(&zone)
        .unwrap()
        .replace("2026112201 ; serial", "2026112301 ; serial");
    std::fs::write(&zone, text).unwrap();
    master.signal("HUP");
    master.wait_log(
        "dynamic updates made against the old file are dropped",
        Duration::from_secs(5),
    );
    assert_eq!(
        txt(MASTER, CHALLENGE),
        Vec::<String>::new(),
        "the edited file wins"
    );
    follow(
        &WORKERS,
        CHALLENGE,
        &[],
        Instant::now(),
        "after the file's new serial",
    );
    assert!(
        cluster
            .scratch
            .path("master-state/dynamic/example.test.changes.dropped")
            .exists(),
        "the dropped changes are kept for the operator"
    );
    master.stop();
}

/// Adds TXT `value` at the challenge name with `key` over UDP; returns when the signed
/// NOERROR arrived.
fn send_update(ip: &str, key: &TsigKey, value: &str) -> Instant {
    use hickory_proto::{
        op::{Message, MessageType, OpCode, Query, ResponseCode},
        rr::{Record, rdata::TXT},
    };
    let mut message = Message::new(4242, MessageType::Query, OpCode::Update);
    message.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::SOA,
    ));
    message.add_authority(Record::from_rdata(
        Name::from_ascii(CHALLENGE).unwrap(),
        60,
        RData::TXT(TXT::new(vec![value.to_string()])),
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    message.finalize(&key.signer(), now).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let sent = Instant::now();
    socket
        .send_to(&message.to_vec().unwrap(), format!("{ip}:5400"))
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer to the update");
    let acknowledged = Instant::now();
    println!(
        "update sent -> NOERROR: {:.1} ms",
        (acknowledged - sent).as_secs_f64() * 1000.0
    );
    let answer = client::parse(&buf[..n]);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.signature().is_some(), "the answer is TSIG-signed");
    acknowledged
}

fn soa_serial(ip: &str) -> u32 {
    let out = kdig(
        &[
            "@".to_string() + ip,
            "-p".into(),
            "5400".into(),
            "+short".into(),
            "example.test.".into(),
            "SOA".into(),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    out.split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA serial from {ip}: {out}"))
}
