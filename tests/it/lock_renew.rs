//! One node per state directory, and `certzone renew` only where there is something to
//! renew and a node to ask: the real binary, a planted `sleep` standing in for whatever
//! process a stale pid file may name.

use std::{
    process::{Child, Command},
    time::Duration,
};

use crate::common::{self, Node, Scratch, certzone, node_config};

/// A process a stale pid file could name; it must survive every refused `renew`.
struct Bystander(Child);

impl Bystander {
    fn start() -> Self {
        Self(
            Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("start sleep"),
        )
    }

    fn assert_alive(&mut self) {
        // SIGUSR1's default action ends a process: give a stray signal time to land.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            self.0.try_wait().expect("poll sleep").is_none(),
            "the process named in the pid file was signalled"
        );
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn plant_pid_file(scratch: &Scratch, pid: u32) {
    std::fs::create_dir_all(scratch.path("state")).expect("state dir");
    scratch.write("state/certzone.pid", &format!("{pid}\n"));
}

fn renew(config: &std::path::Path) -> (Option<i32>, String, String) {
    let out = certzone(&["renew", "--config", config.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_second_node_on_the_same_state_directory_refuses() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let first_config = scratch.write("a.toml", &node_config("127.0.19.1", "state", "", ""));
    let first = Node::start(&first_config);
    // Other addresses, the same state directory.
    let second_config = scratch.write("b.toml", &node_config("127.0.19.2", "state", "", ""));
    let mut second = Node::spawn(&second_config);
    assert_eq!(second.wait_exit(Duration::from_secs(10)), Some(1));
    let stderr = second.stderr();
    assert!(
        stderr.contains(&format!(
            "another certzone node runs on it (pid {})",
            first.pid()
        )),
        "the refusal names the first node's pid: {stderr}"
    );
    assert!(!second.stdout().contains("certzone ready"));
    // The refused node removed nothing of the first's.
    let pid = std::fs::read_to_string(scratch.path("state/certzone.pid")).expect("pid file");
    assert_eq!(pid.trim(), first.pid().to_string());
    first.stop();
    assert!(
        !scratch.path("state/certzone.pid").exists(),
        "removed on exit"
    );
}

fn worker_config(ip: &str) -> String {
    format!(
        r#"role = "worker"
state-dir = "state"

[listen]
udp = ["{ip}:5300"]

[tls]
names = ["ns1.example.test"]
source = "certificate-zone"

[primary]
address = "127.0.19.250:5300"
tsig-key-file = "transfer.key"

[certificate-zone]
name = "_certzone.example.test."
signing-public-key = "signing.pub"
sealing-key = "sealing.key"

[[secondary]]
name = "example.test."
"#
    )
}

#[test]
fn renew_on_a_worker_refuses_and_signals_nothing() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let config = scratch.write("worker.toml", &worker_config("127.0.19.3"));
    let mut bystander = Bystander::start();
    plant_pid_file(&scratch, bystander.0.id());
    let (code, stdout, stderr) = renew(&config);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("nothing to renew") && stderr.contains("renew on the master"),
        "{stderr}"
    );
    assert!(!stdout.contains("renewal requested"), "{stdout}");
    bystander.assert_alive();
}

#[test]
fn renew_on_a_local_ca_master_refuses() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let config = scratch.write("node.toml", &node_config("127.0.19.4", "state", "", ""));
    let node = Node::start(&config);
    let (code, stdout, stderr) = renew(&config);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("\"local-ca\""), "{stderr}");
    node.stop();
}

/// An ACME master's config, but no node running: a planted pid file is not believed.
#[test]
fn renew_without_a_running_node_signals_nothing() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let tls = "names = [\"ns1.example.test\"]\nsource = \"acme\"\n\n[acme]\n\
               directory = \"https://127.0.19.250:14000/dir\"";
    let config = scratch.write("node.toml", &node_config("127.0.19.5", "state", tls, ""));
    let mut bystander = Bystander::start();
    plant_pid_file(&scratch, bystander.0.id());
    let (code, stdout, stderr) = renew(&config);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("no running node"), "{stderr}");
    bystander.assert_alive();
}
