//! BIND 9's `named` as a child process on one loopback address, for tests
//! that need a real, independent nameserver: primary zones from text (with
//! an optional TSIG key that alone may transfer them), secondary zones of
//! another server, TSIG keys.
//!
//! `named` only listens on addresses an interface carries, and Linux routes
//! all of 127/8 to `lo` without listing each address, so [`Bind::start`]
//! adds `IP/32` to `lo` when it is missing (needs root, as the test
//! container has; the alias is left in place: other tests may use it).
//! The process is killed on drop, and its log printed if the test failed.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{dig, wait_for};

/// Who may transfer a zone.
#[derive(Clone, Debug)]
pub enum Transfer {
    /// nobody: AXFR is REFUSED
    Refused,
    /// anyone
    Any,
    /// only requests signed with this key (by name)
    Key(String),
}

/// Where a zone's data comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// a primary zone with this zone-file text (`$ORIGIN` is added)
    Primary(String),
    /// a secondary that transfers from `primary`, signed with the key named
    Secondary {
        primary: SocketAddr,
        key: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct BindZone {
    /// absolute name, e.g. `_certzone.example.test.`
    pub name: String,
    pub source: Source,
    pub transfer: Transfer,
    /// more statements for the zone block, e.g. `notify explicit; also-notify { ... };`
    pub extra: String,
}

/// One `named` instance.
#[derive(Clone, Debug, Default)]
pub struct BindConfig {
    pub ip: String,
    pub port: u16,
    /// `key "NAME" { ... };` blocks, as `certzone keygen tsig` prints them
    pub keys: Vec<String>,
    pub zones: Vec<BindZone>,
    /// more statements for the `options` block, e.g. `transfer-message-size 1024;`
    pub options: String,
}

pub struct Bind {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Bind {
    /// Writes the configuration and zone files into `dir`, starts `named -g`
    /// and waits (at most 20 s) until it serves the SOA of every primary zone.
    pub fn start(dir: &Path, config: &BindConfig) -> Self {
        ensure_loopback_address(&config.ip);
        let conf = dir.join("named.conf");
        std::fs::write(&conf, named_conf(dir, config)).expect("write named.conf");
        for zone in &config.zones {
            if let Source::Primary(text) = &zone.source {
                let body = format!("$ORIGIN {}\n{text}", zone.name);
                std::fs::write(dir.join(zone_file(&zone.name)), body).expect("write zone");
            }
        }
        let addr = format!("{}:{}", config.ip, config.port)
            .parse()
            .expect("ip and port make an address");
        let bind = Self::spawn(&conf, dir, addr);
        for zone in &config.zones {
            if matches!(zone.source, Source::Primary(_)) {
                bind.wait_zone(&zone.name, Duration::from_secs(20));
            }
        }
        bind
    }

    fn spawn(conf: &Path, dir: &Path, addr: SocketAddr) -> Self {
        let mut child = Command::new("named")
            .arg("-g")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start named (bind9, installed by tests/setup.sh)");
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
        Self {
            child,
            addr,
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// Waits until `named` answers the SOA of `zone` (for a secondary: once
    /// it has transferred it).
    pub fn wait_zone(&self, zone: &str, limit: Duration) {
        let server = format!("@{}", self.addr.ip());
        let port = self.addr.port().to_string();
        wait_for(&format!("named to serve {zone} SOA"), limit, || {
            let answer = dig(&[&server, "-p", &port, zone, "SOA", "+short"]);
            let served = answer.lines().next().is_some_and(|l| !l.starts_with(';'));
            served.then_some(())
        });
    }

    /// Makes `named` re-read its configuration and zone files (SIGHUP), as `rndc reload` does.
    pub fn reload(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP named");
    }

    /// Everything `named` logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        wait_for(&format!("named log line with {needle:?}"), limit, || {
            self.log().contains(needle).then_some(())
        });
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- named {} log ---\n{}", self.addr, self.log());
        }
    }
}

/// The file a zone is kept in, relative to the instance's directory.
pub fn zone_file(name: &str) -> String {
    format!("{}.zone", name.trim_end_matches('.'))
}

fn named_conf(dir: &Path, config: &BindConfig) -> String {
    let d = dir.display();
    let mut out = format!(
        "options {{\n\tdirectory \"{d}\";\n\tpid-file \"{d}/named.pid\";\n\
         \tsession-keyfile \"{d}/session.key\";\n\
         \tlisten-on port {} {{ {}; }};\n\tlisten-on-v6 {{ none; }};\n\
         \trecursion no;\n\tnotify no;\n\tdnssec-validation no;\n{}\n}};\n\
         # no rndc channel: several instances must not fight over port 953\n\
         controls {{ }};\n",
        config.port, config.ip, config.options
    );
    for key in &config.keys {
        out.push_str(key);
        out.push('\n');
    }
    for zone in &config.zones {
        out.push_str(&zone_block(zone));
    }
    out
}

fn zone_block(zone: &BindZone) -> String {
    let transfer = match &zone.transfer {
        Transfer::Refused => "none;".to_string(),
        Transfer::Any => "any;".to_string(),
        Transfer::Key(key) => format!("key \"{key}\";"),
    };
    let source = match &zone.source {
        Source::Primary(_) => "type primary;".to_string(),
        Source::Secondary { primary, key } => {
            let key = key
                .as_ref()
                .map(|k| format!(" key \"{k}\""))
                .unwrap_or_default();
            let (ip, port) = (primary.ip(), primary.port());
            format!("type secondary; primaries {{ {ip} port {port}{key}; }};")
        }
    };
    // Secondaries write text zone files, so tests can read them and run named-checkzone.
    let format = match zone.source {
        Source::Secondary { .. } => " masterfile-format text;",
        Source::Primary(_) => "",
    };
    format!(
        "zone \"{}\" {{ {source} file \"{}\";{format} allow-transfer {{ {transfer} }}; {} }};\n",
        zone.name,
        zone_file(&zone.name),
        zone.extra
    )
}

/// Adds `ip/32` to `lo` unless an interface already has it.
fn ensure_loopback_address(ip: &str) {
    let shown = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .expect("run ip (iproute2)");
    if String::from_utf8_lossy(&shown.stdout).contains(&format!("inet {ip}/")) {
        return;
    }
    let added = Command::new("ip")
        .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
        .output()
        .expect("run ip (iproute2)");
    let err = String::from_utf8_lossy(&added.stderr);
    // another test may have added it meanwhile
    assert!(
        added.status.success() || err.contains("File exists") || err.contains("already assigned"),
        "named listens only on interface addresses; adding {ip}/32 to lo failed (root needed): {err}"
    );
}
