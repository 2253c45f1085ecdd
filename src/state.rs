//! Files in the state directory, written so that a crash never leaves half a file.
//!
//! Owns the write discipline: temporary file in the same directory, fsync, rename, fsync of
//! the directory; key files mode 0600; and for small records written before every change
//! they guard, two copies rewritten in place (`slots`); for copies the node can get again,
//! a spare file exchanged with them, without fsync (`LatestFile`). It must not know what
//! the bytes mean.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Mutex,
};

mod slots;

pub use slots::{Loaded, Slots};

/// Mode for private keys and anything derived from them.
pub const SECRET: u32 = 0o600;
/// Mode for certificates and other public material.
pub const PUBLIC: u32 = 0o644;

#[derive(Debug, thiserror::Error)]
#[error("failed to {action} {path}: {cause}")]
pub struct StateError {
    action: &'static str,
    path: PathBuf,
    // Not a `#[source]`: the message already ends with it, and chains would print it twice.
    cause: std::io::Error,
}

impl StateError {
    pub(crate) fn new(action: &'static str, path: &Path, cause: std::io::Error) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            cause,
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

/// A copy the node can always get again (from the primary, or by publishing anew), kept so
/// a restart does not have to: replaced whole (a spare file written, then exchanged with
/// it), so a crash of the process never leaves half a file, but not fsynced. After a power
/// loss it may hold older contents, or none; its readers verify what they read and fall
/// back. Syncing it cost a worker about a fifth of its CPU per renewal, for a copy nothing
/// depends on. Without a sync a write is a copy into the page cache and a rename, so the
/// caller makes it at once: handing it to a blocking thread cost more (a thread woken).
pub struct LatestFile {
    path: PathBuf,
    mode: u32,
    writing: Mutex<()>,
}

impl LatestFile {
    pub fn new(path: PathBuf, mode: u32) -> Self {
        Self {
            path,
            mode,
            writing: Mutex::default(),
        }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes`; a failure goes to `failed`, for the log. Both files written this way
    /// hold zone records, public data (the sealed keys are sealed), so the bytes are not
    /// wiped: wiping a worker's cache cost as much as writing it.
    pub fn write(&self, bytes: Vec<u8>, failed: fn(&StateError)) {
        let _one_at_a_time = lock(&self.writing);
        let result = ensure_dir(parent(&self.path))
            .and_then(|()| replace_unsynced(&self.path, &bytes, self.mode));
        if let Err(e) = result {
            failed(&e);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Replaces `path` with `bytes` atomically, with the given mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let tmp = beside(path, "tmp");
    let result = write_new(&tmp, bytes, mode)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| StateError::new("rename into", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(parent(path))
}

/// Replaces `path` with `bytes` without fsync (see [`LatestFile`]). The new contents go
/// into a spare file beside it (`.NAME.next`), written in place, which then trades places
/// with `path` in one atomic exchange: the spare keeps the old contents for the next write.
/// So no inode is made or freed per write, which on ext4 (new inode, blocks freed and
/// discarded) cost more than the write itself. Readers of `path` see the old file or the
/// new one, never a part of either.
fn replace_unsynced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    use std::os::unix::fs::FileExt as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let spare = parent(path).join(format!(".{name}.next"));
    OpenOptions::new()
        .write(true)
        .create(true)
        .mode(mode)
        .open(&spare)
        .and_then(|file| {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.write_all_at(bytes, 0)?;
            file.set_len(bytes.len() as u64)
        })
        .map_err(|e| StateError::new("write", &spare, e))?;
    exchange(&spare, path).map_err(|e| StateError::new("rename into", path, e))
}

/// Swaps two files atomically; a plain rename when `to` does not exist yet, or where the
/// file system cannot exchange.
fn exchange(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::{errno::Errno, fcntl};
        match fcntl::renameat2(None, from, None, to, fcntl::RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(Errno::ENOENT | Errno::EINVAL | Errno::ENOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    fs::rename(from, to)
}

/// [`write_atomic`] for contents made piece by piece: `fill` writes them through a buffer
/// into the temporary file, which is synced and renamed only if it succeeds. For a large
/// zone copy, so the whole file never sits in memory.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StateError> {
    let tmp = beside(path, "tmp");
    let _ = fs::remove_file(&tmp);
    let result = write_exclusive(&tmp, &[], mode).and_then(|()| {
        let file = OpenOptions::new()
            .write(true)
            .open(&tmp)
            .map_err(|e| StateError::new("open", &tmp, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        fill(&mut out)
            .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all())
            .map_err(|e| StateError::new("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| StateError::new("rename into", path, e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(parent(path))
}

/// Replaces every `(path, bytes, mode)` together, or none of them: a key and its `.pub`.
/// All are written to temporary files first; only then renamed into place. If a rename
/// fails, the files already replaced get their old contents back (kept as hard links
/// until every rename is done). A crash before the first rename leaves the old files.
pub fn replace_together(files: &[(&Path, &[u8], u32)]) -> Result<(), StateError> {
    let temps: Vec<PathBuf> = files.iter().map(|(p, ..)| beside(p, "tmp")).collect();
    let backups: Vec<PathBuf> = files.iter().map(|(p, ..)| beside(p, "old")).collect();
    let cleanup = |paths: &[PathBuf]| paths.iter().for_each(|p| drop(fs::remove_file(p)));
    let prepared = files
        .iter()
        .zip(&temps)
        .try_for_each(|((_, bytes, mode), tmp)| write_new(tmp, bytes, *mode))
        .and_then(|()| keep_old(files, &backups));
    if let Err(e) = prepared {
        cleanup(&temps);
        cleanup(&backups);
        return Err(e);
    }
    for (i, ((path, ..), tmp)) in files.iter().zip(&temps).enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            // Put back what was already replaced: the pair stays the old one.
            for ((done, ..), backup) in files[..i].iter().zip(&backups) {
                if backup.exists() {
                    let _ = fs::rename(backup, done);
                } else {
                    let _ = fs::remove_file(done);
                }
            }
            cleanup(&temps);
            cleanup(&backups);
            return Err(StateError::new("rename into", path, e));
        }
    }
    cleanup(&backups);
    files.iter().try_for_each(|(p, ..)| sync_dir(parent(p)))
}

/// Hard links to the files `files` would replace, so a failed rename can restore them.
fn keep_old(files: &[(&Path, &[u8], u32)], backups: &[PathBuf]) -> Result<(), StateError> {
    for ((path, ..), backup) in files.iter().zip(backups) {
        let _ = fs::remove_file(backup);
        match fs::hard_link(path, backup) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StateError::new("keep the old", path, e)),
        }
    }
    Ok(())
}

/// The directory holding `path`; `.` for a bare file name.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A hidden file beside `path`, named for this process: `.NAME.KIND.PID`.
fn beside(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    parent(path).join(format!(".{name}.{kind}.{}", std::process::id()))
}

/// A rename is only durable once the directory entry is.
fn sync_dir(dir: &Path) -> Result<(), StateError> {
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
    // The umask may have narrowed the mode at creation; public files must be readable.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
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
    fn a_latest_file_reads_back_each_write_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy");
        let file = LatestFile::new(path.clone(), SECRET);
        let fail = |e: &StateError| panic!("{e}");
        // Longer, then shorter, then longer again: the spare is rewritten in place.
        for contents in [&b"first, long contents"[..], b"two", b"third, longer again"] {
            file.write(contents.to_vec(), fail);
            assert_eq!(fs::read(&path).unwrap(), contents);
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, SECRET);
        }
        assert_eq!(
            fs::read(dir.path().join(".copy.next")).unwrap(),
            b"two",
            "the spare holds the contents before"
        );
    }

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
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent(Path::new("key.pem")), Path::new("."));
        assert_eq!(
            beside(Path::new("key.pem"), "tmp"),
            Path::new(".").join(format!(".key.pem.tmp.{}", std::process::id()))
        );
    }

    #[test]
    fn files_replaced_together_keep_nothing_beside_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("k"), dir.path().join("k.pub"));
        write_atomic(&a, b"old", SECRET).unwrap();
        replace_together(&[(&a, b"new", SECRET), (&b, b"new pub", PUBLIC)]).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"new");
        assert_eq!(fs::read(&b).unwrap(), b"new pub");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_failed_rename_puts_the_first_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("k"), dir.path().join("k.pub"));
        write_atomic(&a, b"old", SECRET).unwrap();
        // a directory in the way: the second rename fails
        fs::create_dir(&b).unwrap();
        fs::write(b.join("x"), b"").unwrap();
        assert!(replace_together(&[(&a, b"new", SECRET), (&b, b"new pub", PUBLIC)]).is_err());
        assert_eq!(fs::read(&a).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary left"
        );
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
