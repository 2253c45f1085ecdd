//! One file zone as served: the file's contents, the RFC 2136 changes replayed on it, the
//! overlay (challenges, published sets) and the serial served, which never goes backwards.
//! It must not touch the snapshot or the other zones (that is `Zones`, in `mod.rs`).

use std::{path::Path, sync::Arc};

use hickory_proto::rr::{Name, SerialNumber};

use super::{
    Zone, ZoneError,
    dynamic::{self, Changes},
    overlay::Overlay,
    parse,
    serials::{self, Stored, ZoneDigest},
};
use crate::config::ZoneConfig;

/// A zone file read and digested, before it is compared with what is served: the slow
/// part of a reload (a million-record file takes a second), done without the zones' lock.
pub(super) struct FileRead {
    zone: Zone,
    digest: ZoneDigest,
}

impl FileRead {
    pub(super) fn read(config: &ZoneConfig) -> Result<Self, ZoneError> {
        let zone = parse::load(&config.origin, &config.file)?;
        let digest = serials::digest(&zone);
        Ok(Self { zone, digest })
    }
}

/// One zone as served now.
pub(super) struct Loaded {
    pub(super) origin: Name,
    /// The file it comes from; `None` for zones the node generates.
    pub(super) config: Option<ZoneConfig>,
    /// The SOA serial the file had when read.
    pub(super) file_serial: u32,
    /// The file's zone as read: a reload that reads the same is no change to announce.
    pub(super) file_digest: ZoneDigest,
    /// Whether records beside the file (ACME challenges) are in the served zone.
    pub(super) overlaid: bool,
    /// The SOA serial served: the file's, or past it after challenges and restarts.
    pub(super) serial: u32,
    /// Record sets changed by RFC 2136 updates, replayed on top of the file.
    pub(super) changes: Changes,
    pub(super) zone: Arc<Zone>,
}

impl Loaded {
    /// A file zone, served at the serial served before a restart (`last`) when the
    /// contents are the same, else one past it, unless the file's own serial is later.
    pub(super) fn read(
        config: &ZoneConfig,
        last: Option<Stored>,
        dir: &Path,
    ) -> Result<Self, ZoneError> {
        let zone = parse::load(&config.origin, &config.file)?;
        let file_serial = zone.serial();
        let file_digest = serials::digest(&zone);
        let changes = dynamic::read(dir, &config.origin)
            .map_err(ZoneError::Changes)?
            .unwrap_or_default();
        let changes = replayable(changes, dir, &config.origin, file_serial);
        let serial = match last {
            // Same contents, same serial: secondaries have nothing new to transfer.
            Some(last) if last.digest == Some(file_digest) => later(file_serial, last.serial),
            Some(last) => later(file_serial, last.serial.wrapping_add(1)),
            None => file_serial,
        };
        // The serial an acknowledged update was served at, even if the serials file was
        // not written after it.
        let serial = if changes.is_empty() {
            serial
        } else {
            later(serial, changes.serial)
        };
        Ok(Self {
            origin: config.origin.clone(),
            config: Some(config.clone()),
            file_serial,
            file_digest,
            overlaid: false,
            serial,
            zone: served(config, zone, serial, &Overlay::default(), &changes)?,
            changes,
        })
    }

    /// Takes the file read again (`FileRead::read`); true when its contents changed, an
    /// edit to announce. An edited
    /// file moves past the served serial even when its own is behind it, or the same:
    /// secondaries would otherwise keep the old data without a word.
    pub(super) fn reread(
        &mut self,
        config: &ZoneConfig,
        file: FileRead,
        overlay: &Overlay,
        dir: &Path,
    ) -> Result<bool, ZoneError> {
        let FileRead {
            zone,
            digest: file_digest,
        } = file;
        let file_serial = zone.serial();
        let changes = replayable(self.changes.clone(), dir, &config.origin, file_serial);
        let edited = file_digest != self.file_digest;
        let serial = if edited {
            later(file_serial, self.serial.wrapping_add(1))
        } else {
            self.serial
        };
        if edited && file_serial == self.file_serial {
            tracing::warn!(
                zone = %self.origin,
                file_serial,
                serial,
                "zone file changed but its SOA serial did not; serving it with a new serial so \
                 secondaries follow (raise the serial in the file)"
            );
        }
        self.zone = served(config, zone, serial, overlay, &changes)?;
        self.changes = changes;
        self.file_serial = file_serial;
        self.file_digest = file_digest;
        self.overlaid = overlay.touches(&config.origin);
        self.serial = serial;
        Ok(edited)
    }

    /// What a restart needs: the serial, and the contents it stands for when they are the
    /// file's alone.
    pub(super) fn stored(&self) -> Stored {
        Stored {
            serial: self.serial,
            digest: (!self.overlaid && self.changes.is_empty()).then_some(self.file_digest),
        }
    }
}

/// The changes kept for a zone if they still apply to its file (`file_serial`), else none
/// (set aside: the file's serial moved, the file wins).
fn replayable(changes: Changes, dir: &Path, origin: &Name, file_serial: u32) -> Changes {
    if changes.is_empty() || changes.file_serial == file_serial {
        return changes;
    }
    dynamic::set_aside(dir, origin, &changes, file_serial);
    Changes::default()
}

/// A file's zone as served: with SOA serial `serial`, the dynamic changes and the overlay
/// records inside it.
fn served(
    config: &ZoneConfig,
    zone: Zone,
    serial: u32,
    overlay: &Overlay,
    changes: &Changes,
) -> Result<Arc<Zone>, ZoneError> {
    // Overlay names are checked against the deepest zone when set; here any zone holding
    // them takes them, which is the same zone unless zones nest.
    let sets = dynamic::merged_sets(&changes.sets, overlay, &config.origin);
    overlay.warn_replaced(&config.origin, &zone);
    if zone.serial() == serial && sets.is_empty() {
        return Ok(Arc::new(zone));
    }
    let zone = zone.changed(serial, &sets).map_err(|e| ZoneError::Syntax {
        path: config.file.clone(),
        line: e.line,
        message: e.message,
    })?;
    Ok(Arc::new(zone))
}

/// The later of two serials in RFC 1982 order.
pub(super) fn later(a: u32, b: u32) -> u32 {
    if SerialNumber::new(a) > SerialNumber::new(b) {
        a
    } else {
        b
    }
}
