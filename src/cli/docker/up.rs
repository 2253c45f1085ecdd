//! `certzone cluster docker up`: the cluster file rendered, its image built, its compose
//! project written and started, and a bounded wait until every node serves the master's
//! certificate over DoT with the domain's SOA, checked with kdig from the client container.
//!
//! Owns the order of bring-up (the test CA and the client first, then the nodes) and the
//! checks that must pass before anything is written: the project not up yet, its subnet
//! clear of every other docker network, the programs for the image present. It must not
//! run scenarios.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use super::{
    Problem, compose,
    engine::{QUICK, SLOW},
    image, kdig,
    project::{CLIENT_MOUNT, Project},
    testca,
};
use crate::{
    cluster::{Ca, Role, docker::Subnet},
    state,
};

/// What `up` found: the pin each node serves (None without a client), and how long it took.
pub(super) struct Ready {
    pub(super) pins: BTreeMap<String, Option<String>>,
    pub(super) took: Duration,
}

/// Brings the cluster up; refuses (writing nothing) when it is up already or cannot be.
pub(super) fn up(project: &Project, limit: Duration) -> Result<Ready, Problem> {
    let started = Instant::now();
    check_free(project)?;
    let image = image_name(project)?;
    if project.docker.image.is_none() {
        println!(
            "image {} (built from this machine's files when missing)",
            image.0
        );
    }
    state::ensure_dir(&project.cluster.state_dir).map_err(failed)?;
    state::ensure_dir(&project.dir).map_err(failed)?;
    state::ensure_dir(&project.client_dir()).map_err(failed)?;
    // Before rendering: the master's rendered ca-roots is the test CA's HTTPS CA.
    if let Some(test_ca) = project.docker.test_ca {
        testca::prepare(project, test_ca).map_err(Problem::Failed)?;
    }
    crate::cluster::render(&project.cluster)
        .and_then(crate::cli::cluster::check_rendered)
        .map_err(|e| Problem::Refused(e.to_string()))?;
    if let Some(contents) = &image.1
        && image::ensure(
            &project.engine,
            contents,
            &image.0,
            &project.dir.join("image"),
        )
        .map_err(Problem::Failed)?
    {
        println!(
            "built image {} in {:.1} s",
            image.0,
            started.elapsed().as_secs_f64()
        );
    }
    compose::write(project, &image.0).map_err(Problem::Failed)?;
    start(project)?;
    let deadline = started + limit;
    let pins = wait_ready(project, deadline, limit)?;
    Ok(Ready {
        pins,
        took: started.elapsed(),
    })
}

/// Refuses a project whose containers exist, and a subnet another network has.
pub(super) fn check_free(project: &Project) -> Result<(), Problem> {
    let containers = project.containers().map_err(failed)?;
    if !containers.is_empty() {
        let running = containers.iter().filter(|c| c.state == "running").count();
        return Err(Problem::Refused(format!(
            "cluster {} is already up ({} containers, {running} running); \
             `certzone cluster docker down --config {}` removes it",
            project.name(),
            containers.len(),
            project.cluster.path.display()
        )));
    }
    let subnet = project.docker.subnet;
    for (network, theirs) in networks(project)? {
        if network != project.network() && theirs.overlaps(&subnet) {
            return Err(Problem::Refused(format!(
                "{}: key `docker.subnet`: {subnet} overlaps docker network {network:?} \
                 ({theirs}); choose a subnet no other network uses",
                project.cluster.path.display()
            )));
        }
    }
    Ok(())
}

/// Every docker network and its IPv4 subnets.
fn networks(project: &Project) -> Result<Vec<(String, Subnet)>, Problem> {
    let engine = &project.engine;
    let names = engine
        .docker(&["network", "ls", "--format", "{{.Name}}"], QUICK)
        .map_err(failed)?;
    let mut args = vec![
        "network",
        "inspect",
        "--format",
        "{{.Name}}{{range .IPAM.Config}} {{.Subnet}}{{end}}",
    ];
    args.extend(names.lines().filter(|l| !l.is_empty()));
    let out = engine.docker(&args, QUICK).map_err(failed)?;
    let mut found = Vec::new();
    for line in out.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        // IPv6 subnets cannot overlap an IPv4 one.
        for subnet in fields.filter_map(|s| Subnet::parse(s).ok()) {
            found.push((name.to_string(), subnet));
        }
    }
    Ok(found)
}

/// The image to run: the one named, which must exist, or one built from this machine's
/// files (listed here, so a missing program is refused before anything is written).
fn image_name(project: &Project) -> Result<(String, Option<image::Contents>), Problem> {
    if let Some(name) = &project.docker.image {
        let found = project
            .engine
            .docker_output(&["image", "inspect", "--format", "{{.Id}}", name], QUICK)
            .map_err(failed)?;
        if !found.status.success() {
            return Err(Problem::Refused(format!(
                "{}: key `docker.image`: no image {name:?} on this engine (nothing is pulled): \
                 build it, or leave `image` out to build one from this binary",
                project.cluster.path.display()
            )));
        }
        return Ok((name.clone(), None));
    }
    let contents = image::contents(project.docker.test_ca.is_some()).map_err(Problem::Refused)?;
    let tag = contents.tag().map_err(Problem::Refused)?;
    Ok((tag, Some(contents)))
}

/// The test CA and the client first (the master's first order needs the CA, the checks
/// the client's roots), then every node.
fn start(project: &Project) -> Result<(), Problem> {
    let mut first: Vec<&str> = Vec::new();
    if project.docker.test_ca.is_some() {
        first.push(crate::cluster::docker::TEST_CA);
    }
    if project.docker.client.is_some() {
        first.push(crate::cluster::docker::CLIENT);
    }
    if !first.is_empty() {
        let mut args = vec!["up", "--detach"];
        args.extend(&first);
        project.compose(&args, SLOW).map_err(failed)?;
    }
    if let Some(test_ca) = project.docker.test_ca {
        testca::fetch_root(project, test_ca, Duration::from_secs(30)).map_err(Problem::Failed)?;
    }
    project.compose(&["up", "--detach"], SLOW).map_err(failed)?;
    Ok(())
}

/// Waits until every node serves one certificate over DoT (checked from the client), or,
/// without a client, until Docker calls every node healthy.
fn wait_ready(
    project: &Project,
    deadline: Instant,
    limit: Duration,
) -> Result<BTreeMap<String, Option<String>>, Problem> {
    loop {
        stopped_nodes(project)?;
        let waiting = if project.docker.client.is_some() {
            local_ca_root(project);
            let pins = kdig::pins(project, &project.cluster.nodes);
            if kdig::agreed(&pins).is_some() {
                return Ok(pins);
            }
            vec![kdig::describe(&pins)]
        } else {
            let unhealthy = unhealthy(project)?;
            if unhealthy.is_empty() {
                return Ok(project
                    .cluster
                    .nodes
                    .iter()
                    .map(|n| (n.name.clone(), None))
                    .collect());
            }
            unhealthy
        };
        if Instant::now() > deadline {
            return Err(Problem::Failed(format!(
                "not every node served the master's certificate over DoT within {limit:?}: {}",
                waiting.join("; ")
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A node container that stopped, or that Docker had to restart, has failed: its log says
/// why (a node exits on a bad config or an address it cannot bind).
fn stopped_nodes(project: &Project) -> Result<(), Problem> {
    let out = inspect(project, "{{.Name}} {{.State.Status}} {{.RestartCount}}")?;
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, state, restarts] = fields.as_slice() else {
            continue;
        };
        if *state != "running" || *restarts != "0" {
            return Err(Problem::Failed(format!(
                "container {} is {state} and was restarted {restarts} times: its node failed \
                 (its log: `certzone cluster docker logs --config {} NODE`)",
                name.trim_start_matches('/'),
                project.cluster.path.display()
            )));
        }
    }
    Ok(())
}

/// `docker inspect --format FORMAT` of every node's container.
fn inspect(project: &Project, format: &str) -> Result<String, Problem> {
    let mut args = vec![
        "inspect".to_string(),
        "--format".to_string(),
        format.to_string(),
    ];
    args.extend(
        project
            .cluster
            .nodes
            .iter()
            .map(|n| project.container(&n.name)),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    project.engine.docker(&args, QUICK).map_err(failed)
}

/// Nodes Docker does not call healthy yet, with what it says.
fn unhealthy(project: &Project) -> Result<Vec<String>, Problem> {
    let out = inspect(
        project,
        "{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
    )?;
    Ok(out
        .lines()
        .filter(|l| !l.ends_with(" healthy"))
        .map(|l| l.trim_start_matches('/').to_string())
        .collect())
}

/// With the local CA, the client trusts the master's CA certificate, read from its
/// container once the master has made it.
fn local_ca_root(project: &Project) {
    if !matches!(project.cluster.ca, Ca::Local { .. }) {
        return;
    }
    let master = project.container(&project.cluster.master().name);
    let path = format!("{}/state/local-ca/ca.pem", compose::NODE_MOUNT);
    let Ok(out) = project
        .engine
        .docker_output(&["exec", &master, "cat", &path], QUICK)
    else {
        return;
    };
    if out.status.success() && !out.stdout.is_empty() {
        let target = project.client_dir().join("ca.pem");
        let _ = state::write_atomic(&target, &out.stdout, state::PUBLIC);
    }
}

/// The table `cluster up` prints, and the commands to try.
pub(super) fn print_table(project: &Project, ready: &Ready) {
    let served = super::certificate::master_leaf(project);
    println!(
        "\n{:<12} {:<7} {:<16} {:<24} CERTIFICATE SHA-256",
        "NODE", "ROLE", "ADDRESS", "NOT AFTER"
    );
    for node in &project.cluster.nodes {
        let pin = ready.pins.get(&node.name).cloned().flatten();
        let (not_after, fingerprint) = match (&served, pin) {
            (Some(leaf), Some(pin)) if leaf.pin == pin => {
                (leaf.not_after.clone(), leaf.fingerprint.clone())
            }
            (_, Some(pin)) => ("?".into(), format!("(key pin {pin})")),
            (Some(leaf), None) if node.role == Role::Master => {
                (leaf.not_after.clone(), leaf.fingerprint.clone())
            }
            _ => ("?".into(), "(healthy; not compared: no client)".into()),
        };
        println!(
            "{:<12} {:<7} {:<16} {:<24} {}",
            node.name,
            node.role.as_str(),
            node.address.to_string(),
            not_after,
            fingerprint
        );
    }
    print_commands(project);
    println!(
        "cluster {} up in {:.1} s",
        project.name(),
        ready.took.as_secs_f64()
    );
}

fn print_commands(project: &Project) {
    let config = project.cluster.path.display();
    if project.docker.client.is_some() {
        let client = project.container(crate::cluster::docker::CLIENT);
        println!("\ntry (from the client container; every node serves the same certificate):");
        for node in &project.cluster.nodes {
            let args = kdig::args(project, &node.address.to_string(), kdig::Transport::Tls);
            println!("  docker exec {client} {}", args.join(" "));
        }
        let worker = project
            .cluster
            .workers()
            .first()
            .unwrap_or(project.cluster.master());
        let args = kdig::args(project, &worker.address.to_string(), kdig::Transport::Https);
        println!("  docker exec {client} {}", args.join(" "));
        println!("  ({CLIENT_MOUNT}/ca.pem in the client: the roots it trusts)");
    }
    println!("logs: certzone cluster docker logs --config {config} [NODE]");
    println!("stop: certzone cluster docker down --config {config} (every node's state is kept)");
}

pub(super) fn failed(e: impl std::fmt::Display) -> Problem {
    Problem::Failed(e.to_string())
}
