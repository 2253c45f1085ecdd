//! DoT queries from the client container to some nodes, round after round, in a busybox
//! shell loop, while a scenario breaks the cluster: the load a user's clients put on it.
//!
//! Owns the loop's script, its output file in the client's directory (each query's kdig
//! output after a line `== query ROUND IP STATUS`) and its stop file. The loop stops on the
//! stop file or after [`LIMIT_SECS`], whatever happens to this process.

use std::{
    path::PathBuf,
    process::Child,
    time::{Duration, Instant},
};

use super::{Failure, Run, wait_for};
use crate::cli::docker::{
    kdig::{self, Answer, Transport},
    project::CLIENT_MOUNT,
};
use crate::cluster::{NodeSpec, docker::CLIENT};

/// The loop ends by itself after this long.
const LIMIT_SECS: u64 = 300;

/// One query of the loop.
pub(super) struct Query {
    pub(super) round: u32,
    pub(super) ip: String,
    /// The leaf's pin when the answer was verified and carried the SOA.
    pub(super) pin: Option<String>,
    pub(super) output: String,
}

pub(super) struct QueryLoop<'a> {
    run: &'a Run<'a>,
    ips: Vec<String>,
    process: Child,
    output: PathBuf,
    stop: PathBuf,
}

impl<'a> QueryLoop<'a> {
    /// Starts querying `nodes` over DoT.
    pub(super) fn start(run: &'a Run<'a>, nodes: &[NodeSpec]) -> Result<Self, Failure> {
        let dir = run.project.client_dir();
        let (output, stop) = (dir.join("loop.out"), dir.join("stop"));
        for file in [&output, &stop] {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Failure(format!("failed to remove {}: {e}", file.display()))),
            }
        }
        let ips: Vec<String> = nodes.iter().map(|n| n.address.to_string()).collect();
        let query: Vec<String> = kdig::debug(kdig::args(run.project, "$ip", Transport::Tls))
            .into_iter()
            .map(|a| {
                if a.contains("$ip") {
                    format!("\"{a}\"")
                } else {
                    format!("'{a}'")
                }
            })
            .collect();
        let script = format!(
            "end=$(( $(date +%s) + {LIMIT_SECS} )); n=0
             while [ ! -e {CLIENT_MOUNT}/stop ] && [ \"$(date +%s)\" -lt \"$end\" ]; do
               n=$((n + 1))
               for ip in {ips}; do
                 out=$({query} 2>&1)
                 printf '== query %s %s %s\\n%s\\n' \"$n\" \"$ip\" \"$?\" \"$out\"
               done
             done >> {CLIENT_MOUNT}/loop.out",
            ips = ips.join(" "),
            query = query.join(" ")
        );
        let client = run.project.container(CLIENT);
        let process = run
            .project
            .engine
            .spawn_docker(&["exec", &client, "sh", "-c", &script])?;
        Ok(Self {
            run,
            ips,
            process,
            output,
            stop,
        })
    }

    /// Waits until `count` more rounds have finished.
    pub(super) fn wait_rounds(&self, count: u32) -> Result<(), Failure> {
        let target = self.finished_rounds() + count;
        wait_for(
            &format!("{count} more rounds of the client's queries"),
            Duration::from_secs(60),
            || (self.finished_rounds() >= target).then_some(()),
        )
    }

    /// Rounds with an answer (or a failure) from every node.
    fn finished_rounds(&self) -> u32 {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let mut counts = std::collections::HashMap::new();
        for line in text.lines().filter(|l| l.starts_with("== query ")) {
            if let Some(round) = line.split_whitespace().nth(2) {
                *counts.entry(round.to_string()).or_insert(0usize) += 1;
            }
        }
        counts.values().filter(|n| **n == self.ips.len()).count() as u32
    }

    /// Stops the loop and reads every query.
    pub(super) fn finish(mut self) -> Result<Vec<Query>, Failure> {
        self.stop_loop()?;
        let text = std::fs::read_to_string(&self.output)
            .map_err(|e| Failure(format!("failed to read {}: {e}", self.output.display())))?;
        Ok(parse(&self.run.domain(), &text))
    }

    fn stop_loop(&mut self) -> Result<(), Failure> {
        std::fs::write(&self.stop, b"")
            .map_err(|e| Failure(format!("failed to write {}: {e}", self.stop.display())))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.process.try_wait().ok().flatten().is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        Err(Failure(
            "the client's query loop did not stop within 30 s of its stop file".into(),
        ))
    }
}

impl Drop for QueryLoop<'_> {
    /// A scenario that failed half-way stops its loop too.
    fn drop(&mut self) {
        if self.process.try_wait().ok().flatten().is_none() {
            let _ = self.stop_loop();
        }
    }
}

/// The loop's output, query by query.
fn parse(domain: &str, text: &str) -> Vec<Query> {
    let mut queries: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("== query ") {
            queries.push((line.to_string(), String::new()));
        } else if let Some((_, output)) = queries.last_mut() {
            output.push_str(line);
            output.push('\n');
        }
    }
    queries
        .into_iter()
        .filter_map(|(header, output)| {
            let fields: Vec<&str> = header.split_whitespace().collect();
            let [_, _, round, ip, status] = fields.as_slice() else {
                return None;
            };
            let pin = (*status == "0")
                .then(|| Answer::parse(domain, &output))
                .flatten()
                .filter(Answer::serves)
                .map(|a| a.pin);
            Some(Query {
                round: round.parse().ok()?,
                ip: ip.to_string(),
                pin,
                output,
            })
        })
        .collect()
}
