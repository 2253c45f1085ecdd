//! Watching a cluster as an operator does: a real Prometheus scraping every node
//! of `cluster up` and evaluating `dist/prometheus/alerts.yml`; `certzone status` against
//! the same cluster (all well, a stopped worker, a refused bundle); `promtool` on the
//! alerting rules. Addresses 127.0.150.x.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::Duration,
};

use crate::common::{self, Node, certzone, http::http_get, kdig, repo, wait_for};
use serde_json::Value;

const IPS: [&str; 3] = ["127.0.150.1", "127.0.150.2", "127.0.150.3"];
const METRICS_PORT: u16 = 9153;
const PROMETHEUS: &str = "127.0.150.9:9090";

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
    let _gate = common::gate();
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

    query_counters_grow(&prometheus);
    status_all_well(&config, &not_after[0].0["fingerprint"]);

    stopped_worker_is_down(&prometheus, &config, &state);
    refused_bundle_is_counted(&prometheus, &config, &state);

    cluster.signal("INT");
    assert_eq!(cluster.wait_exit(Duration::from_secs(20)), Some(0));
}

/// Query counters grow after a kdig loop against worker1.
fn query_counters_grow(prometheus: &Prometheus) {
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
}

/// `certzone status`: every node reachable, the same leaf, no lag; exit 0.
fn status_all_well(config: &Path, fingerprint: &str) {
    let (code, out) = status(config, false);
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("status: all well"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| IPS.iter().any(|ip| l.contains(ip)))
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    let fingerprint = &fingerprint[..16];
    for row in &rows {
        assert!(row.contains(" yes ") && row.contains(fingerprint), "{row}");
    }
    // One node's own file: the worker, with its primary as the reference.
    let node = config
        .parent()
        .unwrap()
        .join("../state/cluster/nodes/worker1/node.toml");
    let (code, out) = status(&node, false);
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("primary ") && l.contains(" yes ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("node ") && l.contains(fingerprint)),
        "{out}"
    );
    let (_, json) = status(config, true);
    let json: Value = serde_json::from_str(&json).unwrap();
    for node in json["nodes"].as_array().unwrap() {
        assert_eq!(node["lag"], 0, "{node}");
        assert_eq!(node["problems"].as_array().map(Vec::len), Some(0), "{node}");
    }
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
    let _gate = common::gate();
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
