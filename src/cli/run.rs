//! `certzone run --config FILE`: run one node until SIGTERM or SIGINT.

use std::{path::Path, process::ExitCode};

pub(super) fn run(path: &Path) -> ExitCode {
    let prepared = match super::load(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::node::run(prepared)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
