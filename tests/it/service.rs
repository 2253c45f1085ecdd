//! A node as a service manager and a log shipper see it: `/healthz` and
//! `/readyz` of a worker before and after its first bundle; every JSON log line of a
//! start-up, a transfer and a renewal; the systemd units verified; READY=1 sent to
//! NOTIFY_SOCKET only once the listeners answer. Addresses 127.0.151.x.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::common::{self, cluster::Cluster, http::http_get, kdig, repo, wait_for};
use serde_json::Value;

fn kill(signal: &str, pid: &str) {
    let ok = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(ok.success(), "kill {signal} {pid}");
}

/// A node run with JSON logs, its standard output and error in one file.
struct JsonNode {
    child: Child,
    log: PathBuf,
}

impl JsonNode {
    fn start(config: &Path, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(common::binary())
            .args(["run", "--config", config.to_str().unwrap()])
            .env("CERTZONE_LOG_FORMAT", "json")
            .env("CERTZONE_LOG", "info,certzone=debug")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// SIGTERM, a clean exit, and every line of its log as JSON.
    fn stop(mut self) -> Vec<Value> {
        kill("-TERM", &self.child.id().to_string());
        let status = wait_for("the node to exit", Duration::from_secs(10), || {
            self.child.try_wait().unwrap()
        });
        let text = std::fs::read_to_string(&self.log).unwrap();
        assert!(status.success(), "{text}");
        parse_json_lines(&text)
    }
}

impl Drop for JsonNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line must be one JSON object with the stable fields.
fn parse_json_lines(text: &str) -> Vec<Value> {
    assert!(!text.trim().is_empty(), "the node logged nothing");
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            for field in ["timestamp", "level", "message"] {
                assert!(value[field].is_string(), "no {field}: {line}");
            }
            value
        })
        .collect()
}

fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message"] == message).collect()
}

#[test]
fn readyz_waits_for_the_first_bundle_and_json_logs_parse() {
    let _gate = common::gate();
    let ips = ["127.0.151.1", "127.0.151.2"];
    let cluster = Cluster::new(ips[0], &ips[1..], &[0]);
    let metrics = |ip: &str| format!("{ip}:9154");
    for (path, ip) in [
        (cluster.master_config(), ips[0]),
        (cluster.worker_config(0), ips[1]),
    ] {
        let text = std::fs::read_to_string(&path).unwrap();
        let text = format!("{text}\n[metrics]\nlisten = \"{}\"\n", metrics(ip));
        std::fs::write(&path, text).unwrap();
    }
    let dir = cluster.scratch.dir.path();
    let worker = JsonNode::start(&cluster.worker_config(0), dir.join("worker.log"));
    // Serving, but without a certificate: healthy, not ready.
    wait_for("the worker's /healthz", Duration::from_secs(10), || {
        http_get(&metrics(ips[1]), "/healthz").filter(|(s, _)| *s == 200)
    });
    let (code, body) = http_get(&metrics(ips[1]), "/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no certificate"), "{body}");

    let master = JsonNode::start(&cluster.master_config(), dir.join("master.log"));
    wait_for(
        "the worker's /readyz to turn 200",
        Duration::from_secs(30),
        || http_get(&metrics(ips[1]), "/readyz").filter(|(s, _)| *s == 200),
    );
    let leaf = cluster.served_leaf(ips[0]).expect("the master serves");
    cluster.wait_serving(ips[1], &leaf, Duration::from_secs(10));
    assert_eq!(
        http_get(&metrics(ips[1]), "/healthz").map(|r| r.0),
        Some(200)
    );

    // A renewal: new PEM files and SIGHUP on the master; the worker follows.
    let renewed = cluster.renew_files();
    kill("-HUP", &master.child.id().to_string());
    cluster.wait_serving(ips[1], &renewed, Duration::from_secs(20));

    let worker_lines = worker.stop();
    let master_lines = master.stop();
    json_events_keep_their_fields(&worker_lines, &master_lines);
}

/// The banner is one event, and events keep their fields beside timestamp, level and
/// message: a transfer, the installed bundles (first and renewed), a SIGHUP.
fn json_events_keep_their_fields(worker_lines: &[Value], master_lines: &[Value]) {
    for lines in [worker_lines, master_lines] {
        let ready = with_message(lines, "certzone ready");
        assert_eq!(ready.len(), 1, "the banner is one JSON event");
    }
    // The events keep their fields beside timestamp, level and message.
    let transferred = with_message(worker_lines, "zone transferred");
    assert!(
        transferred
            .iter()
            .any(|l| l["zone"] == "example.test." && l["serial"].is_u64()),
        "{transferred:?}"
    );
    let installed: Vec<&Value> = with_message(
        worker_lines,
        "certificate installed from the certificate zone",
    )
    .into_iter()
    .filter(|l| l["version"].is_u64() && l["sha256"].is_string())
    .collect();
    assert!(
        installed.len() >= 2,
        "the first bundle and the renewed one: {installed:?}"
    );
    let reread = with_message(master_lines, "zones re-read");
    assert_eq!(reread.len(), 1, "the master's SIGHUP");
    assert!(reread[0]["changed"].is_u64() && reread[0]["level"] == "INFO");
}

#[test]
fn systemd_units_verify() {
    let _gate = common::gate();
    // `systemd-analyze verify` needs the ExecStart binary to exist: the units are checked
    // with the binary under test in place of /usr/local/bin/certzone, nothing else changed.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: systemd-analyze is not installed; the units were not verified");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for role in ["master", "worker"] {
        let name = format!("certzone-{role}.service");
        let text = std::fs::read_to_string(repo().join("dist/systemd").join(&name)).unwrap();
        for needed in [
            "Type=notify",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "User=certzone",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "StateDirectory=certzone",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
        ] {
            assert!(text.contains(needed), "{name} lacks {needed}");
        }
        let path = scratch.path().join(&name);
        std::fs::write(
            &path,
            text.replace("/usr/local/bin/certzone", common::binary()),
        )
        .unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys are only warnings to systemd-analyze: none may be printed either.
    assert!(stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn tells_systemd_it_is_ready_once_its_listeners_answer() {
    let _gate = common::gate();
    use std::os::unix::net::UnixDatagram;
    let cluster = Cluster::new("127.0.151.5", &[], &[]);
    let dir = cluster.scratch.dir.path();
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(common::binary())
        .args(["run", "--config", cluster.master_config().to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut message = [0u8; 512];
    let received = socket.recv(&mut message);
    // Asked at once: every listener must already answer.
    let answer = kdig(&["@127.0.151.5", "-p", "5400", "+tcp", "example.test", "SOA"]);
    let tls = cluster.served_leaf("127.0.151.5");
    let _ = child.kill();
    let _ = child.wait();
    let n = received.expect("a READY=1 datagram within 20 s");
    assert_eq!(
        std::str::from_utf8(&message[..n]).unwrap().trim(),
        "READY=1"
    );
    assert!(answer.contains("status: NOERROR"), "{answer}");
    assert!(
        tls.is_some(),
        "DoT answers with the certificate when READY=1 is sent"
    );
}
