//! Watching a cluster as an operator does (issue 15): a real Prometheus scraping every node
//! of `cluster up` and evaluating `dist/prometheus/alerts.yml`; `certzone status` against
//! the same cluster (all well, a stopped worker, a refused bundle); `promtool` on the
//! alerting rules; `/healthz` and `/readyz` of a worker before and after its first bundle;
//! every JSON log line of a start-up, a transfer and a renewal. Addresses 127.0.150.x
//! (cluster up, Prometheus) and 127.0.151.x (the worker's readiness).

mod common;

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{Node, certzone, cluster::Cluster, kdig, repo, wait_for};
use serde_json::Value;

const IPS: [&str; 3] = ["127.0.150.1", "127.0.150.2", "127.0.150.3"];
const METRICS_PORT: u16 = 9153;
const PROMETHEUS: &str = "127.0.150.9:9090";

/// GET `path` over HTTP/1.0: the status and the body, or None when nothing answers in time.
fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    let address: SocketAddr = address.parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The example cluster file at this test's addresses, with `ports.metrics` set.
fn example(scratch: &Path) -> PathBuf {
    std::fs::create_dir_all(scratch.join("config")).unwrap();
    std::fs::create_dir_all(scratch.join("zones")).unwrap();
    std::fs::copy(
        repo().join("zones/example.test.zone"),
        scratch.join("zones/example.test.zone"),
    )
    .unwrap();
    let mut text = std::fs::read_to_string(repo().join("config/cluster.toml")).unwrap();
    for (i, ip) in IPS.iter().enumerate() {
        let shipped = format!("address = \"127.0.0.{}\"", i + 1);
        assert!(text.contains(&shipped), "example file has {shipped}");
        text = text.replace(&shipped, &format!("address = \"{ip}\""));
    }
    assert!(text.contains("[ports]\n"));
    text = text.replace("[ports]\n", &format!("[ports]\nmetrics = {METRICS_PORT}\n"));
    let path = scratch.join("config/cluster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Prometheus (Debian's package) scraping every node each second, with the alerting rules.
struct Prometheus {
    child: Child,
}

impl Prometheus {
    fn start(dir: &Path) -> Self {
        let targets: Vec<String> = IPS
            .iter()
            .map(|ip| format!("'{ip}:{METRICS_PORT}'"))
            .collect();
        let rules = repo().join("dist/prometheus/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: certzone\n    static_configs:\n      - targets: [{}]\n",
            rules.display(),
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus (tests/setup.sh installs it)");
        Self { child }
    }

    /// The result vector of an instant query: (labels, value) per series.
    fn query(&self, expr: &str) -> Vec<(HashMap<String, String>, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let Some((200, body)) = http_get(PROMETHEUS, &path) else {
            return Vec::new();
        };
        let json: Value = serde_json::from_str(&body).unwrap();
        let results = json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        results
            .iter()
            .map(|r| {
                let labels = (r["metric"].as_object().unwrap().iter())
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// The value of `expr` for `instance`, once Prometheus has one.
    fn value(&self, expr: &str, instance: &str) -> Option<f64> {
        self.query(expr)
            .into_iter()
            .find(|(labels, _)| labels.get("instance").map(String::as_str) == Some(instance))
            .map(|(_, v)| v)
    }

    /// Names of the alerts firing now.
    fn firing(&self) -> Vec<(String, String)> {
        let Some((200, body)) = http_get(PROMETHEUS, "/api/v1/alerts") else {
            return Vec::new();
        };
        let json: Value = serde_json::from_str(&body).unwrap();
        let alerts = json["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (alerts.iter())
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let labels = &a["labels"];
                let name = labels["alertname"].as_str().unwrap_or_default().to_string();
                let instance = labels["instance"].as_str().unwrap_or_default().to_string();
                (name, instance)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn instance(ip: &str) -> String {
    format!("{ip}:{METRICS_PORT}")
}

/// `certzone status --config FILE [--json]`: exit code and standard output.
fn status(config: &Path, json: bool) -> (i32, String) {
    let mut args = vec!["status", "--config", config.to_str().unwrap()];
    if json {
        args.push("--json");
    }
    let out = certzone(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap(), stdout)
}

/// A node's pid, from the pid file `certzone run` keeps in its state directory.
fn node_pid(state: &Path, node: &str) -> String {
    let path = state.join(format!("nodes/{node}/state/certzone.pid"));
    std::fs::read_to_string(&path).unwrap().trim().to_string()
}

fn kill(signal: &str, pid: &str) {
    let ok = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(ok.success(), "kill {signal} {pid}");
}

#[test]
fn prometheus_and_status_see_every_node_of_cluster_up() {
    let scratch = tempfile::tempdir().unwrap();
    let config = example(scratch.path());
    let state = scratch.path().join("state/cluster");
    let args = ["cluster", "up", "--config"].map(std::ffi::OsStr::new);
    let mut args = args.to_vec();
    args.push(config.as_os_str());
    let mut cluster = Node::spawn_args(&args, &config);
    cluster.wait_stdout_line("cluster ready", Duration::from_secs(60));
    let prometheus = Prometheus::start(scratch.path());

    // Every node scraped, each with the certificate's not-after: one leaf, valid for days.
    let not_after = wait_for(
        "Prometheus to scrape every node's not-after",
        Duration::from_secs(30),
        || {
            let seen = prometheus.query("certzone_certificate_not_after_seconds");
            (seen.len() == 3).then_some(seen)
        },
    );
    let now = common::cluster::now() as f64;
    for (labels, value) in &not_after {
        assert!(*value > now + 86_400.0, "{labels:?} not after {value}");
        assert_eq!(*value, not_after[0].1, "every node holds the same leaf");
    }
    let masters = prometheus.query("certzone_certificate_info{role=\"master\"}");
    assert_eq!(masters.len(), 1, "{masters:?}");

    // Query counters grow after a kdig loop against worker1.
    let worker1 = instance(IPS[1]);
    let expr = "sum by (instance) (certzone_queries_total{transport=\"udp\"})";
    let before = wait_for("worker1's query counter", Duration::from_secs(10), || {
        prometheus.value(expr, &worker1)
    });
    for _ in 0..30 {
        let out = kdig(&[
            &format!("@{}", IPS[1]),
            "-p",
            "5300",
            "www.example.test",
            "A",
        ]);
        assert!(out.contains("status: NOERROR"), "{out}");
    }
    wait_for(
        "worker1's query counter to grow by 30",
        Duration::from_secs(15),
        || {
            prometheus
                .value(expr, &worker1)
                .filter(|v| *v >= before + 30.0)
        },
    );

    // `certzone status`: every node reachable, the same leaf, no lag.
    let (code, out) = status(&config, false);
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("status: all well"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| IPS.iter().any(|ip| l.contains(ip)))
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    let fingerprint = &not_after[0].0["fingerprint"][..16];
    for row in &rows {
        assert!(row.contains(" yes ") && row.contains(fingerprint), "{row}");
    }

    stopped_worker_is_down(&prometheus, &config, &state);
    refused_bundle_is_counted(&prometheus, &config, &state);

    cluster.signal("INT");
    assert_eq!(cluster.wait_exit(Duration::from_secs(20)), Some(0));
}

/// SIGSTOP on worker2: Prometheus's `up` goes to 0 and `certzone status` exits 2.
fn stopped_worker_is_down(prometheus: &Prometheus, config: &Path, state: &Path) {
    let worker2 = instance(IPS[2]);
    let pid = node_pid(state, "worker2");
    kill("-STOP", &pid);
    wait_for(
        "up == 0 for the stopped worker",
        Duration::from_secs(20),
        || prometheus.value("up", &worker2).filter(|v| *v == 0.0),
    );
    assert_eq!(prometheus.value("up", &instance(IPS[1])), Some(1.0));
    let (code, out) = status(config, false);
    println!("{out}");
    kill("-CONT", &pid);
    assert_eq!(code, 2, "{out}");
    let row = out.lines().find(|l| l.contains(IPS[2])).unwrap();
    assert!(row.contains(" NO "), "{row}");
    assert!(out.contains("worker2: unreachable"), "{out}");
    wait_for("up == 1 again", Duration::from_secs(20), || {
        prometheus.value("up", &worker2).filter(|v| *v == 1.0)
    });
}

/// The master signs with a key the workers do not trust (a forged zone, as far as they
/// can tell): they refuse it, and status, metrics and the alert all say so.
fn refused_bundle_is_counted(prometheus: &Prometheus, config: &Path, state: &Path) {
    let key = state.join("nodes/master/signing.key");
    let out = certzone(&[
        "keygen",
        "signing",
        "--out",
        key.to_str().unwrap(),
        "--force",
    ]);
    assert!(out.status.success(), "{out:?}");
    kill("-HUP", &node_pid(state, "master"));
    let (code, out) = wait_for(
        "status to show both workers' refusals",
        Duration::from_secs(30),
        || {
            let (code, out) = status(config, true);
            let json: Value = serde_json::from_str(&out).unwrap();
            let refused: Vec<u64> = (json["nodes"].as_array().unwrap().iter())
                .filter(|n| n["role"] == "worker")
                .filter_map(|n| n["bundles_refused"].as_u64())
                .collect();
            (refused.len() == 2 && refused.iter().all(|r| *r >= 1)).then_some((code, out))
        },
    );
    println!("{out}");
    assert_ne!(code, 2, "every node still answers: {out}");
    let (_, table) = status(config, false);
    println!("{table}");
    let row = table.lines().find(|l| l.contains(IPS[1])).unwrap();
    assert!(
        row.split_whitespace()
            .nth(9)
            .is_some_and(|n| n != "0" && n != "-"),
        "{row}"
    );
    let expr = "certzone_bundles_refused_total{rule=\"signature\"}";
    wait_for(
        "Prometheus to see the signature refusal",
        Duration::from_secs(15),
        || {
            prometheus
                .value(expr, &instance(IPS[1]))
                .filter(|v| *v >= 1.0)
        },
    );
    wait_for(
        "CertzoneBundlesRefused to fire",
        Duration::from_secs(15),
        || {
            let firing = prometheus.firing();
            firing
                .iter()
                .any(|(name, i)| name == "CertzoneBundlesRefused" && *i == instance(IPS[1]))
                .then_some(())
        },
    );
}

#[test]
fn promtool_checks_and_tests_the_alerting_rules() {
    let dir = repo().join("dist/prometheus");
    let check = Command::new("promtool")
        .args(["check", "rules", "alerts.yml"])
        .current_dir(&dir)
        .output()
        .expect("run promtool (tests/setup.sh installs it)");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(text.contains("SUCCESS: 7 rules found"), "{text}");
    let test = Command::new("promtool")
        .args([
            "test",
            "rules",
            "alerts_test_expiry.yml",
            "alerts_test_cluster.yml",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&test.stderr)
    );
    assert_eq!(text.matches("SUCCESS").count(), 2, "{text}");
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
    for lines in [&worker_lines, &master_lines] {
        let ready = with_message(lines, "certzone ready");
        assert_eq!(ready.len(), 1, "the banner is one JSON event");
    }
    // The events keep their fields beside timestamp, level and message.
    let transferred = with_message(&worker_lines, "zone transferred");
    assert!(
        transferred
            .iter()
            .any(|l| l["zone"] == "example.test." && l["serial"].is_u64()),
        "{transferred:?}"
    );
    let installed: Vec<&Value> = with_message(
        &worker_lines,
        "certificate installed from the certificate zone",
    )
    .into_iter()
    .filter(|l| l["version"].is_u64() && l["sha256"].is_string())
    .collect();
    assert!(
        installed.len() >= 2,
        "the first bundle and the renewed one: {installed:?}"
    );
    let reread = with_message(&master_lines, "zones re-read");
    assert_eq!(reread.len(), 1, "the master's SIGHUP");
    assert!(reread[0]["changed"].is_u64() && reread[0]["level"] == "INFO");
}

#[test]
fn systemd_units_verify() {
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
