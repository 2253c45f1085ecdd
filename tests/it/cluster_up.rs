//! `certzone cluster up` and `cluster render` with the example cluster file: every node
//! answers over DoT with the same certificate, Ctrl-C stops them all, and bad cluster files
//! are refused with a message naming the problem. Addresses 127.0.11.x.

use std::{
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    time::Duration,
};

use crate::common::{self, Node, certzone, client::DotClient, kdig, repo};
use hickory_proto::rr::RecordType;

const IPS: [&str; 3] = ["127.0.11.1", "127.0.11.2", "127.0.11.3"];
/// For the refusals, so they never meet a running cluster's ports.
const OTHER_IPS: [&str; 3] = ["127.0.11.11", "127.0.11.12", "127.0.11.13"];

/// The example cluster file, laid out as in the repository in a scratch copy, moved to this
/// test's addresses (everything else as shipped).
fn example(scratch: &Path, ips: [&str; 3]) -> PathBuf {
    std::fs::create_dir_all(scratch.join("config")).unwrap();
    std::fs::create_dir_all(scratch.join("zones")).unwrap();
    std::fs::copy(
        repo().join("zones/example.test.zone"),
        scratch.join("zones/example.test.zone"),
    )
    .unwrap();
    let text = std::fs::read_to_string(repo().join("config/cluster.toml")).unwrap();
    let mut moved = text.clone();
    for (i, ip) in ips.iter().enumerate() {
        let shipped = format!("address = \"127.0.0.{}\"", i + 1);
        assert!(text.contains(&shipped), "example file has {shipped}");
        moved = moved.replace(&shipped, &format!("address = \"{ip}\""));
    }
    let path = scratch.join("config/cluster.toml");
    std::fs::write(&path, moved).unwrap();
    path
}

fn up(config: &Path) -> Node {
    // A previous run's log, which this run must keep as node.log.1.
    let master = config
        .parent()
        .unwrap()
        .join("../state/cluster/nodes/master");
    std::fs::create_dir_all(&master).unwrap();
    std::fs::write(master.join("node.log"), "the previous run\n").unwrap();
    let args = ["cluster", "up", "--config"].map(std::ffi::OsStr::new);
    let mut args = args.to_vec();
    args.push(config.as_os_str());
    let mut node = Node::spawn_args(&args, config);
    node.wait_stdout_line("cluster ready", Duration::from_secs(60));
    node
}

#[test]
fn cluster_up_serves_one_certificate_on_every_node_and_stops_on_ctrl_c() {
    let _gate = common::gate();
    let scratch = tempfile::tempdir().unwrap();
    let config = example(scratch.path(), IPS);
    let mut cluster = up(&config);
    let out = cluster.stdout();
    println!("{out}");
    let nodes = scratch.path().join("state/cluster/nodes");
    let previous = std::fs::read_to_string(nodes.join("master/node.log.1")).unwrap();
    assert_eq!(previous, "the previous run\n", "the previous log is kept");

    // The table has a row per node, all with the same fingerprint.
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| {
            IPS.iter()
                .any(|ip| l.split_whitespace().nth(2) == Some(*ip))
        })
        .collect();
    assert_eq!(rows.len(), 3, "one table row per node:\n{out}");

    // What a user checks: each node, over DoT, verified against the local CA, same leaf.
    let ca = scratch
        .path()
        .join("state/cluster/nodes/master/state/local-ca/ca.pem");
    let mut leaves = Vec::new();
    for ip in IPS {
        let address: SocketAddr = format!("{ip}:8530").parse().unwrap();
        let mut client = DotClient::connect(address, &ca, "ns1.example.test")
            .unwrap_or_else(|e| panic!("DoT to {address}: {e}"));
        let answer = client.ask("example.test.", RecordType::SOA).unwrap();
        assert_eq!(answer.answers.len(), 1, "{ip} answers SOA over DoT");
        leaves.push(client.peer_leaf());
    }
    assert!(
        leaves.iter().all(|l| l == &leaves[0]),
        "every node serves the master's certificate"
    );
    // The published records, as kdig shows them on every node: SVCB for DoT and DoH, and
    // the served leaf's key (TLSA 3 1 1: SHA-256 of its SPKI) at both ports.
    let leaf = rustls_pki_types::CertificateDer::from(leaves[0].clone());
    let spki: String = certzone::tls::spki_sha256(&leaf)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    for ip in IPS {
        let ask = |name: &str, rtype: &str| {
            kdig(&[&format!("@{ip}"), "-p", "5300", "+short", name, rtype])
        };
        let svcb = ask("_dns.ns1.example.test", "SVCB");
        assert!(
            svcb.contains("1 ns1.example.test. alpn=dot port=8530")
                && svcb.contains("2 ns1.example.test. alpn=h2 port=4430"),
            "{ip} SVCB: {svcb}"
        );
        for port in [8530, 4430] {
            let owner = format!("_{port}._tcp.ns1.example.test");
            // Workers transfer a zone at most once a second: the records may trail.
            common::wait_for(
                &format!("{ip} to answer the served key's TLSA at {owner}"),
                Duration::from_secs(5),
                || {
                    let tlsa = ask(&owner, "TLSA").replace(' ', "");
                    tlsa.contains(&format!("311{spki}")).then_some(())
                },
            );
        }
    }
    let fingerprint = certzone::tls::sha256_hex(&leaves[0]);
    for row in &rows {
        assert!(row.contains(&fingerprint), "table row shows it: {row}");
    }

    // The printed kdig lines work as printed (CA verified, no warning).
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("kdig "))
        .collect();
    assert_eq!(lines.len(), 4, "a DoT line per node and a DoH line:\n{out}");
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = kdig(&words[1..]);
        assert!(
            answer.contains("status: NOERROR")
                && answer.contains("hostmaster.example.test.")
                && !answer.contains("WARNING"),
            "`{line}` answered:\n{answer}"
        );
    }

    // Ctrl-C stops every node: the cluster command exits 0 and the ports are free again.
    cluster.signal("INT");
    assert_eq!(cluster.wait_exit(Duration::from_secs(20)), Some(0));
    for ip in IPS {
        let dns = format!("{ip}:5300");
        UdpSocket::bind(&dns).unwrap_or_else(|e| panic!("{dns} still held after Ctrl-C: {e}"));
    }
}

#[test]
fn render_writes_each_node_only_its_own_secrets() {
    let _gate = common::gate();
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempfile::tempdir().unwrap();
    let config = example(scratch.path(), OTHER_IPS);
    let out = certzone(&["cluster", "render", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let nodes = scratch.path().join("state/cluster/nodes");
    let files = |node: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(nodes.join(node))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        files("master"),
        [
            "example.test.zone",
            "node.toml",
            "signing.key",
            "transfer.key",
            "worker1.pub",
            "worker2.pub"
        ]
    );
    assert_eq!(
        files("worker1"),
        ["node.toml", "sealing.key", "signing.pub", "transfer.key"]
    );
    for secret in [
        "master/signing.key",
        "master/transfer.key",
        "worker1/sealing.key",
        "worker2/sealing.key",
    ] {
        let mode = std::fs::metadata(nodes.join(secret))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{secret}");
    }
    // The example's cluster id goes to every node; workers take nothing below format 2.
    let read = |node: &str| std::fs::read_to_string(nodes.join(node).join("node.toml")).unwrap();
    assert!(read("master").contains("cluster-id = \"example-local\""));
    for worker in ["worker1", "worker2"] {
        let text = read(worker);
        assert!(text.contains("cluster-id = \"example-local\""), "{text}");
        assert!(text.contains("minimum-format = 2"), "{text}");
    }
    // Each derived file passes check-config as it is.
    for node in ["master", "worker1", "worker2"] {
        let path = nodes.join(node).join("node.toml");
        let check = certzone(&["check-config", "--config", path.to_str().unwrap()]);
        assert!(check.status.success(), "{node}: {check:?}");
    }
    // Rendering again keeps the keys.
    let before = std::fs::read(nodes.join("worker1/sealing.key")).unwrap();
    let again = certzone(&["cluster", "render", "--config", config.to_str().unwrap()]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(
        before,
        std::fs::read(nodes.join("worker1/sealing.key")).unwrap()
    );
}

/// Runs `cluster up` on `text` and returns its error output; it must exit 2 at once.
fn refused(scratch: &Path, text: &str) -> String {
    let config = example(scratch, OTHER_IPS);
    std::fs::write(&config, text).unwrap();
    let out = certzone(&["cluster", "up", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit 2 for a bad cluster file: {stderr}"
    );
    assert!(
        !scratch.join("state/cluster/nodes").exists(),
        "no node directory written: {stderr}"
    );
    stderr
}

fn example_text(scratch: &Path) -> String {
    std::fs::read_to_string(example(scratch, OTHER_IPS)).unwrap()
}

#[test]
fn bad_cluster_files_are_refused_naming_the_problem() {
    let _gate = common::gate();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let text = example_text(dir);

    let duplicate = text.replace("name = \"worker2\"", "name = \"worker1\"");
    let err = refused(dir, &duplicate);
    assert!(
        err.contains("node[2].name") && err.contains("\"worker1\" is used twice"),
        "{err}"
    );

    let two_masters = text.replacen("role = \"worker\"", "role = \"master\"", 1);
    let err = refused(dir, &two_masters);
    assert!(
        err.contains("two masters") && err.contains("\"master\" and \"worker1\""),
        "{err}"
    );

    let same_address = text.replace("127.0.11.13", "127.0.11.12");
    let err = refused(dir, &same_address);
    assert!(
        err.contains("127.0.11.12 is already the address of node \"worker1\""),
        "{err}"
    );

    // An address among the names would never be served: refused before anything is written.
    let ip_name = text.replace(
        "names = [\"ns1.example.test\", \"localhost\"]",
        "names = [\"ns1.example.test\", \"127.0.0.7\"]",
    );
    let err = refused(dir, &ip_name);
    assert!(
        err.contains("`cluster.names`: `127.0.0.7` is an IP address"),
        "{err}"
    );

    let unknown = text.replace("[ports]", "[ports]\ndoh = 1");
    let err = refused(dir, &unknown);
    assert!(err.contains("doh") && err.contains("line"), "{err}");

    // An address in use: something already holds worker2's DNS port.
    let holder = UdpSocket::bind("127.0.11.13:5300").unwrap();
    let err = refused(dir, &text);
    assert!(
        err.contains("node \"worker2\": 127.0.11.13:5300 (dns over udp) is in use"),
        "{err}"
    );
    drop(holder);

    // Keys supplied by the operator, but the workers' signing public key is missing.
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let keygen = |args: &[&str]| {
        let out = certzone(args);
        assert!(out.status.success(), "{out:?}");
    };
    let path = |name: &str| keys.join(name).to_str().unwrap().to_string();
    keygen(&["keygen", "signing", "--out", &path("signing.key")]);
    keygen(&["keygen", "tsig", "transfer", "--out", &path("transfer.key")]);
    keygen(&["keygen", "worker", "--out", &path("worker1.key")]);
    keygen(&["keygen", "worker", "--out", &path("worker2.key")]);
    std::fs::remove_file(keys.join("signing.key.pub")).unwrap();
    let supplied = text.replace(
        "generate = true",
        &format!("generate = false\ndir = \"{}\"", keys.display()),
    );
    let err = refused(dir, &supplied);
    assert!(
        err.contains("node \"worker1\" (worker) needs the signing public key")
            && err.contains("signing.key.pub"),
        "{err}"
    );
}

/// A broken zone file is refused by `cluster render` before anything is written: the master's
/// good copy stays, and the error names the operator's file and line.
#[test]
fn render_refuses_a_broken_zone_file_and_keeps_the_masters_copy() {
    let _gate = common::gate();
    let scratch = tempfile::tempdir().unwrap();
    let config = example(scratch.path(), OTHER_IPS);
    let render = || certzone(&["cluster", "render", "--config", config.to_str().unwrap()]);
    assert!(render().status.success());
    let copy = scratch
        .path()
        .join("state/cluster/nodes/master/example.test.zone");
    let good = std::fs::read(&copy).unwrap();
    let zone = scratch.path().join("zones/example.test.zone");
    let text = std::fs::read_to_string(&zone).unwrap();
    let broken = text.replace("192.0.2.25", "192.0.2.25.9");
    let line = broken
        .lines()
        .position(|l| l.contains("192.0.2.25.9"))
        .unwrap()
        + 1;
    std::fs::write(&zone, broken).unwrap();
    let out = render();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cluster.zone-file")
            && stderr.contains(&format!("/zones/example.test.zone line {line}")),
        "names the operator's file and line: {stderr}"
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        good,
        "the master's copy is kept"
    );
}
