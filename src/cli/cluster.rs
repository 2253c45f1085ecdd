//! `certzone cluster render|up`: the cluster file turned into node directories, and run as
//! local processes for a first look (`cluster docker` is `cli::docker`).
//!
//! Owns the child processes of `up`: started together, watched, stopped together on Ctrl-C
//! or when one dies. It must not derive node settings (that is `cluster::render`) nor reach
//! into a node: it only reads what each one serves over DoT.

use std::{
    net::{SocketAddr, TcpListener, UdpSocket},
    path::{Component, Path, PathBuf},
    process::{ExitCode, Stdio},
    time::{Duration, Instant},
};

use clap::Subcommand;
use tokio::process::{Child, Command};

use super::{EXIT_BAD_CONFIG, probe};
use crate::{
    cluster::{Cluster, ClusterError, RenderedNode},
    tls::CertSummary,
};

#[derive(Debug, Subcommand)]
pub(super) enum ClusterCommand {
    /// Write every node's directory (node.toml and the files it names) under the cluster's
    /// state directory, making missing keys; prints each node's config file.
    Render {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run every node as a local process, wait until all serve the certificate, print a
    /// table and commands to try; Ctrl-C stops them all.
    Up {
        #[arg(long, short)]
        config: PathBuf,
        /// How long to wait for every node to serve the same certificate.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// The cluster on a docker network of its own ([docker] in the cluster file): up, the
    /// fault scenarios, down, logs.
    Docker {
        #[command(subcommand)]
        command: super::docker::DockerCommand,
    },
}

pub(super) fn cluster(command: &ClusterCommand) -> ExitCode {
    let (path, up) = match command {
        ClusterCommand::Render { config } => (config, None),
        ClusterCommand::Up {
            config,
            timeout_secs,
        } => (config, Some(Duration::from_secs(*timeout_secs))),
        ClusterCommand::Docker { command } => return super::docker::docker(command),
    };
    let cluster = match Cluster::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    if up.is_some()
        && let Err(e) = check_local(&cluster)
    {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    let nodes = match crate::cluster::render(&cluster).and_then(check_rendered) {
        Ok(nodes) => nodes,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let Some(timeout) = up else {
        for node in &nodes {
            println!(
                "{:<12} {:<6} {}",
                node.node.name,
                node.node.role.as_str(),
                tidy(&node.config).display()
            );
        }
        return ExitCode::SUCCESS;
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(up_cluster(&cluster, &nodes, timeout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Local processes need loopback addresses, and ports nobody else holds.
fn check_local(cluster: &Cluster) -> Result<(), String> {
    for node in &cluster.nodes {
        if !node.address.is_loopback() {
            return Err(format!(
                "{}: node {:?} has address {}, not a loopback address: `cluster up` runs every \
                 node on this machine (use `cluster render` and run each node on its own host)",
                cluster.path.display(),
                node.name,
                node.address
            ));
        }
        let in_use = |what: &str, address: SocketAddr, e: std::io::Error| {
            format!(
                "{}: node {:?}: {address} ({what}) is in use or cannot be bound: {e}",
                cluster.path.display(),
                node.name
            )
        };
        let dns = cluster.dns(node);
        UdpSocket::bind(dns).map_err(|e| in_use("dns over udp", dns, e))?;
        for (what, address) in [
            ("dns over tcp", dns),
            ("tls", cluster.tls(node)),
            ("https", cluster.https(node)),
        ] {
            TcpListener::bind(address).map_err(|e| in_use(what, address, e))?;
        }
    }
    Ok(())
}

struct Running {
    node: RenderedNode,
    child: Child,
    log: PathBuf,
}

async fn up_cluster(
    cluster: &Cluster,
    nodes: &[RenderedNode],
    timeout: Duration,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut running = Vec::new();
    for node in nodes {
        let log = node.dir.join("node.log");
        // The previous run's log is kept one generation: it may say why that run failed.
        if log.exists() {
            let old = node.dir.join("node.log.1");
            std::fs::rename(&log, &old)
                .map_err(|e| anyhow::anyhow!("cannot rotate {}: {e}", log.display()))?;
        }
        let file = std::fs::File::create(&log)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", log.display()))?;
        let child = Command::new(&exe)
            .arg("run")
            .arg("--config")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start node {:?}: {e}", node.node.name))?;
        running.push(Running {
            node: node.clone(),
            child,
            log,
        });
    }
    println!(
        "started {} nodes; logs in {}/nodes/NAME/node.log",
        running.len(),
        tidy(&cluster.state_dir).display()
    );
    let result = match wait_ready(cluster, &mut running, timeout).await {
        Ok(served) => {
            print_table(cluster, &running, &served);
            watch(&mut running).await
        }
        Err(e) => Err(e),
    };
    stop(&mut running).await;
    result
}

/// Waits until every node serves the master's certificate over DoT.
async fn wait_ready(
    cluster: &Cluster,
    running: &mut [Running],
    timeout: Duration,
) -> anyhow::Result<Vec<CertSummary>> {
    let deadline = Instant::now() + timeout;
    let name = &cluster.names[0];
    loop {
        for r in running.iter_mut() {
            if let Some(status) = r.child.try_wait()? {
                anyhow::bail!(
                    "node {:?} exited during start-up ({status}); its log {}:\n{}",
                    r.node.node.name,
                    tidy(&r.log).display(),
                    tail(&r.log)
                );
            }
        }
        let mut served = Vec::new();
        let mut waiting = Vec::new();
        let mut late = Vec::new();
        for r in running.iter() {
            match probe::served(
                cluster.tls(&r.node.node),
                name,
                &cluster.domain,
                Duration::from_secs(1),
            )
            .await
            {
                Ok(summary) => served.push(summary),
                Err(e) => {
                    waiting.push(format!("{}: {e}", r.node.node.name));
                    late.push(r);
                }
            }
        }
        if waiting.is_empty() {
            let master = &served[0].fingerprint;
            waiting.extend(
                running
                    .iter()
                    .zip(&served)
                    .filter(|(_, s)| &s.fingerprint != master)
                    .map(|(r, _)| {
                        format!("{}: not yet the master's certificate", r.node.node.name)
                    }),
            );
            if waiting.is_empty() {
                return Ok(served);
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!(not_ready(timeout, &waiting, &late));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Why `cluster up` gave up: what each late node said, and the end of its log.
fn not_ready(timeout: Duration, waiting: &[String], late: &[&Running]) -> String {
    let tails: Vec<String> = late
        .iter()
        .map(|r| {
            let log = tidy(&r.log);
            format!(
                "{} ({}):\n{}",
                r.node.node.name,
                log.display(),
                tail(&r.log)
            )
        })
        .collect();
    format!(
        "not every node served the master's certificate over DoT within {timeout:?}: {}\n{}",
        waiting.join("; "),
        tails.join("\n")
    )
}

fn print_table(cluster: &Cluster, running: &[Running], served: &[CertSummary]) {
    println!(
        "\n{:<12} {:<7} {:<16} {:<24} CERTIFICATE SHA-256",
        "NODE", "ROLE", "ADDRESS", "NOT AFTER"
    );
    for (r, s) in running.iter().zip(served) {
        println!(
            "{:<12} {:<7} {:<16} {:<24} {}",
            r.node.node.name,
            r.node.node.role.as_str(),
            r.node.node.address.to_string(),
            crate::clock::rfc3339(s.not_after),
            s.fingerprint
        );
    }
    let master_dir = &running[0].node.dir;
    let ca = match cluster.ca {
        crate::cluster::Ca::Local { .. } => {
            let path = master_dir.join("state").join("local-ca").join("ca.pem");
            std::fs::canonicalize(&path)
                .unwrap_or(path)
                .display()
                .to_string()
        }
        crate::cluster::Ca::Acme { .. } => "ROOT.pem".to_string(),
    };
    let query = format!("{} SOA", cluster.domain);
    let name = &cluster.names[0];
    println!("\ntry (every node serves the same certificate):");
    for r in running {
        let node = &r.node.node;
        println!(
            "  kdig @{} -p {} +tls +tls-ca={ca} +tls-hostname={name} {query}",
            node.address, cluster.ports.tls
        );
    }
    let worker = running.get(1).unwrap_or(&running[0]);
    println!(
        "  kdig @{} -p {} +https=/dns-query +tls-ca={ca} +tls-hostname={name} {query}",
        worker.node.node.address, cluster.ports.https
    );
    if matches!(cluster.ca, crate::cluster::Ca::Acme { .. }) {
        println!("  (ROOT.pem: the root of your ACME CA)");
    }
    println!("cluster ready (Ctrl-C stops every node)");
}

/// Runs until Ctrl-C or SIGTERM, or until a node exits on its own.
async fn watch(running: &mut [Running]) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for r in running.iter_mut() {
            if let Some(status) = r.child.try_wait()? {
                anyhow::bail!(
                    "node {:?} exited ({status}); stopping the others. Its log {}:\n{}",
                    r.node.node.name,
                    tidy(&r.log).display(),
                    tail(&r.log)
                );
            }
        }
    }
}

/// SIGTERM to every node, then SIGKILL to any still running after 10 s.
async fn stop(running: &mut [Running]) {
    for r in running.iter() {
        if let Some(pid) = r.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    for r in running.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), r.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "node {:?} did not stop within 10 s of SIGTERM; killing it",
                    r.node.node.name
                );
                let _ = r.child.kill().await;
            }
        }
    }
    println!("stopped {} nodes", running.len());
}

/// The last lines of a log, for a message about a node that died.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `config/../state/x` shown as `state/x`: shorter paths in messages, same file.
fn tidy(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Every derived file must pass the checks of a hand-written one (`check-config`): the
/// nodes as rendered, or the first node whose file does not.
pub(super) fn check_rendered(nodes: Vec<RenderedNode>) -> Result<Vec<RenderedNode>, ClusterError> {
    for rendered in &nodes {
        let derived = |message: String| ClusterError::Derived {
            node: rendered.node.name.clone(),
            message,
        };
        let parsed = crate::config::Config::load(&rendered.config).map_err(|errors| {
            let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            derived(messages.join("; "))
        })?;
        crate::node::prepare(parsed).map_err(|problems| {
            let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
            derived(messages.join("; "))
        })?;
    }
    Ok(nodes)
}
