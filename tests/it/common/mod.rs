//! The test harness: the real `certzone` binary as a child process, real clients (kdig, dig),
//! and small Rust clients for what needs one connection held open.
//!
//! Every wait is bounded and names what it waited for. A node is killed when dropped, and its
//! output is printed when the test failed, so a red test shows what the node said.

#![allow(dead_code, unreachable_pub)]

pub mod axfr;
pub mod bind;
pub mod client;
pub mod cluster;
pub mod http;
pub mod knot;
pub mod load;
pub mod pebble;
pub mod proc;
pub mod responder;

mod gate;
pub use gate::gate;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

/// The binary under test, built once by cargo for every test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_certzone")
}

/// The repository root, for the checked-in zones and configs.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Polls `check` until it returns `Some`, at most `limit`; panics naming `what` otherwise.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `certzone run` process.
pub struct Node {
    child: Child,
    pub config: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// `cluster up`: stopped with SIGTERM when dropped, so it stops its nodes (SIGKILL
    /// would leave them running, holding the next test's ports).
    supervises: bool,
}

impl Node {
    /// Starts `certzone run --config <config>` and waits for its ready banner.
    pub fn start(config: &Path) -> Self {
        Self::start_within(config, Duration::from_secs(20))
    }

    /// As [`Node::start`], for nodes with big zones to load first.
    pub fn start_within(config: &Path, limit: Duration) -> Self {
        let mut node = Self::spawn(config);
        node.wait_ready(limit);
        node
    }

    /// Starts the process without waiting (for tests that expect it to fail).
    pub fn spawn(config: &Path) -> Self {
        Self::spawn_args(
            &["run".as_ref(), "--config".as_ref(), config.as_os_str()],
            config,
        )
    }

    /// Starts `certzone run` under `wrapper` (say `prlimit --nofile=256:256 --`) and waits
    /// for its ready banner.
    pub fn start_wrapped(wrapper: &[&str], config: &Path) -> Self {
        let mut command = Command::new(wrapper[0]);
        command.args(&wrapper[1..]).arg(binary()).args([
            "run".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ]);
        let mut node = Self::spawn_command(command, config, false);
        node.wait_ready(Duration::from_secs(20));
        node
    }

    /// Starts `certzone ARGS...` (any command that runs until signalled); `config` is the
    /// file it was given, for messages.
    pub fn spawn_args(args: &[&std::ffi::OsStr], config: &Path) -> Self {
        let mut command = Command::new(binary());
        command.args(args);
        let supervises = args.first().is_some_and(|a| *a == "cluster");
        Self::spawn_command(command, config, supervises)
    }

    fn spawn_command(mut command: Command, config: &Path, supervises: bool) -> Self {
        let mut child = command
            .env("CERTZONE_LOG", "info,certzone=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start certzone");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone(), Some(tx)),
            collect(child.stderr.take().unwrap(), stderr.clone(), None),
        ];
        Self {
            child,
            config: config.to_path_buf(),
            stdout,
            stderr,
            lines,
            readers,
            supervises,
        }
    }

    fn wait_ready(&mut self, limit: Duration) {
        self.wait_stdout_line("certzone ready", limit);
    }

    /// Waits for a line of standard output starting with `prefix`.
    pub fn wait_stdout_line(&mut self, prefix: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(_) => panic!(
                    "certzone did not print a line starting {prefix:?} within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                ),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (HUP, TERM, INT).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let status = wait_for("certzone to exit", limit, || {
            self.child.try_wait().ok().flatten()
        });
        // The pipes close with the process, so the readers end promptly.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status.code()
    }

    /// Stops the node with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        self.signal("TERM");
        let code = self.wait_exit(Duration::from_secs(10));
        assert_eq!(
            code,
            Some(0),
            "certzone exits 0 on SIGTERM\n{}",
            self.stderr()
        );
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the node's log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        wait_for(&format!("log line containing {needle:?}"), limit, || {
            self.stderr().contains(needle).then_some(())
        });
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.supervises && self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- certzone {} stdout ---\n{}",
                self.config.display(),
                self.stdout()
            );
            eprintln!(
                "--- certzone {} stderr ---\n{}",
                self.config.display(),
                self.stderr()
            );
        }
    }
}

fn collect(
    pipe: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
            drop(text);
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    })
}

/// Runs `certzone` with `args` to completion.
/// The bundle version a master keeps in `<state-dir>/bundle/version`: the highest
/// `version N` line of its two copies.
pub fn stored_bundle_version(state_dir: &Path) -> u64 {
    let path = state_dir.join("bundle").join("version");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("version ")?.parse().ok())
        .max()
        .unwrap_or_else(|| panic!("no version line in {}:\n{text}", path.display()))
}

pub fn certzone(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("run certzone")
}

/// Runs kdig with `args`; panics if it cannot start.
pub fn kdig(args: &[&str]) -> String {
    tool("kdig", &["+timeout=3", "+retry=0"], args)
}

/// Runs dig with `args`; panics if it cannot start.
pub fn dig(args: &[&str]) -> String {
    tool("dig", &["+time=3", "+tries=1"], args)
}

fn tool(name: &str, bounds: &[&str], args: &[&str]) -> String {
    let out = Command::new(name)
        .args(bounds)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name} (installed by .ci/run): {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// A temporary directory with the checked-in example zone copied in.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(
            repo().join("zones/example.test.zone"),
            dir.path().join("example.test.zone"),
        )
        .unwrap();
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `certzone keygen ARGS --out FILE` in here; panics with its message on failure.
    pub fn keygen(&self, args: &[&str], file: &str) {
        let out_path = self.path(file);
        let mut all = vec!["keygen"];
        all.extend_from_slice(args);
        all.extend(["--out", out_path.to_str().unwrap()]);
        let out = certzone(&all);
        assert!(
            out.status.success(),
            "keygen {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The local CA certificate of a node whose state dir is `state` in here.
    pub fn local_ca(&self, state: &str) -> PathBuf {
        self.path(state).join("local-ca/ca.pem")
    }
}

/// A node config on `ip` with every listener (DNS 5300, DoT 8530, DoH 4430) and the example
/// zone. `tls` is the body of `[tls]` (empty: the local CA for ns1.example.test); `extra`
/// is appended.
pub fn node_config(ip: &str, state: &str, tls: &str, extra: &str) -> String {
    let tls = if tls.is_empty() {
        "names = [\"ns1.example.test\"]"
    } else {
        tls
    };
    format!(
        r#"state-dir = "{state}"

[listen]
udp = ["{ip}:5300"]
tcp = ["{ip}:5300"]
tls = ["{ip}:8530"]
https = ["{ip}:4430"]

[tls]
{tls}

[[zone]]
name = "example.test."
file = "example.test.zone"
{extra}"#
    )
}
