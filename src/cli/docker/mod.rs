//! `certzone cluster docker up | test | down | logs`: any cluster file with a `[docker]`
//! table run as containers on a docker network of its own, and the fault scenarios run
//! against it.
//!
//! Owns the commands, their messages and exit codes (0 done, 1 a failure once containers
//! were started, 2 refused before anything was started: a bad cluster file, a missing
//! docker, compose or program, a subnet in use, a cluster already up), and the logs left
//! for a look. Docker is reached through its CLI (`engine`); the cluster's files come from
//! `cluster::render` like any other node directory.

mod certificate;
mod compose;
mod engine;
mod image;
mod kdig;
mod project;
mod scenarios;
mod testca;
mod up;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Subcommand;

use super::EXIT_BAD_CONFIG;
use engine::SLOW;
use project::Project;

#[derive(Debug, Subcommand)]
pub(super) enum DockerCommand {
    /// Render every node, build the image (or use the one named), start the compose
    /// project and wait until every node serves the master's certificate over DoT.
    Up {
        #[arg(long, short)]
        config: PathBuf,
        /// How long to wait for every node to serve the certificate.
        #[arg(long, default_value_t = 180)]
        timeout_secs: u64,
    },
    /// Run the fault scenarios (all, or those named: --scenario a,c) against the cluster,
    /// bringing it up first when it is not up.
    Test {
        #[arg(long, short)]
        config: PathBuf,
        /// Scenario letters, comma-separated: a bring-up, b renewal, c master killed,
        /// d worker cut off, e worker restarted alone, f rolling restart.
        #[arg(long)]
        scenario: Option<String>,
        /// How long bring-up may take, when the cluster is not up.
        #[arg(long, default_value_t = 180)]
        timeout_secs: u64,
    },
    /// Remove the containers and the network; every node's state is kept.
    Down {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print each node's log (or one node's, or the test CA's or the client's).
    Logs {
        #[arg(long, short)]
        config: PathBuf,
        node: Option<String>,
        /// Only the last N lines of each.
        #[arg(long)]
        tail: Option<usize>,
    },
}

/// Why a command stopped: refused before it started anything (exit 2), or failed (exit 1).
#[derive(Debug, thiserror::Error)]
pub(super) enum Problem {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

pub(super) fn docker(command: &DockerCommand) -> ExitCode {
    let result = match command {
        DockerCommand::Up {
            config,
            timeout_secs,
        } => Project::load(config).and_then(|p| {
            let ready = up::up(&p, Duration::from_secs(*timeout_secs)).inspect_err(|e| {
                if matches!(e, Problem::Failed(_)) {
                    leave_logs(&p);
                }
            })?;
            up::print_table(&p, &ready);
            Ok(ExitCode::SUCCESS)
        }),
        DockerCommand::Test {
            config,
            scenario,
            timeout_secs,
        } => scenarios::select(scenario.as_deref()).and_then(|chosen| {
            let project = Project::load(config)?;
            scenarios::test(&project, &chosen, Duration::from_secs(*timeout_secs))
        }),
        DockerCommand::Down { config } => Project::load(config).and_then(|p| down(&p)),
        DockerCommand::Logs { config, node, tail } => {
            Project::load(config).and_then(|p| logs(&p, node.as_deref(), *tail))
        }
    };
    match result {
        Ok(code) => code,
        Err(Problem::Refused(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
        Err(Problem::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Removes the containers and the network, and says so; the state directory stays.
fn down(project: &Project) -> Result<ExitCode, Problem> {
    let containers = project.containers().map_err(up::failed)?;
    let network = project.network_exists().map_err(up::failed)?;
    if containers.is_empty() && !network {
        println!("cluster {} is not up: nothing to remove", project.name());
        return Ok(ExitCode::SUCCESS);
    }
    if project.compose_file().exists() {
        project
            .compose(&["down", "--timeout", "10"], SLOW)
            .map_err(up::failed)?;
    }
    // Without its compose file (deleted by hand), by label and by name.
    for container in project.containers().map_err(up::failed)? {
        project
            .engine
            .docker(&["rm", "--force", &container.name], SLOW)
            .map_err(up::failed)?;
    }
    if project.network_exists().map_err(up::failed)? {
        project
            .engine
            .docker(&["network", "rm", project.network()], SLOW)
            .map_err(up::failed)?;
    }
    println!(
        "cluster {}: removed {} containers and network {}; every node's state is kept in {} \
         (`up` resumes from it)",
        project.name(),
        containers.len(),
        project.network(),
        project.cluster.state_dir.join("nodes").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Each service's log, or the one named.
fn logs(project: &Project, only: Option<&str>, tail: Option<usize>) -> Result<ExitCode, Problem> {
    let services = project.services();
    let chosen: Vec<&String> = match only {
        Some(name) => {
            let found = services.iter().find(|s| *s == name).ok_or_else(|| {
                Problem::Refused(format!(
                    "no node or service {name:?} in cluster {}: choose from {}",
                    project.name(),
                    services.join(", ")
                ))
            })?;
            vec![found]
        }
        None => services.iter().collect(),
    };
    let existing = project.containers().map_err(up::failed)?;
    if existing.is_empty() {
        return Err(Problem::Failed(format!(
            "cluster {} is not up: no container has a log (a failed run's logs are in {})",
            project.name(),
            project.dir.join("logs").display()
        )));
    }
    for service in chosen {
        println!("== {service} ({})", project.container(service));
        let log = project.logs(service, None);
        let lines: Vec<&str> = log.lines().collect();
        let from = tail.map_or(0, |n| lines.len().saturating_sub(n));
        for line in &lines[from..] {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// After a failure: every container's whole log saved under `<state-dir>/docker/logs/`,
/// and the end of each printed.
fn leave_logs(project: &Project) {
    // A failure before any container started (the image, the compose file) has no logs.
    if project.containers().is_ok_and(|c| c.is_empty()) {
        return;
    }
    let dir = project.dir.join("logs");
    let _ = std::fs::create_dir_all(&dir);
    for service in project.services() {
        let log = project.logs(&service, None);
        let _ = std::fs::write(dir.join(format!("{service}.log")), &log);
    }
    println!("{}", tails(project, 20));
    println!("every container's whole log: {}/", dir.display());
}

/// The last `lines` lines of every container's log.
fn tails(project: &Project, lines: usize) -> String {
    let mut out = String::new();
    for service in project.services() {
        let log = project.logs(&service, None);
        let all: Vec<&str> = log.lines().collect();
        out.push_str(&format!("\n--- the end of {service}'s log ---\n"));
        out.push_str(&all[all.len().saturating_sub(lines)..].join("\n"));
        out.push('\n');
    }
    out
}
