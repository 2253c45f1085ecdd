//! A worker's held state for one certificate zone, kept apart from the bundle cache so a
//! lost or replaced cache cannot open a rollback: the highest bundle version it ever
//! accepted and the highest minimum format a bundle asked for.
//!
//! Owns the file (`<state-dir>/held/<zone>held`): `version N` and `minimum-format F` in a
//! [`state::Slots`] file, never lowered. It is written before every certificate is served,
//! so a raise is one in-place write and one `fdatasync`. The one-copy text of earlier
//! releases (`certzone held state 1`) is still read. It must not judge bundles.

use std::path::Path;

use crate::state::{self, Loaded, Slots};

/// One copy, in the format before slots.
const MAGIC_V1: &str = "certzone held state 1";
const MAGIC: &str = "certzone held state 2";

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
    open(path).map(|(_, held)| held)
}

/// Raises the held state at `path` to at least `held` (never lowers it), on disk when it
/// returns. The file is read again first: an operator may have replaced it.
pub(super) fn raise(path: &Path, held: Held) -> Result<Held, HeldError> {
    let (mut slots, on_disk) = open(path)?;
    let merged = on_disk.max(held);
    let body = format!(
        "version {}\nminimum-format {}\n",
        merged.version, merged.minimum_format
    );
    slots.write(&body)?;
    Ok(merged)
}

fn open(path: &Path) -> Result<(Slots, Held), HeldError> {
    let (slots, loaded) = Slots::load(path, MAGIC, state::PUBLIC)?;
    let corrupt = |line, message| HeldError::Corrupt {
        path: path.display().to_string(),
        line,
        message,
    };
    let held = match loaded {
        Loaded::Missing => Held::default(),
        // The slot's lines start after its magic and seq lines.
        Loaded::Body(body) => parse(&body, 3).map_err(|(l, m)| corrupt(l, m))?,
        Loaded::Other(bytes) => {
            let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(1, "not text"))?;
            let Some(rest) = text
                .strip_prefix(MAGIC_V1)
                .and_then(|r| r.strip_prefix('\n'))
            else {
                return Err(corrupt(1, "not a certzone held state file"));
            };
            parse(rest, 2).map_err(|(l, m)| corrupt(l, m))?
        }
        Loaded::Damaged => return Err(corrupt(1, "neither copy is intact")),
    };
    Ok((slots, held))
}

/// `version` and `minimum-format` lines; `first` is the number of the first line, for
/// errors.
fn parse(text: &str, first: usize) -> Result<Held, (usize, &'static str)> {
    let mut held = Held::default();
    for (i, line) in text.lines().enumerate() {
        let number = first + i;
        match line.split_once(' ') {
            Some(("version", n)) => {
                held.version = n.parse().map_err(|_| (number, "bad version"))?
            }
            Some(("minimum-format", n)) => {
                held.minimum_format = n.parse().map_err(|_| (number, "bad format"))?;
            }
            _ if line.is_empty() => {}
            _ => return Err((number, "unknown line")),
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(version: u64, minimum_format: u8) -> Held {
        Held {
            version,
            minimum_format,
        }
    }

    #[test]
    fn never_lowered_and_kept_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held").join("_certzone.example.test.held");
        assert_eq!(load(&path).unwrap(), Held::default());
        assert_eq!(raise(&path, held(100, 2)).unwrap(), held(100, 2));
        assert_eq!(
            raise(&path, held(90, 1)).unwrap(),
            held(100, 2),
            "never lowered"
        );
        assert_eq!(raise(&path, held(101, 1)).unwrap(), held(101, 2));
        assert_eq!(load(&path).unwrap(), held(101, 2));
    }

    #[test]
    fn the_format_before_slots_is_read_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        std::fs::write(&path, format!("{MAGIC_V1}\nversion 12\nminimum-format 1\n")).unwrap();
        assert_eq!(load(&path).unwrap(), held(12, 1));
        raise(&path, held(13, 1)).unwrap();
        assert_eq!(load(&path).unwrap(), held(13, 1));
        std::fs::write(&path, format!("{MAGIC_V1}\nversion x\n")).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("held"), "{err}");
        std::fs::write(&path, "something else\n").unwrap();
        let err = raise(&path, held(14, 1)).unwrap_err().to_string();
        assert!(err.contains("not a certzone held state file"), "{err}");
    }
}
