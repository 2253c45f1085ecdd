//! Signing key rotation on a live cluster, by the documented steps
//! (docs/PROTOCOL.md, "Key rotation"), while DoT queries go to every worker without a
//! pause: (1) add key B to every worker's trusted keys and SIGHUP them, (2) the master signs
//! with A and B (SIGHUP), (3) workers trust B alone (SIGHUP), (4) the master signs with B
//! alone (SIGHUP). No query may fail; at the end a bundle signed by A alone is refused.
//! Nodes on 127.0.2.x.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::common::{
    self, Node,
    client::DotClient,
    cluster::{Cluster, NAME},
    wait_for,
};
use certzone::bundle::{self, SigningKey};
use hickory_proto::rr::RecordType;

const MASTER: &str = "127.0.2.1";
const WORKERS: [&str; 2] = ["127.0.2.2", "127.0.2.3"];

/// Queries one worker over a new DoT connection each time until stopped; counts answers
/// and failures.
struct Prober {
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl Prober {
    fn start(cluster: &Cluster, ip: &str) -> Self {
        let (ok, failed, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (addr, ca) = (cluster.dot(ip), cluster.ca());
        let counters = (ok.clone(), failed.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (ok, failed, stop) = counters;
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answered = DotClient::connect(addr, &ca, NAME)
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| {
                        c.ask("www.example.test", RecordType::A)
                            .map_err(|e| e.to_string())
                    });
                match answered {
                    Ok(answer) if answer.answers.len() == 1 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(answer) => {
                        errors.push(format!("{answer:?}"));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        errors.push(e);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                std::thread::sleep(Duration::from_millis(20));
            }
            errors
        });
        Self {
            ok,
            failed,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; returns (answers, failures and their reasons).
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.thread.take().unwrap().join().unwrap();
        let failed = self.failed.load(Ordering::Relaxed);
        assert_eq!(failed, errors.len());
        (self.ok.load(Ordering::Relaxed), errors)
    }
}

fn pem(key: &SigningKey) -> (String, String) {
    (
        bundle::signing_key_to_pem(key).unwrap(),
        bundle::verifying_key_to_pem(key.verifying_key()).unwrap(),
    )
}

fn id(key: &SigningKey) -> String {
    bundle::signing_key_id(key.verifying_key()).to_string()
}

/// Rewrites a key file and sends SIGHUP to `nodes`; waits until each logs `needle` once
/// more than before.
fn hup(cluster: &Cluster, file: &str, text: &str, nodes: &[&Node], needle: &str) {
    let before: Vec<usize> = nodes
        .iter()
        .map(|n| n.stderr().matches(needle).count())
        .collect();
    cluster.scratch.write(file, text);
    for node in nodes {
        node.signal("HUP");
    }
    for (node, before) in nodes.iter().zip(before) {
        wait_for(
            &format!("{needle:?} once more"),
            Duration::from_secs(10),
            || (node.stderr().matches(needle).count() > before).then_some(()),
        );
    }
}

#[test]
fn a_live_cluster_moves_from_key_a_to_key_b_without_a_failed_query() {
    let _gate = common::gate();
    let cluster = Cluster::new(MASTER, &WORKERS, &[0, 1]);
    cluster.set_cluster_id("rotation");
    let master = cluster.start_master();
    let workers: Vec<Node> = (0..WORKERS.len())
        .map(|i| cluster.start_worker(i))
        .collect();
    let leaf = cluster.served_leaf(MASTER).unwrap();
    for ip in WORKERS {
        cluster.wait_serving(ip, &leaf, Duration::from_secs(10));
    }
    let a = cluster.signing.clone();
    let b = bundle::generate_signing_key(&mut rand_core::OsRng);
    let ((a_secret, a_public), (b_secret, b_public)) = (pem(&a), pem(&b));
    let worker_refs: Vec<&Node> = workers.iter().collect();
    let probers: Vec<Prober> = WORKERS
        .iter()
        .map(|ip| Prober::start(&cluster, ip))
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // 1. Every worker trusts A and B.
    let both_public = format!("{a_public}{b_public}");
    hup(
        &cluster,
        "signing.pub",
        &both_public,
        &worker_refs,
        "trusted signing keys re-read",
    );
    // 2. The master signs with A and B; every worker installs a bundle both signatures of
    //    which it checked.
    let mut signers = [id(&a), id(&b)];
    signers.sort();
    let both_signed = format!("signers={}", signers.join(","));
    hup(
        &cluster,
        "signing.pem",
        &format!("{a_secret}{b_secret}"),
        &[&master],
        "signing keys changed",
    );
    for worker in &workers {
        worker.wait_log(&both_signed, Duration::from_secs(10));
    }
    // 3. Every worker trusts B alone.
    hup(
        &cluster,
        "signing.pub",
        &b_public,
        &worker_refs,
        "trusted signing keys re-read",
    );
    // 4. The master signs with B alone.
    let b_signed = format!("signers={} ", id(&b));
    hup(
        &cluster,
        "signing.pem",
        &b_secret,
        &[&master],
        "signing keys changed",
    );
    for worker in &workers {
        worker.wait_log(&b_signed, Duration::from_secs(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    for (prober, ip) in probers.into_iter().zip(WORKERS) {
        let (answered, failures) = prober.finish();
        assert!(
            answered > 10,
            "{ip}: only {answered} DoT answers during the rotation"
        );
        assert!(
            failures.is_empty(),
            "{ip}: failed DoT queries: {failures:?}"
        );
    }

    // The end: a bundle signed by A alone (the master given A again) is refused.
    let served: Vec<_> = WORKERS.iter().map(|ip| cluster.served_leaf(ip)).collect();
    hup(
        &cluster,
        "signing.pem",
        &a_secret,
        &[&master],
        "signing keys changed",
    );
    for worker in &workers {
        worker.wait_log(
            "signature check: no signature by a pinned key",
            Duration::from_secs(10),
        );
    }
    let after: Vec<_> = WORKERS.iter().map(|ip| cluster.served_leaf(ip)).collect();
    assert_eq!(served, after, "the workers keep the certificate B signed");
    for worker in workers {
        worker.stop();
    }
    master.stop();
}
