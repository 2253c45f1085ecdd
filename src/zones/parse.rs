//! Reading an RFC 1035 zone file into records, with errors that name the file and line.
//!
//! hickory's zone parser reports what went wrong but not where. When a file fails, this
//! module finds the first entry (a record, possibly spanning lines in parentheses, or a
//! `$` directive) whose prefix of the file fails, by bisection over entry boundaries, and
//! reports that entry's first line. It must not keep state: parse, check, return.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use hickory_proto::{
    rr::{Name, RData, RecordSet, RecordType, RrKey},
    serialize::txt::Parser,
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
    #[error("zone file {path}: no SOA record at the apex {origin}")]
    NoSoa { path: PathBuf, origin: String },
    #[error("zone file {path}: {name} is outside the zone {origin}")]
    OutOfZone {
        path: PathBuf,
        name: String,
        origin: String,
    },
}

/// The records of one zone, keyed as hickory's stores want them.
pub(super) type Records = BTreeMap<RrKey, RecordSet>;

/// Reads, parses and checks the zone file at `path` for `origin`.
pub(super) fn load(origin: &Name, path: &Path) -> Result<Records, ZoneError> {
    let text = std::fs::read_to_string(path).map_err(|source| ZoneError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(origin, &text, path)
}

/// Parses zone text as if read from `path`.
pub(super) fn parse(origin: &Name, text: &str, path: &Path) -> Result<Records, ZoneError> {
    let records = match parse_text(origin, text, path) {
        Ok(records) => records,
        Err(message) => {
            let line = first_bad_line(origin, text, path);
            return Err(ZoneError::Syntax {
                path: path.to_path_buf(),
                line,
                message,
            });
        }
    };
    check(origin, &records, path)?;
    Ok(records)
}

fn parse_text(origin: &Name, text: &str, path: &Path) -> Result<Records, String> {
    Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
        .parse()
        .map(|(_, records)| records)
        .map_err(|e| e.to_string())
}

fn check(origin: &Name, records: &Records, path: &Path) -> Result<(), ZoneError> {
    for key in records.keys() {
        let name = Name::from(key.name.clone());
        if !origin.zone_of(&name) {
            return Err(ZoneError::OutOfZone {
                path: path.to_path_buf(),
                name: name.to_string(),
                origin: origin.to_string(),
            });
        }
    }
    let soa = records
        .get(&RrKey::new(origin.into(), RecordType::SOA))
        .and_then(|set| set.records_without_rrsigs().next())
        .filter(|r| matches!(r.data, RData::SOA(_)));
    if soa.is_none() {
        return Err(ZoneError::NoSoa {
            path: path.to_path_buf(),
            origin: origin.to_string(),
        });
    }
    Ok(())
}

/// The line where the first failing entry starts (1-based).
fn first_bad_line(origin: &Name, text: &str, path: &Path) -> usize {
    let starts = entry_starts(text);
    // Invariant for the search: the prefix ending before entry `lo` parses, the prefix
    // ending after entry `hi` fails (the whole text failed).
    let (mut lo, mut hi) = (0, starts.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let end = starts.get(mid + 1).map_or(text.len(), |s| s.offset);
        if parse_text(origin, &text[..end], path).is_ok() {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    starts
        .get(lo)
        .map_or_else(|| text.lines().count().max(1), |s| s.line)
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
mod tests {
    use super::*;

    const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster (
        1 ; serial
        3600 600 86400 300 )
  IN NS ns1
ns1 IN A 127.0.0.1
www IN A 127.0.0.2
txt IN TXT \"a ; not a comment\" \"(\"
";

    fn origin() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    #[test]
    fn good_zone_parses() {
        let records = parse(&origin(), ZONE, Path::new("z")).unwrap();
        assert_eq!(records.len(), 5);
    }

    #[test]
    fn syntax_error_names_its_line() {
        for (line, bad) in [
            (8, "www IN A not-an-address\n"),
            (9, "mx IN MX notanumber mail\n"),
        ] {
            let mut lines: Vec<&str> = ZONE.split_inclusive('\n').collect();
            lines[line - 1] = bad;
            let text = lines.concat();
            let err = parse(&origin(), &text, Path::new("zones/x.zone")).unwrap_err();
            let ZoneError::Syntax { line: got, .. } = err else {
                panic!("expected a syntax error, got {err}");
            };
            assert_eq!(got, line, "{bad}");
        }
    }

    #[test]
    fn error_inside_parentheses_names_the_entry() {
        let text = ZONE.replace("3600 600", "x600 600");
        let err = parse(&origin(), &text, Path::new("z")).unwrap_err();
        assert!(matches!(err, ZoneError::Syntax { line: 3, .. }), "{err}");
    }

    #[test]
    fn missing_soa_and_out_of_zone_are_refused() {
        let no_soa = "$ORIGIN example.test.\nwww 300 IN A 127.0.0.1\n";
        let err = parse(&origin(), no_soa, Path::new("z")).unwrap_err();
        assert!(matches!(err, ZoneError::NoSoa { .. }), "{err}");
        let outside = format!("{ZONE}other.test. IN A 127.0.0.1\n");
        let err = parse(&origin(), &outside, Path::new("z")).unwrap_err();
        assert!(matches!(err, ZoneError::OutOfZone { .. }), "{err}");
    }
}
