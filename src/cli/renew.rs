//! `certzone renew --config FILE`: asks the running node to renew its certificate now, by
//! sending SIGUSR1 to the pid in `<state-dir>/certzone.pid`.

use std::{path::Path, process::ExitCode};

use nix::{sys::signal, unistd::Pid};

pub(super) fn renew(path: &Path) -> ExitCode {
    let config = match crate::config::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_BAD_CONFIG);
        }
    };
    let pid_path = crate::node::pid_path(&config.state_dir);
    let Ok(Ok(pid)) = std::fs::read_to_string(&pid_path).map(|s| s.trim().parse::<i32>()) else {
        eprintln!(
            "error: no running node found: cannot read a pid from {}",
            pid_path.display()
        );
        return ExitCode::FAILURE;
    };
    if let Err(e) = signal::kill(Pid::from_raw(pid), signal::Signal::SIGUSR1) {
        eprintln!("error: failed to signal certzone (pid {pid}): {e}");
        return ExitCode::FAILURE;
    }
    println!("renewal requested from certzone (pid {pid}); its log shows the order");
    ExitCode::SUCCESS
}
