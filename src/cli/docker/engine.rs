//! The Docker engine through its command-line tools: `docker`, and `docker compose`
//! (Compose v2) or `docker-compose` (Compose v1), whichever is installed.
//!
//! Owns finding them, running them bounded in time and reporting what they said. It knows
//! nothing of clusters: callers name the containers, networks and files.

use std::{
    ffi::OsStr,
    io,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

/// How long a quick question to the engine (inspect, ps, exec of kdig) may take.
pub(super) const QUICK: Duration = Duration::from_secs(30);
/// How long starting, stopping or building may take.
pub(super) const SLOW: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub(super) enum EngineError {
    #[error("docker is not installed: no `docker` on PATH (install the Docker engine and its CLI)")]
    NoDocker,
    #[error(
        "docker compose is not installed: neither `docker compose` (Compose v2) nor \
         `docker-compose` (Compose v1) runs here (install one; Debian: docker-compose)"
    )]
    NoCompose,
    #[error(
        "the Docker engine does not answer `docker version`: {0} (start it, or check \
         DOCKER_HOST and your access to its socket)"
    )]
    NoEngine(String),
    #[error("failed to run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("`{command}` did not finish within {limit:?}")]
    Timeout { command: String, limit: Duration },
    #[error("`{command}` failed ({status}): {output}")]
    Status {
        command: String,
        status: String,
        output: String,
    },
}

/// The docker CLI and the compose command found beside it.
#[derive(Debug, Clone)]
pub(super) struct Engine {
    /// `["docker", "compose"]` or `["docker-compose"]`.
    compose: Vec<&'static str>,
}

impl Engine {
    /// Finds docker and compose, and checks that the engine answers. Runs nothing else.
    pub(super) fn find() -> Result<Self, EngineError> {
        if find_program("docker").is_none() {
            return Err(EngineError::NoDocker);
        }
        let works = |program: &str, args: &[&str]| {
            let mut command = Command::new(program);
            command.args(args);
            run(command, QUICK).is_ok_and(|o| o.status.success())
        };
        let compose = if works("docker", &["compose", "version"]) {
            vec!["docker", "compose"]
        } else if find_program("docker-compose").is_some() && works("docker-compose", &["version"])
        {
            vec!["docker-compose"]
        } else {
            return Err(EngineError::NoCompose);
        };
        let engine = Self { compose };
        engine
            .docker(&["version", "--format", "{{.Server.Version}}"], QUICK)
            .map_err(|e| match e {
                EngineError::Status { output, .. } => {
                    EngineError::NoEngine(first_line(&output).to_string())
                }
                other => EngineError::NoEngine(other.to_string()),
            })?;
        Ok(engine)
    }

    /// `docker ARGS`; its standard output when it succeeds.
    pub(super) fn docker(&self, args: &[&str], limit: Duration) -> Result<String, EngineError> {
        let mut command = Command::new("docker");
        command.args(args);
        checked(command, limit)
    }

    /// `docker ARGS` whatever its exit status: for commands whose failure is an answer.
    pub(super) fn docker_output(
        &self,
        args: &[&str],
        limit: Duration,
    ) -> Result<Output, EngineError> {
        let mut command = Command::new("docker");
        command.args(args);
        run(command, limit)
    }

    /// `docker ARGS` left running (its output discarded), for a loop the caller stops.
    pub(super) fn spawn_docker(&self, args: &[&str]) -> Result<Child, EngineError> {
        Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| EngineError::Spawn {
                command: format!("docker {}", args.join(" ")),
                source,
            })
    }

    /// `docker logs` of a container, both streams in order, from `since` (Unix seconds).
    pub(super) fn logs(&self, container: &str, since: Option<f64>) -> String {
        let mut args = vec!["logs".to_string()];
        if let Some(since) = since {
            // Docker reads the digits after the point as nanoseconds.
            args.extend(["--since".to_string(), format!("{since:.9}")]);
        }
        args.push(container.to_string());
        let mut command = Command::new("docker");
        command.args(&args);
        match run_merged(command, QUICK) {
            Ok(text) => text,
            Err(e) => format!("(no log: {e})"),
        }
    }

    /// The compose command on `file` as project `project`.
    pub(super) fn compose(
        &self,
        file: &Path,
        project: &str,
        args: &[&str],
        limit: Duration,
    ) -> Result<String, EngineError> {
        let mut command = Command::new(self.compose[0]);
        command
            .args(&self.compose[1..])
            .arg("--project-name")
            .arg(project)
            .arg("--file")
            .arg(file)
            .args(args);
        checked(command, limit)
    }
}

/// Runs `command` to its end or for at most `limit` (then kills it); output captured.
pub(super) fn run(mut command: Command, limit: Duration) -> Result<Output, EngineError> {
    let shown = describe(&command);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| EngineError::Spawn {
            command: shown.clone(),
            source,
        })?;
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(limit) {
        Ok(result) => result.map_err(|source| EngineError::Spawn {
            command: shown,
            source,
        }),
        Err(_) => {
            // The waiting thread reaps it once it is gone.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            Err(EngineError::Timeout {
                command: shown,
                limit,
            })
        }
    }
}

/// Standard output of a command that must succeed; its error output names the failure.
fn checked(command: Command, limit: Duration) -> Result<String, EngineError> {
    let shown = describe(&command);
    let output = run(command, limit)?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
        return Err(EngineError::Status {
            command: shown,
            status: output.status.to_string(),
            output: text,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Both streams through one pipe, so lines keep their order (`docker logs` splits them).
fn run_merged(mut command: Command, limit: Duration) -> Result<String, EngineError> {
    let (reader, writer) = io::pipe().map_err(|source| EngineError::Spawn {
        command: describe(&command),
        source,
    })?;
    let writer_too = writer.try_clone().map_err(|source| EngineError::Spawn {
        command: describe(&command),
        source,
    })?;
    command.stdout(writer).stderr(writer_too);
    let shown = describe(&command);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut text = String::new();
        let read = io::Read::read_to_string(&mut reader, &mut text).map(|_| text);
        sender.send(read)
    });
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| EngineError::Spawn {
            command: shown.clone(),
            source,
        })?;
    // The pipe's writers now live only in the child: the reader sees its end.
    drop(command);
    let text = receiver.recv_timeout(limit);
    let _ = child.kill();
    let _ = child.wait();
    match text {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(source)) => Err(EngineError::Spawn {
            command: shown,
            source,
        }),
        Err(_) => Err(EngineError::Timeout {
            command: shown,
            limit,
        }),
    }
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// `name` on PATH, as the shell would find it.
pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| {
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
