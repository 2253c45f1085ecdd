//! Scenarios a, c, e and f: bring-up, the master killed and restarted, a worker restarted
//! while the master is down, and a rolling restart of the workers.
//!
//! Each starts from a cluster where every node serves one certificate and leaves it so.
//! They break the cluster only through Docker (kill, stop, start, restart) and check only
//! what the client sees and what the nodes log.

use std::time::Duration;

use super::{Failure, Run, check, now, query_loop::QueryLoop, wait_for};
use crate::cli::docker::kdig::{self, Transport};
use crate::cluster::{NodeSpec, docker::TEST_CA};

const BOTH: [Transport; 2] = [Transport::Tls, Transport::Https];

/// a. Every node serves the master's leaf over DoT and DoH, verified.
pub(super) fn bring_up(run: &Run) -> Result<(), Failure> {
    if let Some(took) = run.brought_up.filter(|t| !t.is_zero()) {
        check(format!(
            "cluster up in {:.1} s (image, containers, first certificate, every node serving it)",
            took.as_secs_f64()
        ));
    }
    let master = run.master();
    let pin = wait_for(
        "the master to serve a verified certificate over DoT",
        Duration::from_secs(60),
        || run.pin(master, Transport::Tls),
    )?;
    for node in run.nodes() {
        for transport in BOTH {
            wait_for(
                &format!(
                    "{} {} to serve the master's leaf over {}",
                    node.name,
                    node.address,
                    transport.label()
                ),
                Duration::from_secs(30),
                || (run.pin(node, transport).as_deref() == Some(pin.as_str())).then_some(()),
            )?;
            check(format!(
                "{} {} answers {} SOA over {}, chain verified against {} for {}, leaf pin {pin}",
                node.name,
                node.address,
                run.domain(),
                transport.label(),
                run.label(),
                run.project.cluster.names[0]
            ));
        }
    }
    Ok(())
}

/// c. SIGKILL the master: the workers keep serving; restarted, it serves the same leaf
/// and orders (or issues) nothing.
pub(super) fn master_killed(run: &Run) -> Result<(), Failure> {
    // With ACME, a fresh certificate first, so that no renewal falls due while it is down.
    let pin = if run.acme() {
        super::renewal::renew_and_wait(run)?
    } else {
        run.agreed_pin()?
    };
    let master = run.master();
    let killed = now();
    run.docker(&["kill", &run.container(master)])?;
    check("master killed (SIGKILL)");
    for worker in run.workers() {
        wait_for(
            &format!(
                "{} to find the master gone (its log: refresh failed)",
                worker.name
            ),
            run.refresh_limit(),
            || {
                run.logs(worker, killed)
                    .contains("refresh failed")
                    .then_some(())
            },
        )?;
        for transport in BOTH {
            let served = run.pin(worker, transport);
            if served.as_deref() != Some(pin.as_str()) {
                return Err(Failure(format!(
                    "{} {} over {}: expected pin {pin}, got {served:?}",
                    worker.name,
                    worker.address,
                    transport.label()
                )));
            }
        }
        check(format!(
            "{} noticed the master is gone and still serves pin {pin} over DoT and DoH",
            worker.name
        ));
    }
    restart_master(run, &pin)
}

/// The second half of c: the master started again resumes from its state.
fn restart_master(run: &Run, pin: &str) -> Result<(), Failure> {
    let master = run.master();
    let orders = test_ca_orders(run);
    let restarted = now();
    run.docker(&["start", &run.container(master)])?;
    wait_for(
        "the restarted master to serve its certificate over DoT",
        Duration::from_secs(30),
        || (run.pin(master, Transport::Tls).as_deref() == Some(pin)).then_some(()),
    )?;
    let (planned, issued) = if run.acme() {
        ("next certificate renewal", "ACME order created")
    } else {
        ("next local CA renewal", "local CA issued a leaf")
    };
    wait_for(
        &format!("the restarted master to log its {planned}"),
        Duration::from_secs(30),
        || run.logs(master, restarted).contains(planned).then_some(()),
    )?;
    let log = run.logs(master, restarted);
    if log.contains(issued) || test_ca_orders(run) != orders {
        return Err(Failure(format!(
            "the restarted master did not resume from its state ({issued}); its log:\n{log}"
        )));
    }
    let line = log
        .lines()
        .find(|l| l.contains(planned))
        .unwrap_or_default();
    let line = line.split_once("INFO ").map_or(line, |(_, rest)| rest);
    let made = match orders {
        Some(n) => format!("made no order (the test CA still has {n})"),
        None => "issued no new leaf".to_string(),
    };
    check(format!(
        "restarted master serves the same pin {pin}, {made}, and logs: {line}"
    ));
    Ok(())
}

/// How many orders the test CA has taken: one log line each.
fn test_ca_orders(run: &Run) -> Option<usize> {
    run.project.docker.test_ca?;
    Some(
        run.project
            .logs(TEST_CA, None)
            .matches("Added order")
            .count(),
    )
}

/// e. Restart a worker while the master is down: it serves its cached certificate and its
/// copy of the zone at once.
pub(super) fn worker_restarted_alone(run: &Run) -> Result<(), Failure> {
    let workers = run.workers();
    let Some(worker) = workers.get(1).or(workers.first()) else {
        return Err(Failure("the cluster has no worker".into()));
    };
    let pin = run.agreed_pin()?;
    let master = run.container(run.master());
    run.docker(&["stop", &master])?;
    check("master stopped");
    let restarted = now();
    run.docker(&["restart", &run.container(worker)])?;
    let mut answers = Vec::new();
    for transport in BOTH {
        let answer = wait_for(
            &format!(
                "the restarted {} to serve pin {pin} over {}",
                worker.name,
                transport.label()
            ),
            Duration::from_secs(30),
            || kdig::ask(run.project, worker, transport).filter(|a| a.pin == pin),
        )?;
        if !answer.serves() {
            return Err(Failure(format!(
                "{} answered {} SOA over {} with {} and no SOA, not from its zone copy",
                worker.name,
                run.domain(),
                transport.label(),
                answer.status
            )));
        }
        answers.push(format!(
            "{} {} with the SOA",
            transport.label(),
            answer.status
        ));
    }
    served_from_disk(run, worker, restarted)?;
    check(format!(
        "{} restarted with the master down, installed pin {pin} from its cache and answers from \
         its zone copy ({})",
        worker.name,
        answers.join(", ")
    ));
    run.docker(&["start", &master])?;
    wait_for(
        "the master back and every node serving one certificate",
        Duration::from_secs(60),
        || run.agreed(None),
    )?;
    check("master started again; every node serves one certificate");
    Ok(())
}

/// f. Restart the workers one by one under DoT queries: every round is answered by one.
pub(super) fn rolling_restart(run: &Run) -> Result<(), Failure> {
    let workers = run.workers();
    let queries = QueryLoop::start(run, workers)?;
    for worker in workers {
        queries.wait_rounds(1)?;
        run.docker(&["restart", &run.container(worker)])?;
        wait_for(
            &format!("the restarted {} to serve over DoT", worker.name),
            Duration::from_secs(30),
            || run.pin(worker, Transport::Tls),
        )?;
        check(format!("{} restarted and serves again", worker.name));
    }
    queries.wait_rounds(1)?;
    let results = queries.finish()?;
    let rounds = results.iter().map(|q| q.round).max().unwrap_or(0);
    let unanswered: Vec<u32> = (1..=rounds)
        .filter(|n| !results.iter().any(|q| q.round == *n && q.pin.is_some()))
        .collect();
    if !unanswered.is_empty() {
        return Err(Failure(format!(
            "rounds {unanswered:?} were answered by no worker"
        )));
    }
    let missed: Vec<String> = workers
        .iter()
        .map(|w| {
            let ip = w.address.to_string();
            let n = results
                .iter()
                .filter(|q| q.ip == ip && q.pin.is_none())
                .count();
            format!("{} {n}", w.name)
        })
        .collect();
    check(format!(
        "{rounds} rounds of DoT queries to every worker, each answered by at least one; \
         queries missed while a worker restarted: {}",
        missed.join(", ")
    ));
    Ok(())
}

/// The worker's log since its restart says the certificate came from its cache and the
/// zone from its copy on disk.
fn served_from_disk(run: &Run, worker: &NodeSpec, since: f64) -> Result<(), Failure> {
    let log = run.logs(worker, since);
    let from_cache = log.lines().any(|l| {
        l.contains("certificate installed from the certificate zone") && l.contains("from=cache")
    });
    if !from_cache || !log.contains("zone served from the copy on disk") {
        return Err(Failure(format!(
            "{} did not log installing its certificate from its cache and serving its zone \
             from its copy on disk:\n{log}",
            worker.name
        )));
    }
    Ok(())
}
