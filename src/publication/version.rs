//! The bundle version on disk (`<state-dir>/bundle/version`, a `state::Slots` file): the
//! next version, and the record that no version is ever published twice.
//!
//! A version must never be reused, across crashes too. Writing it and syncing it before
//! publishing put a disk flush (about 1.3 ms here) in front of every publication, so only
//! the first publication of a process does that. After it, a version is written, published
//! at once, and synced on a thread of its own; the next publication waits for that sync
//! first, so at most one write is ever unsynced and the slot before it is on disk. A crash
//! can then lose only the newest version, which was at most one above the synced one, or
//! the Unix time of its publication. So the first version after a start is at least the
//! synced one plus two and the Unix time plus one: above anything the crash may have lost.
//! A plain number in the file (an operator's, or an earlier release's) is taken as it is.
//!
//! It must not know what a bundle holds; `publication` asks it for versions.

use std::{path::PathBuf, sync::Mutex, thread::JoinHandle};

use super::PublishError;
use crate::state::{self, Loaded, Slots, StateError};

/// The first line of each copy in `<state-dir>/bundle/version`.
const MAGIC: &str = "certzone bundle version 2";

/// The version file and how far its last write is known to be on disk.
pub(super) struct VersionFile {
    path: PathBuf,
    synced: Mutex<Synced>,
}

/// What this process knows of the last version it wrote.
enum Synced {
    /// Nothing yet: a crash before this start may have lost a write.
    Unknown,
    /// Written; its sync runs on this thread.
    Syncing(JoinHandle<std::io::Result<()>>),
    /// On disk.
    Yes,
}

/// A version chosen and not yet recorded.
pub(super) struct Next {
    file: Slots,
    pub(super) version: u64,
    /// The write before is on disk: this one may be synced after publishing.
    after_synced: bool,
}

impl VersionFile {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            synced: Mutex::new(Synced::Unknown),
        }
    }

    /// The stored version plus one, or `now` if later (plus one and two more, see the
    /// module doc, when the last write may have been lost); refused when that is further
    /// ahead of `now` than workers accept (a clock that was once far ahead left it there).
    pub(super) fn next(&self, now: u64) -> Result<Next, PublishError> {
        let after_synced = self.wait_for_sync();
        let (file, loaded) = Slots::load(&self.path, MAGIC, state::PUBLIC)?;
        let stored = self.stored(&loaded);
        let version = if after_synced || !matches!(loaded, Loaded::Body(_) | Loaded::Damaged) {
            stored.saturating_add(1).max(now)
        } else {
            stored.saturating_add(2).max(now.saturating_add(1))
        };
        if version > now.saturating_add(crate::bundle::limits::MAX_AHEAD_SECS) {
            return Err(PublishError::VersionAhead {
                version,
                now,
                path: self.path.display().to_string(),
            });
        }
        Ok(Next {
            file,
            version,
            after_synced,
        })
    }

    /// Writes `next`, before it is published. Synced at once the first time, after that on
    /// a thread while the bundle goes out.
    pub(super) fn record(&self, mut next: Next) -> Result<(), PublishError> {
        let body = format!("version {}\n", next.version);
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if !next.after_synced {
            next.file.write(&body)?;
            *synced = Synced::Yes;
            return Ok(());
        }
        *synced = match next.file.write_unsynced(&body)? {
            None => Synced::Yes,
            Some(file) => match std::thread::Builder::new()
                .name("version-sync".into())
                .spawn(move || file.sync_data())
            {
                Ok(thread) => Synced::Syncing(thread),
                // As after a crash: the next one skips a version and syncs first.
                Err(_) => Synced::Unknown,
            },
        };
        Ok(())
    }

    /// The version in the file: 0 when there is none, and when it does not read (the next
    /// version is then the Unix time, as for a new master).
    pub(super) fn stored_version(&self) -> Result<u64, PublishError> {
        let (_, loaded) = Slots::load(&self.path, MAGIC, state::PUBLIC)?;
        Ok(self.stored(&loaded))
    }

    fn stored(&self, loaded: &Loaded) -> u64 {
        let text = match loaded {
            Loaded::Missing => return 0,
            Loaded::Body(body) => body.strip_prefix("version ").unwrap_or_default(),
            // A plain number: an earlier release's file, or an operator's.
            Loaded::Other(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
            Loaded::Damaged => "",
        };
        text.trim().parse::<u64>().unwrap_or_else(|_| {
            tracing::warn!(path = %self.path.display(), "bundle version file unreadable; the next version is the Unix time");
            0
        })
    }

    /// Waits for the last write's sync; true when it is on disk.
    fn wait_for_sync(&self) -> bool {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        let on_disk = match std::mem::replace(&mut *synced, Synced::Unknown) {
            Synced::Unknown => false,
            Synced::Yes => true,
            Synced::Syncing(thread) => match thread.join() {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    let e = StateError::new("sync", &self.path, e);
                    tracing::error!(error = %e, "bundle version not synced; the next one skips a version and is synced before it is published");
                    false
                }
                Err(_) => false,
            },
        };
        if on_disk {
            *synced = Synced::Yes;
        }
        on_disk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `now` far behind the stored versions, so the arithmetic shows.
    const NOW: u64 = 100;

    #[test]
    fn a_start_skips_one_version_then_each_publication_takes_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version");
        let first = VersionFile::new(path.clone());
        let next = first.next(NOW).unwrap();
        assert_eq!(next.version, NOW, "a new file: the Unix time");
        first.record(next).unwrap();
        let next = first.next(NOW).unwrap();
        assert_eq!(next.version, NOW + 1, "after a synced write: plus one");
        first.record(next).unwrap();
        let next = first.next(NOW).unwrap();
        assert_eq!(next.version, NOW + 2);
        first.record(next).unwrap();
        assert_eq!(first.stored_version().unwrap(), NOW + 2);

        // A new process: the last write may have been lost in a crash, so one is skipped.
        let second = VersionFile::new(path.clone());
        let next = second.next(NOW).unwrap();
        assert_eq!(next.version, NOW + 4);
        second.record(next).unwrap();
        assert_eq!(second.next(NOW).unwrap().version, NOW + 5);

        // The Unix time is taken plus one after a start, as it is later.
        let third = VersionFile::new(path);
        let later = NOW + 1000;
        let next = third.next(later).unwrap();
        assert_eq!(next.version, later + 1);
        third.record(next).unwrap();
        assert_eq!(third.next(later + 10).unwrap().version, later + 10);
    }

    #[test]
    fn a_plain_number_is_taken_as_it_is_and_a_far_future_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version");
        let now = 4000;
        std::fs::write(&path, "5000\n").unwrap();
        let file = VersionFile::new(path.clone());
        assert_eq!(file.next(now).unwrap().version, 5001, "no version skipped");
        std::fs::write(&path, format!("{}\n", now + 2 * 3600)).unwrap();
        let err = file.next(now).err().unwrap().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
