//! One cluster file as a compose project: its name, its containers, its files under
//! `<state-dir>/docker/`, and the questions asked of the engine about it.
//!
//! Owns the mapping from the cluster's nodes to container names and the project's own
//! directory. It must not decide what a scenario checks, nor write node directories
//! (`cluster::render` does).

use std::path::{Path, PathBuf};

use super::{
    Problem,
    engine::{Engine, EngineError, QUICK},
};
use crate::cluster::{Ca, Cluster, Docker, NodeSpec, docker};

/// The port Pebble serves its ACME directory on, and its management port (its root).
pub(super) const PEBBLE_PORT: u16 = 14000;
pub(super) const PEBBLE_MANAGEMENT_PORT: u16 = 15000;
/// Where the client container sees its directory (the roots it trusts, its query loop).
pub(super) const CLIENT_MOUNT: &str = "/client";

/// A cluster file with a `[docker]` table, and the engine that runs it.
pub(super) struct Project {
    /// The cluster as it runs on docker: with the test CA, Pebble is its ACME directory.
    pub(super) cluster: Cluster,
    pub(super) docker: Docker,
    /// `<state-dir>/docker`, absolute: compose mounts paths from it.
    pub(super) dir: PathBuf,
    pub(super) engine: Engine,
}

/// A container of the project and the state Docker reports (running, exited, ...).
#[derive(Debug, Clone)]
pub(super) struct Container {
    pub(super) name: String,
    pub(super) state: String,
}

impl Project {
    /// Reads the cluster file and finds the engine. Writes nothing.
    pub(super) fn load(path: &Path) -> Result<Self, Problem> {
        let mut cluster = Cluster::load(path).map_err(|e| Problem::Refused(e.to_string()))?;
        let docker = cluster.docker.clone().ok_or_else(|| {
            Problem::Refused(format!(
                "{}: no [docker] table: add one with at least `subnet = \"172.30.77.0/24\"` \
                 (an IPv4 network holding every node's address)",
                path.display()
            ))
        })?;
        let state_dir = std::path::absolute(&cluster.state_dir).map_err(|e| {
            Problem::Refused(format!(
                "failed to resolve {}: {e}",
                cluster.state_dir.display()
            ))
        })?;
        cluster.state_dir = state_dir.clone();
        let dir = state_dir.join("docker");
        point_at_test_ca(&mut cluster, &docker, &dir)?;
        let engine = Engine::find().map_err(|e| Problem::Refused(e.to_string()))?;
        Ok(Self {
            cluster,
            docker,
            dir,
            engine,
        })
    }

    pub(super) fn name(&self) -> &str {
        &self.docker.project
    }

    /// The container of a node, or of the `test-ca` or `client` service.
    pub(super) fn container(&self, service: &str) -> String {
        format!("{}-{service}", self.docker.project)
    }

    /// The docker network: named after the project.
    pub(super) fn network(&self) -> &str {
        &self.docker.project
    }

    pub(super) fn compose_file(&self) -> PathBuf {
        self.dir.join("compose.json")
    }

    pub(super) fn client_dir(&self) -> PathBuf {
        self.dir.join("client")
    }

    pub(super) fn pebble_dir(&self) -> PathBuf {
        self.dir.join("test-ca")
    }

    pub(super) fn node_dir(&self, node: &NodeSpec) -> PathBuf {
        self.cluster.node_dir(node)
    }

    /// Every service: the nodes (master first), then the test CA and the client.
    pub(super) fn services(&self) -> Vec<String> {
        let mut services: Vec<String> = self.cluster.nodes.iter().map(|n| n.name.clone()).collect();
        if self.docker.test_ca.is_some() {
            services.push(docker::TEST_CA.to_string());
        }
        if self.docker.client.is_some() {
            services.push(docker::CLIENT.to_string());
        }
        services
    }

    /// The compose command on the project's file.
    pub(super) fn compose(
        &self,
        args: &[&str],
        limit: std::time::Duration,
    ) -> Result<String, EngineError> {
        self.engine
            .compose(&self.compose_file(), self.name(), args, limit)
    }

    /// The project's containers, whatever their state.
    pub(super) fn containers(&self) -> Result<Vec<Container>, EngineError> {
        let filter = format!("label=com.docker.compose.project={}", self.name());
        let out = self.engine.docker(
            &[
                "ps",
                "--all",
                "--filter",
                &filter,
                "--format",
                "{{.Names}}\t{{.State}}",
            ],
            QUICK,
        )?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(name, state)| Container {
                name: name.to_string(),
                state: state.to_string(),
            })
            .collect())
    }

    /// Whether the project's network exists.
    pub(super) fn network_exists(&self) -> Result<bool, EngineError> {
        let out = self
            .engine
            .docker_output(&["network", "inspect", self.network()], QUICK)?;
        Ok(out.status.success())
    }

    /// A command in the client container; its exit status is the caller's to judge.
    pub(super) fn client(&self, args: &[&str]) -> Result<std::process::Output, EngineError> {
        let container = self.container(docker::CLIENT);
        let mut full = vec!["exec", container.as_str()];
        full.extend_from_slice(args);
        self.engine.docker_output(&full, QUICK)
    }

    /// The log of a service's container, from `since` (Unix seconds) on.
    pub(super) fn logs(&self, service: &str, since: Option<f64>) -> String {
        self.engine.logs(&self.container(service), since)
    }
}

/// With the test CA, the master orders from Pebble on the network and trusts the HTTPS CA
/// made for it; an outside directory cannot be reached from the internal network.
fn point_at_test_ca(cluster: &mut Cluster, docker: &Docker, dir: &Path) -> Result<(), Problem> {
    let Ca::Acme {
        directory,
        ca_roots,
        ..
    } = &mut cluster.ca
    else {
        return Ok(());
    };
    let Some(test_ca) = docker.test_ca else {
        return Err(Problem::Refused(format!(
            "{}: key `ca.directory`: the docker network is internal (its containers reach \
             only each other), so the master cannot reach {}: set [docker] test-ca = true \
             to order from Pebble on the network",
            cluster.path.display(),
            directory.as_deref().unwrap_or("the directory")
        )));
    };
    *directory = Some(format!("https://{}:{PEBBLE_PORT}/dir", test_ca.address));
    *ca_roots = vec![dir.join("test-ca").join("https-ca.pem")];
    Ok(())
}
