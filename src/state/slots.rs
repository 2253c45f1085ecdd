//! A small record that must be on disk before the node acts on it, rewritten often and
//! cheaply: two copies ("slots") of [`SLOT`] bytes in one file, each a text of its own
//! (a magic line, `seq N`, the caller's lines, and a `check` line, a digest of the lines
//! before it), padded with newlines.
//!
//! A write rewrites the older slot in place and syncs it: one `fdatasync`, no new file, no
//! rename. A write torn by a crash spoils only that slot; the other holds the value before
//! it. Reading takes the intact slot with the higher `seq`. The first write (or one after a
//! failed write) makes the whole file with [`write_atomic`](super::write_atomic). A file in
//! another format is handed back as it is, for its owner to read.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use super::StateError;

/// A slot fits one disk sector.
const SLOT: usize = 512;

/// What a slot file holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// No file.
    Missing,
    /// The newest intact slot's lines (between `seq` and `check`).
    Body(String),
    /// A file of another format (an earlier release's), as it is.
    Other(Vec<u8>),
    /// A slot file in which neither slot is intact.
    Damaged,
}

/// A slot file, open for in-place writes once it has been written or read in slots.
pub struct Slots {
    path: PathBuf,
    magic: &'static str,
    mode: u32,
    /// The file, the slot the next write takes, and the next `seq`.
    open: Option<(File, usize, u64)>,
}

impl Slots {
    /// Reads the file at `path`, whose slots start with the line `magic`.
    pub fn load(path: &Path, magic: &'static str, mode: u32) -> Result<(Self, Loaded), StateError> {
        let mut slots = Self {
            path: path.to_path_buf(),
            magic,
            mode,
            open: None,
        };
        let Some(bytes) = super::read_optional(path)? else {
            return Ok((slots, Loaded::Missing));
        };
        if bytes.len() != 2 * SLOT || !bytes.starts_with(magic.as_bytes()) {
            return Ok((slots, Loaded::Other(bytes)));
        }
        let read = [parse(&bytes[..SLOT], magic), parse(&bytes[SLOT..], magic)];
        // The next write takes the other slot than the newest intact one.
        let ((seq, body), next) = match read {
            [Some(a), Some(b)] if a.0 >= b.0 => (a, 1),
            [_, Some(b)] => (b, 0),
            [Some(a), None] => (a, 1),
            [None, None] => return Ok((slots, Loaded::Damaged)),
        };
        slots.open = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .ok()
            .map(|file| (file, next, seq + 1));
        Ok((slots, Loaded::Body(body)))
    }

    /// Writes `body` (whole lines, at most a slot's worth), on disk when it returns.
    pub fn write(&mut self, body: &str) -> Result<(), StateError> {
        self.write_slot(body, true).map(drop)
    }

    /// Writes `body` like [`Slots::write`] but leaves the sync to the caller, who gets the
    /// file to call `sync_data` on; `None` when the write was already synced (the whole
    /// file was made). Until that sync, only this slot may be lost: the other holds the
    /// value before, as long as the caller never writes again before the sync succeeded.
    pub fn write_unsynced(&mut self, body: &str) -> Result<Option<File>, StateError> {
        self.write_slot(body, false)
    }

    fn write_slot(&mut self, body: &str, sync: bool) -> Result<Option<File>, StateError> {
        if let Some((file, next, seq)) = &mut self.open {
            let slot = render(self.magic, *seq, body);
            let written =
                file.write_all_at(&slot, (*next * SLOT) as u64)
                    .and_then(|()| match sync {
                        true => file.sync_data().map(|()| None),
                        false => file.try_clone().map(Some),
                    });
            let later = match written {
                Ok(later) => later,
                Err(e) => {
                    self.open = None; // the whole file again next time
                    return Err(StateError::new("write", &self.path, e));
                }
            };
            *next ^= 1;
            *seq += 1;
            return Ok(later);
        }
        let slot = render(self.magic, 1, body);
        super::ensure_dir(super::parent(&self.path))?;
        super::write_atomic(&self.path, &[slot, slot].concat(), self.mode)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| StateError::new("open", &self.path, e))?;
        self.open = Some((file, 0, 2));
        Ok(None)
    }
}

fn check(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn render(magic: &str, seq: u64, body: &str) -> [u8; SLOT] {
    let text = format!("{magic}\nseq {seq}\n{body}");
    let text = format!("{text}check {}\n", check(&text));
    let mut slot = [b'\n'; SLOT];
    // A body is a few short lines; one that does not fit is cut and fails its check.
    let n = text.len().min(SLOT);
    slot[..n].copy_from_slice(&text.as_bytes()[..n]);
    slot
}

/// An intact slot's `seq` and body.
fn parse(bytes: &[u8], magic: &str) -> Option<(u64, String)> {
    let text = std::str::from_utf8(bytes).ok()?.trim_end_matches('\n');
    let (signed, check_line) = text.rsplit_once('\n')?;
    let signed = format!("{signed}\n");
    if check_line.strip_prefix("check ")? != check(&signed) {
        return None;
    }
    let rest = signed.strip_prefix(magic)?.strip_prefix('\n')?;
    let (seq_line, body) = rest.split_once('\n')?;
    let seq = seq_line.strip_prefix("seq ")?.parse().ok()?;
    Some((seq, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &str = "certzone test slots 1";

    fn load(path: &Path) -> (Slots, Loaded) {
        Slots::load(path, MAGIC, super::super::PUBLIC).unwrap()
    }

    #[test]
    fn the_newest_write_is_read_back_and_writes_alternate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("v");
        let (mut slots, loaded) = load(&path);
        assert_eq!(loaded, Loaded::Missing);
        for n in 1..=5 {
            slots.write(&format!("value {n}\n")).unwrap();
        }
        assert_eq!(load(&path).1, Loaded::Body("value 5\n".into()));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * SLOT as u64);
        let (mut again, _) = load(&path);
        again.write("value 6\n").unwrap();
        assert_eq!(load(&path).1, Loaded::Body("value 6\n".into()));
    }

    #[test]
    fn a_torn_slot_leaves_the_other_and_is_written_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        let (mut slots, _) = load(&path);
        slots.write("value 7\n").unwrap(); // both slots
        slots.write("value 8\n").unwrap(); // slot 0
        drop(slots);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30..40].copy_from_slice(&[b'x'; 10]); // the write of 8, torn
        std::fs::write(&path, &bytes).unwrap();
        let (mut slots, loaded) = load(&path);
        assert_eq!(loaded, Loaded::Body("value 7\n".into()), "the intact copy");
        slots.write("value 9\n").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            parse(&bytes[..SLOT], MAGIC).unwrap().1,
            "value 9\n",
            "the torn slot"
        );
        assert_eq!(parse(&bytes[SLOT..], MAGIC).unwrap().1, "value 7\n");
        let mut wrecked = bytes;
        wrecked[30..40].copy_from_slice(&[b'x'; 10]);
        wrecked[SLOT + 30..SLOT + 40].copy_from_slice(&[b'x'; 10]);
        std::fs::write(&path, &wrecked).unwrap();
        assert_eq!(load(&path).1, Loaded::Damaged);
    }

    #[test]
    fn another_format_is_handed_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        std::fs::write(&path, "1796303585\n").unwrap();
        let (mut slots, loaded) = load(&path);
        assert_eq!(loaded, Loaded::Other(b"1796303585\n".to_vec()));
        slots.write("value 1\n").unwrap();
        assert_eq!(load(&path).1, Loaded::Body("value 1\n".into()));
    }
}
