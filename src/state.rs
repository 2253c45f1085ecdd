//! Files in the state directory, written so that a crash never leaves half a file.
//!
//! Owns the write discipline: temporary file in the same directory, fsync, rename, fsync of
//! the directory; key files mode 0600. It must not know what the bytes mean.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Mode for private keys and anything derived from them.
pub const SECRET: u32 = 0o600;
/// Mode for certificates and other public material.
pub const PUBLIC: u32 = 0o644;

#[derive(Debug, thiserror::Error)]
#[error("failed to {action} {path}: {source}")]
pub struct StateError {
    action: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

impl StateError {
    pub(crate) fn new(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Creates `dir` (and its parents) if needed, mode 0700: it holds keys.
pub fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    if dir.is_dir() {
        return Ok(());
    }
    // Parents made on the way get 0700 too: the state directory is often one of them.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StateError::new("create directory", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| StateError::new("set permissions of", dir, e))
}

/// Replaces `path` with `bytes` atomically, with the given mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = write_new(&tmp, bytes, mode)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| StateError::new("rename into", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // The rename is only durable once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StateError::new("sync directory", dir, e))
}

/// Writes a file that must not exist yet (keygen without `--force`).
pub fn write_exclusive(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| StateError::new("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StateError::new("write", path, e))
}

/// Reads a file, `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::new("read", path, e)),
    }
}

/// A stale temporary file from a crash would block `create_new`: remove it first.
fn write_new(tmp: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let _ = fs::remove_file(tmp);
    write_exclusive(tmp, bytes, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_atomic(&path, b"one", SECRET).unwrap();
        write_atomic(&path, b"two", SECRET).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn directories_made_on_the_way_are_private_too() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        ensure_dir(&state.join("acme")).unwrap();
        for made in [state.clone(), state.join("acme")] {
            let mode = fs::metadata(&made).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", made.display());
        }
    }

    #[test]
    fn exclusive_write_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_exclusive(&path, b"a", SECRET).unwrap();
        assert!(write_exclusive(&path, b"b", SECRET).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"a");
    }
}
