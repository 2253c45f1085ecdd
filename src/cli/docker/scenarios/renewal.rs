//! Scenarios b and d: a renewal under continuous DoT queries, and a renewal while a worker
//! is cut off from the network; and the forced renewal (`certzone renew` in the master's
//! container, as an operator runs it) that c and d start from.
//!
//! They need renewals: b one that comes by itself within minutes (a short-lived leaf), d
//! one on request (ACME). Where the cluster's CA gives neither, they say so and are skipped.

use std::time::Duration;

use super::{Failure, RENEWAL_LIFETIME_MAX, Run, check, now, query_loop::QueryLoop, wait_for};
use crate::cli::docker::compose::NODE_MOUNT;
use crate::cluster::NodeSpec;

/// Why b cannot run: no worker, or a leaf that is not renewed within a test run.
pub(super) fn needs_natural_renewal(run: &Run) -> Option<String> {
    if run.workers().is_empty() {
        return Some("needs a worker".into());
    }
    let lifetime = run.lifetime();
    if lifetime <= RENEWAL_LIFETIME_MAX {
        return None;
    }
    Some(if run.acme() {
        format!(
            "needs a certificate renewed within minutes, and the test CA's leaves live {} s: \
             set [docker] test-ca-leaf-secs = 90 (and ca.max-orders-per-hour = 20: each \
             renewal is an order)",
            lifetime.as_secs()
        )
    } else {
        format!(
            "needs a certificate renewed within minutes, and the local CA's leaves live {} \
             days (ca.leaf-days), renewed when a third is left: run it with ca.kind = \"acme\", \
             [docker] test-ca = true and test-ca-leaf-secs = 90",
            lifetime.as_secs() / 86_400
        )
    })
}

/// Why d cannot run: no worker, or a CA that does not renew on request.
pub(super) fn needs_renewal_on_request(run: &Run) -> Option<String> {
    if run.workers().is_empty() {
        return Some("needs a worker".into());
    }
    (!run.acme()).then(|| {
        "needs a renewal on request (`certzone renew`), which only ACME makes: the local CA \
         renews its leaf by itself when a third of its lifetime is left; run it with \
         ca.kind = \"acme\" and [docker] test-ca = true"
            .to_string()
    })
}

/// b. Every worker swaps to the renewed leaf while the client queries them nonstop, and
/// no query fails.
pub(super) fn renewal(run: &Run) -> Result<(), Failure> {
    let old = run.agreed_pin()?;
    let lifetime = run.lifetime();
    check(format!(
        "all nodes serve pin {old}; waiting for the renewal of a leaf that lives {} s",
        lifetime.as_secs()
    ));
    let workers = run.workers();
    let queries = QueryLoop::start(run, workers)?;
    // Renewed at half the lifetime (a third left for long ones), in a window a tenth long.
    let limit = lifetime.mul_f64(0.7) + Duration::from_secs(30);
    let new = wait_for("every node to serve one renewed certificate", limit, || {
        run.agreed(None).filter(|p| *p != old)
    })?;
    queries.wait_rounds(2)?;
    let results = queries.finish()?;
    check(format!("every node swapped to pin {new}"));
    let failed: Vec<_> = results.iter().filter(|q| q.pin.is_none()).collect();
    if let Some(first) = failed.first() {
        return Err(Failure(format!(
            "{} of {} DoT queries failed, first: {} in round {}:\n{}",
            failed.len(),
            results.len(),
            first.ip,
            first.round,
            first.output
        )));
    }
    for worker in workers {
        let ip = worker.address.to_string();
        let mut changes: Vec<&str> = Vec::new();
        for pin in results
            .iter()
            .filter(|q| q.ip == ip)
            .filter_map(|q| q.pin.as_deref())
        {
            if changes.last() != Some(&pin) {
                changes.push(pin);
            }
        }
        if changes != [old.as_str(), new.as_str()] {
            return Err(Failure(format!(
                "the query loop saw {} serve {changes:?}, not {old} then {new}",
                worker.name
            )));
        }
    }
    let rounds = results.iter().map(|q| q.round).max().unwrap_or(0);
    check(format!(
        "{} DoT queries in {rounds} rounds across the swap, every one answered and verified; \
         each worker seen old, then new",
        results.len()
    ));
    Ok(())
}

/// d. Cut a worker off during a renewal: the renewal waits for it (or, when the CA reused
/// an authorization, the worker misses the new certificate); reconnected, it catches up.
pub(super) fn worker_cut_off(run: &Run) -> Result<(), Failure> {
    // d is skipped when there is no worker (needs_renewal_on_request).
    let worker = run
        .workers()
        .last()
        .expect("needs_renewal_on_request: a worker");
    let others: Vec<&NodeSpec> = run
        .nodes()
        .iter()
        .filter(|n| n.name != worker.name)
        .collect();
    let container = run.container(worker);
    let network = run.project.network();
    let old = run.agreed_pin()?;
    run.docker(&["network", "disconnect", network, &container])?;
    if run
        .pin(worker, crate::cli::docker::kdig::Transport::Tls)
        .is_some()
    {
        return Err(Failure(format!(
            "{} still answers after it was disconnected",
            worker.name
        )));
    }
    check(format!(
        "{} {} disconnected: it no longer answers the client",
        worker.name, worker.address
    ));
    let renewing = now();
    renew(run)?;
    let missed = held_back_or_missed(run, worker, &others, &old, renewing)?;
    let reconnected = now();
    let ip = worker.address.to_string();
    run.docker(&["network", "connect", "--ip", &ip, network, &container])?;
    let new = wait_for(
        &format!(
            "{} and every other node to serve the renewed certificate",
            worker.name
        ),
        run.catch_up_limit(),
        || run.agreed(None).filter(|p| *p != old),
    )?;
    let log = run.logs(worker, reconnected);
    if !log.contains("zone transferred") {
        return Err(Failure(format!(
            "{} serves the new certificate but logged no zone transfer:\n{log}",
            worker.name
        )));
    }
    check(format!(
        "{} reconnected and caught up with {missed}; all nodes serve pin {new}",
        worker.name
    ));
    Ok(())
}

/// What the cut-off worker missed: the challenge (the renewal waits for every
/// authoritative server), or, when the CA reused a valid authorization (Pebble does for 1
/// order in 100 even when told not to, as Let's Encrypt does for a month), the new
/// certificate zone.
fn held_back_or_missed(
    run: &Run,
    worker: &NodeSpec,
    others: &[&NodeSpec],
    old: &str,
    since: f64,
) -> Result<String, Failure> {
    let master = run.master();
    let challenged = wait_for(
        "the master's renewal order to reach its authorization",
        Duration::from_secs(30),
        || authorization(&run.logs(master, since)),
    )? == Authorization::Challenge;
    if challenged {
        lost_notify(run, worker, &run.domain(), since)?;
        if run.agreed(Some(others)).as_deref() != Some(old) {
            return Err(Failure(format!(
                "a certificate was issued while {}, an authoritative server, could not serve \
                 the challenge",
                worker.name
            )));
        }
        check(format!(
            "renewal held back: the master's NOTIFY of the challenge to {} went unanswered, and \
             the other nodes still serve pin {old}",
            worker.name
        ));
        return Ok(format!("{} (the challenge)", run.domain()));
    }
    let new = wait_for(
        "the other nodes to serve the renewed certificate",
        Duration::from_secs(30),
        || run.agreed(Some(others)).filter(|p| p != old),
    )?;
    let zone = run.project.cluster.certificate_zone.to_ascii();
    lost_notify(run, worker, &zone, since)?;
    check(format!(
        "the CA reused a valid authorization: the other nodes serve pin {new}, the master's \
         NOTIFY of it to {} went unanswered",
        worker.name
    ));
    Ok("the certificate zone".into())
}

#[derive(Debug, PartialEq, Eq)]
enum Authorization {
    Challenge,
    Reused,
}

/// How the CA treats the master's latest order, once its log says.
fn authorization(master_log: &str) -> Option<Authorization> {
    if master_log.contains("authorization pending: dns-01 challenge") {
        return Some(Authorization::Challenge);
    }
    master_log
        .contains("authorization already valid")
        .then_some(Authorization::Reused)
}

/// Waits until the master gives up sending NOTIFY for `zone` to `worker`.
fn lost_notify(run: &Run, worker: &NodeSpec, zone: &str, since: f64) -> Result<(), Failure> {
    let target = format!(
        "target={}:{} zone={zone}",
        worker.address, run.project.cluster.ports.dns
    );
    wait_for(
        &format!(
            "the master to give up sending NOTIFY for {zone} to {}",
            worker.name
        ),
        Duration::from_secs(30),
        || {
            run.logs(run.master(), since)
                .lines()
                .any(|l| l.contains("NOTIFY not acknowledged") && l.contains(&target))
                .then_some(())
        },
    )
}

/// Forces a renewal and waits until every node serves the new leaf; returns its pin.
pub(super) fn renew_and_wait(run: &Run) -> Result<String, Failure> {
    let old = run.agreed_pin()?;
    renew(run)?;
    let new = wait_for(
        "every node to serve the certificate of a forced renewal",
        Duration::from_secs(60),
        || run.agreed(None).filter(|p| *p != old),
    )?;
    check(format!(
        "forced renewal (`certzone renew` in the master's container): every node serves pin {new}"
    ));
    Ok(new)
}

/// `certzone renew` in the master's container: what an operator runs to renew now.
fn renew(run: &Run) -> Result<(), Failure> {
    let config = format!("{NODE_MOUNT}/node.toml");
    run.docker(&[
        "exec",
        &run.container(run.master()),
        "certzone",
        "renew",
        "--config",
        &config,
    ])
}
