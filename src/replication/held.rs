//! A worker's held state for one certificate zone, kept apart from the bundle cache so a
//! lost or replaced cache cannot open a rollback: the highest bundle version it ever
//! accepted and the highest minimum format a bundle asked for.
//!
//! Owns the file (`<state-dir>/held/<zone>held`): a magic line, then `version N` and
//! `minimum-format F`, written atomically and never lowered. It must not judge bundles.

use std::path::Path;

use crate::state;

const MAGIC: &str = "certzone held state 1";

/// What the worker must never go below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Held {
    pub(super) version: u64,
    pub(super) minimum_format: u8,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum HeldError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(
        "held state {path} line {line}: {message}; fix or remove it (removing it lowers the rollback floor)"
    )]
    Corrupt {
        path: String,
        line: usize,
        message: &'static str,
    },
}

impl Held {
    /// The larger of each field.
    pub(super) fn max(self, other: Self) -> Self {
        Self {
            version: self.version.max(other.version),
            minimum_format: self.minimum_format.max(other.minimum_format),
        }
    }
}

/// The held state at `path`; the default (nothing held) when there is no file.
pub(super) fn load(path: &Path) -> Result<Held, HeldError> {
    let Some(bytes) = state::read_optional(path)? else {
        return Ok(Held::default());
    };
    let corrupt = |line, message| HeldError::Corrupt {
        path: path.display().to_string(),
        line,
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(1, "not text"))?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(corrupt(1, "not a certzone held state file"));
    }
    let mut held = Held::default();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        match line.split_once(' ') {
            Some(("version", n)) => {
                held.version = n.parse().map_err(|_| corrupt(number, "bad version"))?;
            }
            Some(("minimum-format", n)) => {
                held.minimum_format = n.parse().map_err(|_| corrupt(number, "bad format"))?;
            }
            _ if line.is_empty() => {}
            _ => return Err(corrupt(number, "unknown line")),
        }
    }
    Ok(held)
}

/// Raises the held state at `path` to at least `held` (never lowers it), atomically.
pub(super) fn raise(path: &Path, held: Held) -> Result<Held, HeldError> {
    let merged = load(path)?.max(held);
    state::ensure_dir(path.parent().unwrap_or(Path::new(".")))?;
    let text = format!(
        "{MAGIC}\nversion {}\nminimum-format {}\n",
        merged.version, merged.minimum_format
    );
    state::write_atomic(path, text.as_bytes(), state::PUBLIC)?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_lowered_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held").join("_certzone.example.test.held");
        assert_eq!(load(&path).unwrap(), Held::default());
        let high = Held {
            version: 100,
            minimum_format: 2,
        };
        assert_eq!(raise(&path, high).unwrap(), high);
        let lower = Held {
            version: 90,
            minimum_format: 1,
        };
        assert_eq!(raise(&path, lower).unwrap(), high, "never lowered");
        assert_eq!(load(&path).unwrap(), high);
        std::fs::write(&path, format!("{MAGIC}\nversion x\n")).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("held"), "{err}");
    }
}
