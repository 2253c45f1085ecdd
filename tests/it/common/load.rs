//! dnsperf, the load generator users run, on a thread of its own, and what its report says.

use std::{process::Command, thread::JoinHandle};

/// Runs `dnsperf ARGS` on a thread; joining gives its report (it must succeed).
pub fn dnsperf(args: &[&str]) -> JoinHandle<String> {
    let mut command = Command::new("dnsperf");
    command.args(args);
    std::thread::spawn(move || {
        let out = command
            .output()
            .expect("run dnsperf (installed by tests/setup.sh)");
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dnsperf failed: {report}{stderr}");
        report
    })
}

/// The number after `name` on its line of the report ("Queries completed:", say).
pub fn field(report: &str, name: &str) -> f64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in dnsperf's report:\n{report}"))
}

/// The mean response size ("Average packet size: request N, response M").
pub fn mean_response_size(report: &str) -> f64 {
    report
        .lines()
        .find(|l| l.contains("Average packet size:"))
        .and_then(|l| l.split("response ").nth(1))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("dnsperf's mean response size:\n{report}"))
}

/// The lines of the report worth printing.
pub fn summary(report: &str) -> String {
    const KEYS: [&str; 5] = [
        "Queries sent",
        "Queries completed",
        "Queries lost",
        "Response codes",
        "Queries per second",
    ];
    report
        .lines()
        .filter(|l| KEYS.iter().any(|k| l.contains(k)))
        .collect::<Vec<_>>()
        .join("\n")
}
