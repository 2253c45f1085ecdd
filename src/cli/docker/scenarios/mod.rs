//! `certzone cluster docker test`: the fault scenarios, run against any cluster file's
//! docker cluster whatever its node count and names, checked as a user would check them
//! (kdig from the client container) and timed.
//!
//! Owns choosing the scenarios, skipping those the cluster's CA cannot serve (with the
//! reason), running each from a cluster where every node serves one certificate, putting
//! the cluster back after a failure, saving the logs, and the closing
//! `scenarios: N passed, N failed` line. The scenarios themselves are in `restarts` and
//! `renewal`; the client's continuous queries in `query_loop`.

mod query_loop;
mod renewal;
mod restarts;

use std::{
    fmt,
    process::ExitCode,
    time::{Duration, Instant, SystemTime},
};

use super::{
    Problem,
    engine::EngineError,
    kdig::{self, Transport},
    project::Project,
    up,
};
use crate::{
    cluster::{Ca, NodeSpec},
    config::{DEFAULT_LEAF_DAYS, DEFAULT_PROPAGATION_SECS, DEFAULT_RETRY_BASE_SECS},
};

/// Pebble's certificate lifetime when its config names none (about five years).
const PEBBLE_DEFAULT_LIFETIME: Duration = Duration::from_secs(157_766_400);
/// Renewal scenarios wait for a renewal; a leaf that lives longer than this is not renewed
/// within a test run.
const RENEWAL_LIFETIME_MAX: Duration = Duration::from_secs(600);

/// A check that did not hold: what was expected and what was seen.
#[derive(Debug)]
pub(super) struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Self(e.to_string())
    }
}

struct Scenario {
    letter: char,
    title: &'static str,
    /// Why the scenario cannot run on this cluster, if it cannot.
    needs: fn(&Run) -> Option<String>,
    run: fn(&Run) -> Result<(), Failure>,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        letter: 'a',
        title: "bring-up: every node serves the master's certificate over DoT and DoH",
        needs: |_| None,
        run: restarts::bring_up,
    },
    Scenario {
        letter: 'b',
        title: "renewal: every worker swaps while DoT queries go on, and none fails",
        needs: renewal::needs_natural_renewal,
        run: renewal::renewal,
    },
    Scenario {
        letter: 'c',
        title: "master killed: workers keep serving; restarted, it resumes from its state",
        needs: |_| None,
        run: restarts::master_killed,
    },
    Scenario {
        letter: 'd',
        title: "worker cut off during a renewal: reconnected, it catches up",
        needs: renewal::needs_renewal_on_request,
        run: renewal::worker_cut_off,
    },
    Scenario {
        letter: 'e',
        title: "worker restarted with the master down: it serves from its cache",
        needs: |run| run.workers().is_empty().then(|| "needs a worker".into()),
        run: restarts::worker_restarted_alone,
    },
    Scenario {
        letter: 'f',
        title: "rolling restart: every round of queries is answered by some worker",
        needs: |run| {
            (run.workers().len() < 2)
                .then(|| "needs two workers: with one, its restart leaves none to answer".into())
        },
        run: restarts::rolling_restart,
    },
];

/// The scenario letters `--scenario` names ("a,c,f"), all when None; refused when unknown.
pub(super) fn select(given: Option<&str>) -> Result<Vec<char>, Problem> {
    let Some(given) = given else {
        return Ok(SCENARIOS.iter().map(|s| s.letter).collect());
    };
    let mut chosen = Vec::new();
    for item in given.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut letters = item.chars();
        let found = match (letters.next(), letters.next()) {
            (Some(letter), None) => SCENARIOS.iter().find(|s| s.letter == letter),
            _ => None,
        };
        let Some(scenario) = found else {
            let known: Vec<String> = SCENARIOS
                .iter()
                .map(|s| format!("{} ({})", s.letter, s.title.split(':').next().unwrap_or("")))
                .collect();
            return Err(Problem::Refused(format!(
                "--scenario: no scenario {item:?}; choose from {}",
                known.join(", ")
            )));
        };
        if !chosen.contains(&scenario.letter) {
            chosen.push(scenario.letter);
        }
    }
    if chosen.is_empty() {
        return Err(Problem::Refused(
            "--scenario: name at least one scenario".into(),
        ));
    }
    chosen.sort_unstable();
    Ok(chosen)
}

/// Runs the chosen scenarios; brings the cluster up first when it is not up.
pub(super) fn test(
    project: &Project,
    chosen: &[char],
    limit: Duration,
) -> Result<ExitCode, Problem> {
    if project.docker.client.is_none() {
        return Err(Problem::Refused(format!(
            "{}: key `docker.client`: the scenarios check every node with kdig from the client \
             container; set client = true",
            project.cluster.path.display()
        )));
    }
    let started = Instant::now();
    let brought_up = bring_up_if_down(project, limit)?;
    let run = Run {
        project,
        brought_up: brought_up.as_ref().ok().copied(),
    };
    let tally = run_each(&run, chosen, brought_up.err());
    println!(
        "\nscenarios: {} passed, {} failed, {} skipped in {:.0} s",
        tally.passed,
        tally.failed,
        tally.skipped,
        started.elapsed().as_secs_f64()
    );
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs each chosen scenario, or says why not; after a failure, the logs are left and the
/// cluster put back, and when it cannot be the rest fail unrun (`broken` says why).
fn run_each(run: &Run, chosen: &[char], mut broken: Option<String>) -> Tally {
    let mut tally = Tally::default();
    for scenario in SCENARIOS.iter().filter(|s| chosen.contains(&s.letter)) {
        println!("\n== {}. {}", scenario.letter, scenario.title);
        if let Some(reason) = &broken {
            println!("   FAILED: not run: {reason}");
            tally.failed += 1;
            continue;
        }
        if let Some(reason) = (scenario.needs)(run) {
            println!("   skipped: {reason}");
            tally.skipped += 1;
            continue;
        }
        let start = Instant::now();
        match (scenario.run)(run) {
            Ok(()) => {
                println!("   passed in {:.1} s", start.elapsed().as_secs_f64());
                tally.passed += 1;
            }
            Err(failure) => {
                println!(
                    "   FAILED after {:.1} s: {failure}",
                    start.elapsed().as_secs_f64()
                );
                tally.failed += 1;
                super::leave_logs(run.project);
                broken = restore(run)
                    .err()
                    .map(|e| format!("the cluster did not recover: {e}"));
            }
        }
    }
    tally
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

/// Ok(how long bring-up took) when this run brought the cluster up, Ok(zero) when it was
/// up already; Err(why) when bring-up failed (every scenario then fails).
fn bring_up_if_down(
    project: &Project,
    limit: Duration,
) -> Result<Result<Duration, String>, Problem> {
    let containers = project.containers().map_err(up::failed)?;
    if containers.is_empty() {
        println!("== bring-up of cluster {}", project.name());
        return match up::up(project, limit) {
            Ok(ready) => {
                up::print_table(project, &ready);
                Ok(Ok(ready.took))
            }
            Err(Problem::Failed(why)) => {
                println!("   bring-up failed: {why}");
                super::leave_logs(project);
                Ok(Err("the cluster did not come up".into()))
            }
            Err(refused) => Err(refused),
        };
    }
    let stopped: Vec<String> = containers
        .iter()
        .filter(|c| c.state != "running")
        .map(|c| format!("{} ({})", c.name, c.state))
        .collect();
    if !stopped.is_empty() {
        return Err(Problem::Refused(format!(
            "cluster {} is only partly up: {}; `certzone cluster docker down --config {}` \
             and `up` start it afresh",
            project.name(),
            stopped.join(", "),
            project.cluster.path.display()
        )));
    }
    println!(
        "cluster {} is up: the scenarios run on it as it is",
        project.name()
    );
    Ok(Ok(Duration::ZERO))
}

/// Puts the cluster back as a failed scenario may have left it: every container started,
/// every node on the network, every node serving one certificate.
fn restore(run: &Run) -> Result<(), Failure> {
    let project = run.project;
    for container in project.containers()? {
        if container.state != "running" {
            run.docker(&["start", &container.name])?;
        }
    }
    for node in &project.cluster.nodes {
        let container = project.container(&node.name);
        let networks = project.engine.docker(
            &[
                "inspect",
                "--format",
                "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
                &container,
            ],
            super::engine::QUICK,
        )?;
        if !networks.split_whitespace().any(|n| n == project.network()) {
            let ip = node.address.to_string();
            run.docker(&[
                "network",
                "connect",
                "--ip",
                &ip,
                project.network(),
                &container,
            ])?;
        }
    }
    wait_for(
        "every node to serve one certificate again",
        Duration::from_secs(120),
        || run.agreed(None),
    )
    .map(drop)
}

/// What the scenarios share: the project, and questions about its cluster.
pub(super) struct Run<'a> {
    project: &'a Project,
    /// How long this run's bring-up took, when it brought the cluster up.
    brought_up: Option<Duration>,
}

impl Run<'_> {
    fn nodes(&self) -> &[NodeSpec] {
        &self.project.cluster.nodes
    }

    fn master(&self) -> &NodeSpec {
        self.project.cluster.master()
    }

    fn workers(&self) -> &[NodeSpec] {
        self.project.cluster.workers()
    }

    fn container(&self, node: &NodeSpec) -> String {
        self.project.container(&node.name)
    }

    fn domain(&self) -> String {
        self.project.cluster.domain.to_ascii()
    }

    fn acme(&self) -> bool {
        matches!(self.project.cluster.ca, Ca::Acme { .. })
    }

    /// How long the CA's leaves live.
    fn lifetime(&self) -> Duration {
        match self.project.cluster.ca {
            Ca::Local { leaf_days } => {
                Duration::from_secs(u64::from(leaf_days.unwrap_or(DEFAULT_LEAF_DAYS)) * 86_400)
            }
            Ca::Acme { .. } => self
                .project
                .docker
                .test_ca
                .and_then(|t| t.leaf_secs)
                .map_or(PEBBLE_DEFAULT_LIFETIME, Duration::from_secs),
        }
    }

    /// How long a worker may take to notice a change without a NOTIFY: its refresh timer
    /// (the certificate zone's, from the cluster file; a node's default is 300 s), and a
    /// margin.
    fn refresh_limit(&self) -> Duration {
        Duration::from_secs(u64::from(self.project.cluster.refresh_secs.unwrap_or(300)) + 30)
    }

    /// How long a worker cut off during a renewal may take to catch up once reconnected:
    /// its refresh timer, or the master's next order when the first one gave up waiting
    /// for it (propagation timeout, then the retry delay).
    fn catch_up_limit(&self) -> Duration {
        let (propagation, retry) = match &self.project.cluster.ca {
            Ca::Acme {
                propagation_timeout_secs,
                retry_base_secs,
                ..
            } => (
                propagation_timeout_secs.unwrap_or(DEFAULT_PROPAGATION_SECS),
                retry_base_secs.unwrap_or(DEFAULT_RETRY_BASE_SECS),
            ),
            Ca::Local { .. } => (0, 0),
        };
        self.refresh_limit()
            .max(Duration::from_secs(propagation + retry))
            + Duration::from_secs(30)
    }

    fn pin(&self, node: &NodeSpec, transport: Transport) -> Option<String> {
        kdig::pin(self.project, node, transport)
    }

    /// The pin every node in `nodes` (all by default) serves over DoT, if they agree.
    fn agreed(&self, nodes: Option<&[&NodeSpec]>) -> Option<String> {
        let pins = match nodes {
            Some(nodes) => kdig::pins(self.project, nodes.iter().copied()),
            None => kdig::pins(self.project, self.nodes()),
        };
        kdig::agreed(&pins)
    }

    /// Like `agreed` for every node, but a disagreement is a failure that lists the pins.
    fn agreed_pin(&self) -> Result<String, Failure> {
        let pins = kdig::pins(self.project, self.nodes());
        kdig::agreed(&pins).ok_or_else(|| {
            Failure(format!(
                "the nodes do not serve one certificate over DoT: {}",
                kdig::describe(&pins)
            ))
        })
    }

    fn docker(&self, args: &[&str]) -> Result<(), Failure> {
        self.project.engine.docker(args, super::engine::SLOW)?;
        Ok(())
    }

    fn logs(&self, node: &NodeSpec, since: f64) -> String {
        self.project.logs(&node.name, Some(since))
    }

    fn label(&self) -> &'static str {
        if self.acme() {
            "the test CA's root"
        } else {
            "the local CA's root"
        }
    }
}

/// Now, in Unix seconds: where `docker logs --since` starts.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Calls `attempt` until it returns something, for at most `limit`; says what it waited
/// for when it gives up.
fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut attempt: impl FnMut() -> Option<T>,
) -> Result<T, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = attempt() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(Failure(format!(
                "timed out after {limit:?} waiting for {what}"
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn check(what: impl fmt::Display) {
    println!("   ok: {what}");
}

#[cfg(test)]
mod tests {
    use super::select;

    #[test]
    fn scenarios_are_chosen_by_letter() {
        assert_eq!(select(None).unwrap(), ['a', 'b', 'c', 'd', 'e', 'f']);
        assert_eq!(select(Some("f, a,a")).unwrap(), ['a', 'f']);
        let unknown = select(Some("a,g")).unwrap_err().to_string();
        assert!(
            unknown.contains("no scenario \"g\"") && unknown.contains("f (rolling restart)"),
            "{unknown}"
        );
        assert!(select(Some(",")).is_err());
    }
}
