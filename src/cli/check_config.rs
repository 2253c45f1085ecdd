//! `certzone check-config --config FILE`: everything `run` checks, no socket opened.

use std::{path::Path, process::ExitCode};

pub(super) fn check_config(path: &Path) -> ExitCode {
    match super::load(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
