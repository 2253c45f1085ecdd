//! What a real resolver makes of certzone's answers: Unbound, with a stub zone pointing at
//! a certzone node, resolves names below an in-zone delegation (served by a second
//! certzone node, found through the referral's glue), wildcard names asked for AAAA and
//! then A (the negative AAAA answer must not poison the A), and CNAME chains, one of them
//! into the delegation.
//!
//! Glue carries addresses, not ports, so both nodes listen on port 53 of their own
//! loopback address (the tests run as root, as the BIND tests do). Unbound's root is a
//! stub at a loopback address where nothing listens: no query leaves the machine. Its
//! built-in NXDOMAIN for `test.` (RFC 6761) is turned off.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::common::{self, Node, kdig, wait_for};

const PARENT: &str = "127.0.31.1";
const CHILD: &str = "127.0.31.2";
const UNBOUND: &str = "127.0.31.3";
const NOWHERE: &str = "127.0.31.9";

const PARENT_ZONE: &str = "$ORIGIN res.test.
$TTL 300
@        IN SOA   ns1.res.test. hostmaster.res.test. 1 3600 600 86400 60
@        IN NS    ns1
ns1      IN A     127.0.31.1
www      IN A     192.0.2.10
*.w      IN A     192.0.2.100
c1       IN CNAME c2
c2       IN CNAME www
cdeleg   IN CNAME host.sub
sub      IN NS    ns1.sub
ns1.sub  IN A     127.0.31.2
";

const CHILD_ZONE: &str = "$ORIGIN sub.res.test.
$TTL 300
@        IN SOA   ns1.sub.res.test. hostmaster.res.test. 1 3600 600 86400 60
@        IN NS    ns1
ns1      IN A     127.0.31.2
host     IN A     192.0.2.50
deeper.name IN A  192.0.2.51
";

#[test]
fn unbound_resolves_delegations_wildcards_and_cname_chains() {
    let _gate = common::gate();
    let dir = tempfile::tempdir().unwrap();
    let _parent = start_node(dir.path(), "parent", PARENT, "res.test.", PARENT_ZONE);
    let _child = start_node(dir.path(), "child", CHILD, "sub.res.test.", CHILD_ZONE);
    let _unbound = Unbound::start(dir.path());

    // Names below an in-zone delegation: the referral's glue leads to the child.
    assert_eq!(
        resolve("host.sub.res.test", "A"),
        ("NOERROR", vec!["192.0.2.50".to_string()])
    );
    assert_eq!(
        resolve("deeper.name.sub.res.test", "A"),
        ("NOERROR", vec!["192.0.2.51".to_string()])
    );
    // A wildcard name without AAAA: no data, and its A still resolves afterwards
    // (an NXDOMAIN would have been cached for the whole name, RFC 8020).
    assert_eq!(resolve("match.w.res.test", "AAAA"), ("NOERROR", vec![]));
    assert_eq!(
        resolve("match.w.res.test", "A"),
        ("NOERROR", vec!["192.0.2.100".to_string()])
    );
    // CNAME chains, inside the zone and into the delegation.
    assert_eq!(
        resolve("c1.res.test", "A"),
        (
            "NOERROR",
            vec![
                "c2.res.test.".to_string(),
                "www.res.test.".to_string(),
                "192.0.2.10".to_string()
            ]
        )
    );
    assert_eq!(
        resolve("cdeleg.res.test", "A"),
        (
            "NOERROR",
            vec!["host.sub.res.test.".to_string(), "192.0.2.50".to_string()]
        )
    );
    // A name that does not exist is still NXDOMAIN.
    assert_eq!(resolve("nothing.res.test", "A"), ("NXDOMAIN", vec![]));
}

fn start_node(dir: &Path, name: &str, ip: &str, origin: &str, zone: &str) -> Node {
    let zone_file = dir.join(format!("{name}.zone"));
    std::fs::write(&zone_file, zone).unwrap();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "state-dir = \"{name}-state\"\n[listen]\nudp = [\"{ip}:53\"]\ntcp = [\"{ip}:53\"]\n\
             [[zone]]\nname = \"{origin}\"\nfile = \"{}\"\n",
            zone_file.display()
        ),
    )
    .unwrap();
    Node::start(&config)
}

/// The status and the answer section's data, as Unbound gives them to a stub resolver.
fn resolve(name: &str, qtype: &str) -> (&'static str, Vec<String>) {
    let out = kdig(&[&format!("@{UNBOUND}"), "-p", "5353", name, qtype]);
    let status = ["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"]
        .into_iter()
        .find(|s| out.contains(&format!("status: {s}")))
        .unwrap_or_else(|| panic!("no status in kdig's output:\n{out}"));
    let mut in_answer = false;
    let mut data = Vec::new();
    for line in out.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            in_answer = true;
        } else if line.starts_with(";;") || line.trim().is_empty() {
            in_answer = false;
        } else if in_answer {
            data.push(line.split_whitespace().last().unwrap_or("").to_string());
        }
    }
    (status, data)
}

/// `unbound -d` as a child process, killed on drop.
struct Unbound {
    child: Child,
}

impl Unbound {
    fn start(dir: &Path) -> Self {
        let d = dir.display();
        let conf = dir.join("unbound.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n  interface: {UNBOUND}@5353\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n\
                 \x20 chroot: \"\"\n  username: \"\"\n  use-syslog: no\n  logfile: \"\"\n\
                 \x20 do-ip6: no\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n\
                 \x20 access-control: 127.0.0.0/8 allow\n  verbosity: 1\n\
                 \x20 local-zone: \"test.\" nodefault\n\
                 stub-zone:\n  name: \"res.test.\"\n  stub-addr: {PARENT}@53\n\
                 stub-zone:\n  name: \".\"\n  stub-addr: {NOWHERE}@53\n"
            ),
        )
        .unwrap();
        let child = Command::new("unbound")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unbound (installed by tests/setup.sh)");
        wait_for("unbound to answer", Duration::from_secs(20), || {
            let out = kdig(&[&format!("@{UNBOUND}"), "-p", "5353", "www.res.test", "A"]);
            out.contains("status: NOERROR").then_some(())
        });
        Self { child }
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
