//! Reading an RFC 1035 zone file into a [`Zone`], one entry at a time, with errors that
//! name the file and line.
//!
//! The file is cut into entries (a record, possibly spanning lines in parentheses, or a
//! `$` directive) and each record goes through hickory's zone parser on its own, with the
//! context it needs written in front: `$ORIGIN`, the TTL in force, and the owner for a
//! record that starts with a blank. So only one record is ever decoded at a time (a
//! 100,000-record file no longer becomes 100,000 record sets before it is packed), and an
//! error points at its entry's first line. A record without a class is IN, the zone's
//! class. `$INCLUDE file [origin]` reads the file relative to the including one; the
//! origin and owner return to what they were after it (RFC 1035 5.1). This module must not
//! keep state: read, check, return.

use std::path::{Path, PathBuf};

use hickory_proto::{
    rr::{Name, RData, Record},
    serialize::txt::{Parser, parse_ttl},
};

use super::{
    store::{Builder, Zone},
    text,
};

/// A zone file that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("failed to read zone file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("zone file {path} line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("generated zone {origin} is unusable: {message}")]
    Generated { origin: String, message: String },
    #[error(transparent)]
    Changes(#[from] super::dynamic::ChangesError),
    #[error("zone file {path}: no SOA record at the apex {origin}")]
    NoSoa { path: PathBuf, origin: String },
    #[error("zone file {path} line {line}: {name} is outside the zone {origin}")]
    OutOfZone {
        path: PathBuf,
        line: usize,
        name: String,
        origin: String,
    },
}

/// `$INCLUDE` nesting allowed before a file is refused (a loop would never end).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads, parses and checks the zone file at `path` for `origin`.
pub(super) fn load(origin: &Name, path: &Path) -> Result<Zone, ZoneError> {
    let text = read(path)?;
    parse(origin, &text, path)
}

fn read(path: &Path) -> Result<String, ZoneError> {
    std::fs::read_to_string(path).map_err(|source| ZoneError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses zone text as if read from `path`.
pub(super) fn parse(origin: &Name, text: &str, path: &Path) -> Result<Zone, ZoneError> {
    let mut reader = Reader {
        zone: origin.clone(),
        builder: Builder::new(origin),
        context: Context {
            origin: origin.clone(),
            owner: None,
            default_ttl: None,
            last_ttl: None,
        },
    };
    reader.text(text, path, 0)?;
    let zone = reader.builder.finish().map_err(|e| ZoneError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    if zone.soa().is_none() {
        return Err(ZoneError::NoSoa {
            path: path.to_path_buf(),
            origin: origin.to_string(),
        });
    }
    Ok(zone)
}

struct Reader {
    zone: Name,
    builder: Builder,
    context: Context,
}

/// What an entry needs from the ones before it.
#[derive(Clone)]
struct Context {
    origin: Name,
    owner: Option<Name>,
    /// From `$TTL`.
    default_ttl: Option<u32>,
    /// The last record's TTL: used when there is no `$TTL` and a record gives none.
    last_ttl: Option<u32>,
}

impl Reader {
    fn text(&mut self, text: &str, path: &Path, depth: usize) -> Result<(), ZoneError> {
        let starts = entry_starts(text);
        for (index, start) in starts.iter().enumerate() {
            let end = starts.get(index + 1).map_or(text.len(), |s| s.offset);
            let entry = &text[start.offset..end];
            let syntax = |message: String| ZoneError::Syntax {
                path: path.to_path_buf(),
                line: start.line,
                message,
            };
            if entry.starts_with('$') {
                self.directive(entry, path, depth, start.line)?;
            } else {
                let record = self.record(entry).map_err(syntax)?;
                if !self.zone.zone_of(&record.name) {
                    return Err(ZoneError::OutOfZone {
                        path: path.to_path_buf(),
                        line: start.line,
                        name: record.name.to_string(),
                        origin: self.zone.to_string(),
                    });
                }
                self.builder
                    .add(&record, start.line)
                    .map_err(|e| syntax(e.message))?;
            }
        }
        Ok(())
    }

    fn directive(
        &mut self,
        entry: &str,
        path: &Path,
        depth: usize,
        line: usize,
    ) -> Result<(), ZoneError> {
        let syntax = |message: String| ZoneError::Syntax {
            path: path.to_path_buf(),
            line,
            message,
        };
        let content = entry.split(';').next().unwrap_or("");
        let mut words = content.split_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        let argument = words.next();
        match (keyword.as_str(), argument) {
            ("$ORIGIN", Some(name)) => {
                self.context.origin = self.name(name).map_err(syntax)?;
            }
            ("$TTL", Some(ttl)) => {
                let ttl = parse_ttl(ttl).map_err(|e| syntax(format!("$TTL {ttl}: {e}")))?;
                self.context.default_ttl = Some(ttl);
            }
            ("$INCLUDE", Some(file)) => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(syntax(format!(
                        "$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files"
                    )));
                }
                let included = path.parent().unwrap_or(Path::new(".")).join(file);
                let origin = match words.next() {
                    Some(name) => Some(self.name(name).map_err(syntax)?),
                    None => None,
                };
                let saved = self.context.clone();
                if let Some(origin) = origin {
                    self.context.origin = origin;
                }
                let text = read(&included)?;
                self.text(&text, &included, depth + 1)?;
                self.context.origin = saved.origin;
                self.context.owner = saved.owner;
            }
            (keyword, _) => {
                return Err(syntax(format!(
                    "{keyword} is not a directive this reader knows (or lacks its argument)"
                )));
            }
        }
        Ok(())
    }

    /// A name in the file: absolute, or relative to the current origin.
    fn name(&self, text: &str) -> Result<Name, String> {
        let name = match text {
            "@" => self.context.origin.clone(),
            _ => Name::parse(text, Some(&self.context.origin)).map_err(|e| e.to_string())?,
        };
        Ok(name)
    }

    /// Parses one record entry: the types of [`text`] here, the rest by hickory's parser
    /// with the context written in front.
    fn record(&mut self, entry: &str) -> Result<Record, String> {
        let blank_owner = entry.starts_with([' ', '\t']);
        if blank_owner && self.context.owner.is_none() {
            return Err("a record without an owner name comes before any owner".into());
        }
        let ttl = self.context.default_ttl.or(self.context.last_ttl);
        if let Some(special) = text::special(entry, &|t| self.name(t))? {
            let owner = match special.owner {
                Some(owner) => self.name(owner)?,
                None => self.context.owner.clone().unwrap_or_default(),
            };
            let ttl = special
                .ttl
                .or(ttl)
                .ok_or("no TTL: give one, or a $TTL before it")?;
            self.context.owner = Some(owner.clone());
            self.context.last_ttl = Some(ttl);
            return Ok(Record::from_rdata(owner, ttl, special.rdata));
        }
        let expanded = text::expand_at(entry, &self.context.origin)?;
        let entry = expanded.as_deref().unwrap_or(entry);
        let text = format!(
            "$ORIGIN {}\n{}{}{}\n",
            self.context.origin,
            ttl.map(|t| format!("$TTL {t}\n")).unwrap_or_default(),
            if blank_owner { "@" } else { "" },
            entry.trim_end(),
        );
        let (_, sets) = Parser::new(text, None, Some(self.context.origin.clone()))
            .parse()
            .map_err(|e| e.to_string())?;
        let mut records = sets.into_values().flat_map(|s| s.into_iter());
        let mut record = records.next().ok_or("no record in this entry")?;
        if records.next().is_some() {
            return Err("more than one record in one entry".into());
        }
        match (&self.context.owner, blank_owner) {
            (Some(owner), true) => record.name = owner.clone(),
            _ => self.context.owner = Some(record.name.clone()),
        }
        self.context.last_ttl = Some(record.ttl);
        qualify_targets(&mut record.data, &self.context.origin);
        Ok(record)
    }
}

/// hickory reads an SVCB or HTTPS target without the origin; a relative one is relative to
/// it like every other name in the file (RFC 9460 2.1, RFC 1035 5.1).
fn qualify_targets(data: &mut RData, origin: &Name) {
    let svcb = match data {
        RData::SVCB(svcb) => svcb,
        RData::HTTPS(https) => &mut https.0,
        _ => return,
    };
    if !svcb.target_name.is_fqdn()
        && let Ok(name) = svcb.target_name.clone().append_domain(origin)
    {
        svcb.target_name = name;
    }
}

#[derive(Debug, Clone, Copy)]
struct EntryStart {
    offset: usize,
    line: usize,
}

/// Byte offsets and lines where entries start: lines that begin outside parentheses and
/// quotes and hold something other than blanks and comments.
fn entry_starts(text: &str) -> Vec<EntryStart> {
    let mut starts = Vec::new();
    let (mut depth, mut quoted) = (0usize, false);
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let at_rest = depth == 0 && !quoted;
        let content = line.split(';').next().unwrap_or("").trim();
        if at_rest && !content.is_empty() {
            starts.push(EntryStart {
                offset,
                line: index + 1,
            });
        }
        scan(line, &mut depth, &mut quoted);
        offset += line.len();
    }
    starts
}

/// Follows parentheses and quotes through one line, skipping comments.
fn scan(line: &str, depth: &mut usize, quoted: &mut bool) {
    let mut escaped = false;
    for ch in line.chars() {
        match ch {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => *quoted = !*quoted,
            ';' if !*quoted => break,
            '(' if !*quoted => *depth += 1,
            ')' if !*quoted => *depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
