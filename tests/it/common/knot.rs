//! Knot DNS's `knotd` as a child process on one loopback address: the reference server
//! for answers. It serves zone files exactly as written (no semantic checks, no journal,
//! nothing written back), starts in well under a second, and is killed on drop, its log
//! printed if the test failed.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{kdig, wait_for};

pub struct Knot {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Knot {
    /// Serves each `(origin, zone file)` on `addr` (UDP and TCP), with its state in `dir`;
    /// waits (at most 20 s) until every zone's SOA is answered.
    pub fn start(dir: &Path, addr: SocketAddr, zones: &[(&str, PathBuf)]) -> Self {
        let d = dir.display();
        let mut conf = format!(
            "server:\n    listen: {}@{}\n    rundir: \"{d}\"\n\
             database:\n    storage: \"{d}\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             acl:\n  - id: transfer\n    address: 127.0.0.0/8\n    action: transfer\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-load: whole\n\
             \x20   zonefile-sync: -1\n    journal-content: none\n    semantic-checks: off\n\
             \x20   acl: transfer\n\
             zone:\n",
            addr.ip(),
            addr.port()
        );
        for (origin, file) in zones {
            conf.push_str(&format!(
                "  - domain: \"{origin}\"\n    file: \"{}\"\n",
                file.display()
            ));
        }
        let path = dir.join("knot.conf");
        std::fs::write(&path, conf).expect("write knot.conf");
        let mut child = Command::new("knotd")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start knotd (knot, installed by tests/setup.sh)");
        let log = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let knot = Self { child, addr, log };
        for (origin, _) in zones {
            knot.wait_zone(origin, Duration::from_secs(20));
        }
        knot
    }

    fn wait_zone(&self, zone: &str, limit: Duration) {
        let server = format!("@{}", self.addr.ip());
        let port = self.addr.port().to_string();
        wait_for(&format!("knotd to serve {zone} SOA"), limit, || {
            let answer = kdig(&[&server, "-p", &port, zone, "SOA", "+short"]);
            let served = answer.lines().next().is_some_and(|l| !l.starts_with(';'));
            served.then_some(())
        });
    }

    /// Every record of `zone` as Knot transfers it, one `owner ttl class type data` line
    /// each (kdig's text).
    pub fn transfer(&self, zone: &str) -> Vec<String> {
        let server = format!("@{}", self.addr.ip());
        let port = self.addr.port().to_string();
        let text = kdig(&[&server, "-p", &port, zone, "AXFR", "+noall", "+answer"]);
        text.lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Everything `knotd` logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- knotd {} log ---\n{}", self.addr, self.log());
        }
    }
}
