//! README's first command: `cluster up` with `config/cluster.toml` as shipped (127.0.0.1-3,
//! ports 5300/8530/4430) comes up, and both the lines README shows and the lines the command
//! prints work as written. Then the single-node variant README mentions, the same way. One
//! test, so the two never hold 127.0.0.1:5300 at the same time.

use std::{path::Path, time::Duration};

use crate::common::{self, Node, kdig, repo};

/// The files, laid out as in the repository, in a scratch copy so the test leaves no state
/// behind in the checkout.
fn scratch_repo() -> tempfile::TempDir {
    let scratch = tempfile::tempdir().unwrap();
    for dir in ["config/local", "zones"] {
        std::fs::create_dir_all(scratch.path().join(dir)).unwrap();
    }
    for file in [
        "config/cluster.toml",
        "config/local/node.toml",
        "zones/example.test.zone",
    ] {
        std::fs::copy(repo().join(file), scratch.path().join(file)).unwrap();
    }
    scratch
}

/// Runs a `kdig`/`dig` line as a user would from the repository root (here: `root`).
fn run_line(line: &str, root: &Path) {
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| match w.strip_prefix("+tls-ca=") {
            Some(path) if !path.starts_with('/') => {
                format!("+tls-ca={}", root.join(path).display())
            }
            _ => w.to_string(),
        })
        .collect();
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let out = match words[0].as_str() {
        "kdig" => kdig(&args),
        "dig" => common::dig(&args),
        other => panic!("unexpected command {other} in `{line}`"),
    };
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 1"),
        "`{line}` answered:\n{out}"
    );
    // kdig warns when it could not verify TLS; dig's only warning is about recursion.
    assert!(
        words[0] == "dig" || !out.contains("WARNING"),
        "`{line}`:\n{out}"
    );
}

fn command_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("kdig ") || l.starts_with("dig "))
        .collect()
}

/// The shell block README shows right after the quick start ("With the cluster from (1)
/// running ...").
fn readme_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let after = readme
        .split("With the cluster from (1) running")
        .nth(1)
        .expect("README shows commands for the running cluster");
    let block = after.split("```").nth(1).expect("a code block");
    command_lines(block).into_iter().map(String::from).collect()
}

#[test]
fn quick_start_cluster_and_node_answer_the_lines_shown() {
    let _gate = common::gate();
    let scratch = scratch_repo();
    let root = scratch.path();

    let config = root.join("config/cluster.toml");
    let args = ["cluster", "up", "--config"].map(std::ffi::OsStr::new);
    let mut args = args.to_vec();
    args.push(config.as_os_str());
    let mut cluster = Node::spawn_args(&args, &config);
    cluster.wait_stdout_line("cluster ready", Duration::from_secs(60));
    let printed = cluster.stdout();
    let lines = command_lines(&printed);
    assert_eq!(lines.len(), 4, "kdig lines for every node:\n{printed}");
    for line in lines {
        run_line(
            &line.replace("example.test. SOA", "www.example.test A"),
            root,
        );
    }
    let shown = readme_lines();
    assert_eq!(shown.len(), 3, "README shows DoT, DoH and plain DNS lines");
    for line in &shown {
        run_line(line, root);
    }
    cluster.signal("INT");
    assert_eq!(cluster.wait_exit(Duration::from_secs(20)), Some(0));

    // The single node, whose banner prints its own lines.
    let node = Node::start(&root.join("config/local/node.toml"));
    let banner = node.stdout();
    let lines = command_lines(&banner);
    assert_eq!(
        lines.len(),
        3,
        "dig, kdig over TLS and over HTTPS:\n{banner}"
    );
    for line in lines {
        assert!(
            line.contains("+tls-ca=") || line.starts_with("dig "),
            "{line}"
        );
        run_line(
            &line.replace("example.test. SOA", "www.example.test A"),
            root,
        );
    }
    node.stop();
}
