//! One node per state directory: `<state-dir>/certzone.lock`, held with `flock` for the
//! node's life and holding its pid, and `<state-dir>/certzone.pid` for `kill -USR1`.
//!
//! Owns the lock and the pid files: a second node on the same directory refuses to start
//! naming the first's pid, and only the holder removes the pid file. `certzone renew` asks
//! [`holder`] which process, if any, holds the lock. It must not touch anything else in
//! the state directory.

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};

/// Why the state directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "failed to lock state directory {dir}: another certzone node runs on it (pid {pid}); \
         stop it first or give this node its own state-dir"
    )]
    Held { dir: PathBuf, pid: String },
    #[error("failed to lock {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// The held lock; the pid file goes when it is dropped (the lock with the process).
pub(super) struct StateLock {
    _lock: Flock<File>,
    pid_file: PathBuf,
}

impl StateLock {
    /// Takes `state_dir` for this process, or says which process has it.
    pub(super) fn acquire(state_dir: &Path) -> Result<Self, LockError> {
        crate::state::ensure_dir(state_dir)?;
        let path = lock_path(state_dir);
        let io = |cause| LockError::Io {
            path: path.clone(),
            cause,
        };
        // Not truncated on open: the holder's pid must stay readable for the message.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(crate::state::PUBLIC)
            .open(&path)
            .map_err(io)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                return Err(LockError::Held {
                    dir: state_dir.to_path_buf(),
                    pid: read_pid(&mut file).unwrap_or_else(|| "unknown".into()),
                });
            }
            Err((_, errno)) => return Err(io(errno.into())),
        };
        let pid = format!("{}\n", std::process::id());
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| lock.write_all(pid.as_bytes()))
            .and_then(|()| lock.sync_all())
            .map_err(io)?;
        let pid_file = pid_path(state_dir);
        crate::state::write_atomic(&pid_file, pid.as_bytes(), crate::state::PUBLIC)?;
        Ok(Self {
            _lock: lock,
            pid_file,
        })
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Who holds a state directory, as `certzone renew` finds it.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nobody holds the lock: no node runs there (whatever the pid file says).
    Nobody,
    /// A node holds it; its pid, as it wrote it.
    Node(i32),
    /// Held, but the pid in the lock file does not read as one.
    Unknown,
}

/// Which process holds `state_dir`'s lock. Takes it for a moment when nobody does.
pub fn holder(state_dir: &Path) -> Result<Holder, LockError> {
    let path = lock_path(state_dir);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Holder::Nobody),
        Err(cause) => return Err(LockError::Io { path, cause }),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => Ok(Holder::Nobody),
        Err((mut file, Errno::EWOULDBLOCK)) => Ok(read_pid(&mut file)
            .and_then(|p| p.parse().ok())
            .map_or(Holder::Unknown, Holder::Node)),
        Err((_, errno)) => Err(LockError::Io {
            path,
            cause: errno.into(),
        }),
    }
}

fn read_pid(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let pid = text.trim();
    (!pid.is_empty()).then(|| pid.to_string())
}

/// `<state-dir>/certzone.lock`: locked by the running node, holding its pid.
pub fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("certzone.lock")
}

/// `<state-dir>/certzone.pid`, for `kill -USR1 $(cat ...)`; removed on exit.
pub fn pid_path(state_dir: &Path) -> PathBuf {
    state_dir.join("certzone.pid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()).unwrap(), Holder::Nobody);
        let first = StateLock::acquire(dir.path()).unwrap();
        let pid = std::process::id() as i32;
        assert_eq!(holder(dir.path()).unwrap(), Holder::Node(pid));
        match StateLock::acquire(dir.path()) {
            Err(LockError::Held { pid: held, .. }) => assert_eq!(held, pid.to_string()),
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        assert!(
            pid_path(dir.path()).exists(),
            "the refused one left the pid file"
        );
        drop(first);
        assert!(!pid_path(dir.path()).exists());
        assert_eq!(holder(dir.path()).unwrap(), Holder::Nobody);
    }
}
