//! What a restart needs to serve the same serial for the same contents: each file zone's
//! last served SOA serial and a digest of the file's zone it was served for, kept in
//! `<state-dir>/zones/<origin>serial` as two lines (`serial`, then the digest in hex;
//! none when the served zone held more than the file, e.g. an ACME challenge).
//!
//! Owns that file's format and the digest. It must not decide serials (that is `zones`).

use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use sha2::{Digest as _, Sha256};

use super::Zone;
use crate::state;

/// A digest of a zone's records (SOA included) in wire form.
pub(super) type ZoneDigest = [u8; 32];

/// What was kept of a zone's last serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stored {
    pub(super) serial: u32,
    /// The digest of the file's zone served at `serial`; `None` when the served zone held
    /// more than the file (the next start must move past it).
    pub(super) digest: Option<ZoneDigest>,
}

/// The digest of `zone`'s records as they are: any change of a record (the SOA's serial
/// too) changes it.
pub(super) fn digest(zone: &Zone) -> ZoneDigest {
    let mut hash = Sha256::new();
    let sets = zone.soa_wire().into_iter().chain(zone.transfer_sets());
    for set in sets {
        // Length-prefixed, so record boundaries cannot shift between sets.
        hash.update((set.len() as u64).to_be_bytes());
        hash.update(set);
    }
    hash.finalize().into()
}

/// What was kept for `origin`, if a file is there and reads as a serial.
pub(super) fn read(dir: &Path, origin: &Name) -> Option<Stored> {
    let bytes = state::read_optional(&path(dir, origin)).ok()??;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    let serial = lines.next()?.trim().parse().ok()?;
    let digest = lines.next().and_then(|hex| from_hex(hex.trim()));
    Some(Stored { serial, digest })
}

/// Keeps `stored` for `origin`.
pub(super) fn write(dir: &Path, origin: &Name, stored: Stored) -> Result<(), state::StateError> {
    state::ensure_dir(dir)?;
    let mut text = format!("{}\n", stored.serial);
    if let Some(digest) = stored.digest {
        text += &digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        text.push('\n');
    }
    state::write_atomic(&path(dir, origin), text.as_bytes(), state::PUBLIC)
}

fn path(dir: &Path, origin: &Name) -> PathBuf {
    dir.join(format!("{origin}serial"))
}

fn from_hex(hex: &str) -> Option<ZoneDigest> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_serial_reads_back_with_and_without_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let origin = Name::from_ascii("example.test.").unwrap();
        for digest in [Some([7u8; 32]), None] {
            let stored = Stored {
                serial: 2026112300,
                digest,
            };
            write(dir.path(), &origin, stored).unwrap();
            assert_eq!(read(dir.path(), &origin), Some(stored));
        }
    }

    #[test]
    fn a_serial_alone_from_an_older_version_reads() {
        let dir = tempfile::tempdir().unwrap();
        let origin = Name::from_ascii("example.test.").unwrap();
        std::fs::write(dir.path().join("example.test.serial"), "42\n").unwrap();
        let stored = read(dir.path(), &origin).unwrap();
        assert_eq!((stored.serial, stored.digest), (42, None));
    }
}
