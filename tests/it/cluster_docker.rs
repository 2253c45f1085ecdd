//! `certzone cluster docker` refusing bad input before it talks to Docker: a node outside
//! the subnet, an ACME directory the internal network cannot reach, no `[docker]` table,
//! an unknown scenario, no docker on PATH. Each exits 2 with a message naming the problem
//! and writes nothing. (What needs the engine -- a subnet in use, no compose, no engine,
//! a second `up`, `down`, the scenarios -- is tests/docker/run.sh.) Opens no socket.

use std::{path::Path, process::Command};

use crate::common::{self, binary, certzone, repo};

/// The tests' first docker cluster file, edited, in `dir` with its zone.
fn cluster_file(dir: &Path, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(repo().join("tests/docker/cluster.toml")).unwrap();
    std::fs::copy(
        repo().join("tests/docker/example.test.zone"),
        dir.join("example.test.zone"),
    )
    .unwrap();
    let path = dir.join("cluster.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs `certzone ARGS` and expects exit 2 and nothing written; returns stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = certzone(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!dir.join("state").exists(), "nothing written: {stderr}");
    stderr
}

#[test]
fn a_node_outside_the_subnet_is_refused_naming_it() {
    let _gate = common::gate();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let config = cluster_file(dir, |t| t.replace("172.30.77.12", "172.30.78.12"));
    for command in ["up", "test", "down", "logs"] {
        let err = refused(dir, &["cluster", "docker", command, "--config", &config]);
        assert!(
            err.contains("key `node[2].address`")
                && err.contains(
                    "node \"worker2\": 172.30.78.12 is outside the [docker] subnet 172.30.77.0/24"
                ),
            "{command}: {err}"
        );
    }
    // `cluster render` reads the same file, and refuses it the same way.
    let err = refused(dir, &["cluster", "render", "--config", &config]);
    assert!(err.contains("172.30.78.12 is outside"), "{err}");
}

#[test]
fn acme_directories_and_docker_tables_are_checked_before_docker() {
    let _gate = common::gate();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();

    // The network is internal: an outside directory is unreachable without the test CA.
    let outside = cluster_file(dir, |t| {
        t.replace("test-ca = true\n", "")
            .replace("test-ca-address = \"172.30.77.2\"\n", "")
            .replace("test-ca-leaf-secs = 90\n", "")
            .replace(
                "kind = \"acme\"",
                "kind = \"acme\"\ndirectory = \"https://acme.example/dir\"",
            )
    });
    let err = refused(dir, &["cluster", "docker", "up", "--config", &outside]);
    assert!(
        err.contains("key `ca.directory`")
            && err.contains("https://acme.example/dir")
            && err.contains("test-ca = true"),
        "{err}"
    );

    // Without the test CA's directory, ACME has none outside docker.
    let docker_only = cluster_file(dir, |t| t);
    let err = refused(dir, &["cluster", "render", "--config", &docker_only]);
    assert!(
        err.contains("`ca.directory`") && err.contains("cluster docker"),
        "{err}"
    );

    // [ca] and [docker] replaced by the local CA: a cluster file fit for `cluster up`.
    let no_table = cluster_file(dir, |t| {
        let start = t.find("\n[ca]\n").unwrap();
        let end = t.find("\n[[node]]").unwrap();
        format!("{}\n[ca]\nkind = \"local\"\n{}", &t[..start], &t[end..])
    });
    let err = refused(dir, &["cluster", "docker", "up", "--config", &no_table]);
    assert!(err.contains("no [docker] table"), "{err}");

    let err = refused(
        dir,
        &[
            "cluster",
            "docker",
            "test",
            "--config",
            &docker_only,
            "--scenario",
            "a,z",
        ],
    );
    assert!(
        err.contains("no scenario \"z\"") && err.contains("f (rolling restart)"),
        "{err}"
    );
}

#[test]
fn no_docker_on_path_is_refused_naming_it() {
    let _gate = common::gate();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let config = cluster_file(dir, |t| t);
    for command in ["up", "down"] {
        let out = Command::new(binary())
            .args(["cluster", "docker", command, "--config", &config])
            .env("PATH", dir.join("no-such-dir"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("docker is not installed: no `docker` on PATH"),
            "{stderr}"
        );
        assert!(!dir.join("state").exists(), "nothing written");
    }
}
