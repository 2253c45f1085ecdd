//! Record entries hickory's zone parser reads wrongly or not at all, read here instead:
//! RFC 3597 generic data (`TYPE65280 \# 4 0a000001`, for any type), DNAME (RFC 6672),
//! RP (RFC 1183), and TXT, whose `\DDD` escapes hickory turns into the wrong bytes.
//!
//! An entry is cut into tokens by RFC 1035 5.1 (quoted strings, parentheses, comments,
//! escapes); the owner, TTL and class before the type are read the same way the rest of
//! the reader does. A, AAAA, NS, CNAME, PTR and MX with plain data are read here too, for
//! speed (`common`). Every other type goes to hickory. Pure: text in, record data out.

use std::str::FromStr;

use hickory_proto::rr::{
    DNSClass, Name, RData, RecordType,
    rdata::{A, AAAA, CNAME, MX, NS, NULL, PTR, TXT},
};
use hickory_proto::serialize::txt::parse_ttl;

/// RP's type code: hickory has no variant for it.
const TYPE_RP: u16 = 17;

/// One token of an entry: the text between blanks, or inside quotes (escapes kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token<'a> {
    pub(super) text: &'a str,
    pub(super) quoted: bool,
}

/// An entry this module reads: what comes before the type, and the record data.
#[derive(Debug)]
pub(super) struct Entry<'a> {
    /// `None` when the entry starts with a blank (the previous owner's).
    pub(super) owner: Option<&'a str>,
    pub(super) ttl: Option<u32>,
    pub(super) rdata: RData,
}

/// An entry cut at its type.
struct Split<'a> {
    owner: Option<&'a str>,
    ttl: Option<u32>,
    class: Option<DNSClass>,
    rtype: RecordType,
    rdata: Vec<Token<'a>>,
}

fn split(entry: &str) -> Result<Split<'_>, String> {
    let tokens = tokenize(entry)?;
    let blank_owner = entry.starts_with([' ', '\t']);
    let mut rest = tokens.as_slice();
    let owner = if blank_owner {
        None
    } else {
        let (first, tail) = rest.split_first().ok_or("an empty entry")?;
        rest = tail;
        Some(first.text)
    };
    let mut ttl = None;
    let mut class = None;
    while let Some((token, tail)) = rest.split_first() {
        if ttl.is_none() && token.text.starts_with(|c: char| c.is_ascii_digit()) {
            ttl = Some(parse_ttl(token.text).map_err(|e| format!("TTL {}: {e}", token.text))?);
        } else if class.is_none()
            && let Some(c) = class_of(token.text)
        {
            class = Some(c);
        } else {
            break;
        }
        rest = tail;
    }
    let (rtype, rdata) = rest.split_first().ok_or("no record type in this entry")?;
    Ok(Split {
        owner,
        ttl,
        class,
        rtype: type_of(rtype.text)?,
        rdata: rdata.to_vec(),
    })
}

/// Reads `entry` if it is one of the cases above; `Ok(None)` leaves it to hickory.
/// `name` makes a name of a token (relative to the current origin).
pub(super) fn special<'a>(
    entry: &'a str,
    name: &dyn Fn(&str) -> Result<Name, String>,
) -> Result<Option<Entry<'a>>, String> {
    let Split {
        owner,
        ttl,
        class,
        rtype,
        rdata,
    } = split(entry)?;
    let generic = rdata.first().is_some_and(|t| t.text == "\\#" && !t.quoted);
    let rdata = match u16::from(rtype) {
        _ if generic => generic_data(rtype, &rdata[1..])?,
        39 => RData::Unknown {
            code: rtype,
            rdata: null(wire_names(&rdata, 1, name)?),
        },
        TYPE_RP => RData::Unknown {
            code: rtype,
            rdata: null(wire_names(&rdata, 2, name)?),
        },
        16 => RData::TXT(txt(&rdata)?),
        _ => match common(rtype, &rdata, name) {
            Some(rdata) => rdata,
            None => return Ok(None),
        },
    };
    if class.is_some_and(|c| c != DNSClass::IN) {
        return Err("only class IN records can be served".into());
    }
    Ok(Some(Entry { owner, ttl, rdata }))
}

/// The most common types read here rather than by hickory's parser, which would take a
/// whole zone-file reader per entry: a million-record file loads several times faster.
/// Only plain tokens; anything else, or anything that does not read, goes to hickory, so
/// its messages name the problem as before.
fn common(
    rtype: RecordType,
    tokens: &[Token<'_>],
    name: &dyn Fn(&str) -> Result<Name, String>,
) -> Option<RData> {
    if tokens.iter().any(|t| t.quoted || t.text.contains('\\')) {
        return None;
    }
    let name = |text: &str| name(text).ok();
    Some(match (rtype, tokens) {
        (RecordType::A, [ip]) => RData::A(A(ip.text.parse().ok()?)),
        (RecordType::AAAA, [ip]) => RData::AAAA(AAAA(ip.text.parse().ok()?)),
        (RecordType::NS, [target]) => RData::NS(NS(name(target.text)?)),
        (RecordType::CNAME, [target]) => RData::CNAME(CNAME(name(target.text)?)),
        (RecordType::PTR, [target]) => RData::PTR(PTR(name(target.text)?)),
        (RecordType::MX, [preference, exchange]) => {
            RData::MX(MX::new(preference.text.parse().ok()?, name(exchange.text)?))
        }
        _ => return None,
    })
}

/// `entry` on one line with each bare `@` in its record data written as `origin`, for
/// hickory, whose parser takes `@` only as an owner; `None` when there is none.
pub(super) fn expand_at(entry: &str, origin: &Name) -> Result<Option<String>, String> {
    let Split { rdata, .. } = split(entry)?;
    if !rdata.iter().any(|t| t.text == "@" && !t.quoted) {
        return Ok(None);
    }
    let tokens = tokenize(entry)?;
    let mut line = String::new();
    if entry.starts_with([' ', '\t']) {
        line.push(' ');
    }
    let data_from = tokens.len() - rdata.len();
    for (index, token) in tokens.iter().enumerate() {
        match token {
            Token {
                text: "@",
                quoted: false,
            } if index >= data_from => {
                line.push_str(&origin.to_string());
            }
            Token { text, quoted: true } => line.push_str(&format!("\"{text}\"")),
            Token { text, .. } => line.push_str(text),
        }
        line.push(' ');
    }
    Ok(Some(line))
}

/// The tokens of an entry: quoted strings whole, parentheses and comments dropped.
pub(super) fn tokenize(entry: &str) -> Result<Vec<Token<'_>>, String> {
    let mut tokens = Vec::new();
    let bytes = entry.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' => at += 1,
            b';' => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            b'"' => {
                let start = at + 1;
                at = start;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                if at >= bytes.len() {
                    return Err("a quoted string does not end".into());
                }
                tokens.push(Token {
                    text: &entry[start..at],
                    quoted: true,
                });
                at += 1;
            }
            _ => {
                let start = at;
                while at < bytes.len() && !b" \t\r\n();\"".contains(&bytes[at]) {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                let end = at.min(bytes.len());
                tokens.push(Token {
                    text: &entry[start..end],
                    quoted: false,
                });
            }
        }
    }
    Ok(tokens)
}

/// Record data kept as the bytes given (`NULL::with` refuses none in debug builds).
fn null(data: Vec<u8>) -> NULL {
    let mut null = NULL::new();
    null.anything = data;
    null
}

fn class_of(text: &str) -> Option<DNSClass> {
    match text.to_ascii_uppercase().as_str() {
        "IN" => Some(DNSClass::IN),
        "CH" | "CS" => Some(DNSClass::CH),
        "HS" => Some(DNSClass::HS),
        upper => upper
            .strip_prefix("CLASS")
            .and_then(|n| n.parse::<u16>().ok())
            .map(DNSClass::from),
    }
}

/// A type mnemonic or `TYPEnnn` (RFC 3597 5).
fn type_of(text: &str) -> Result<RecordType, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(number) = upper.strip_prefix("TYPE")
        && let Ok(code) = number.parse::<u16>()
    {
        return Ok(RecordType::from(code));
    }
    if upper == "RP" {
        return Ok(RecordType::from(TYPE_RP));
    }
    RecordType::from_str(&upper).map_err(|_| format!("{text} is not a record type"))
}

/// `\# length hex...` (RFC 3597 5): the data as given, for any type.
fn generic_data(rtype: RecordType, tokens: &[Token<'_>]) -> Result<RData, String> {
    let (length, hex) = tokens
        .split_first()
        .ok_or("\\# needs a length and the data in hex")?;
    let length: usize = length
        .text
        .parse()
        .map_err(|_| format!("\\# length {} is not a number", length.text))?;
    let digits: String = hex.iter().map(|t| t.text).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("\\# data has an odd number of hex digits".into());
    }
    let data = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| "\\# data is not hex".to_string())?;
    if data.len() != length {
        return Err(format!(
            "\\# says {length} bytes but gives {} bytes",
            data.len()
        ));
    }
    Ok(RData::Unknown {
        code: rtype,
        rdata: null(data),
    })
}

/// Exactly `count` names, in uncompressed wire form one after the other.
fn wire_names(
    tokens: &[Token<'_>],
    count: usize,
    name: &dyn Fn(&str) -> Result<Name, String>,
) -> Result<Vec<u8>, String> {
    if tokens.len() != count {
        return Err(format!("expected {count} names, found {}", tokens.len()));
    }
    let mut wire = Vec::new();
    for token in tokens {
        let name = name(token.text)?;
        for label in name.iter() {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
    }
    Ok(wire)
}

/// TXT character-strings, quoted or not, with `\DDD` and `\X` escapes (RFC 1035 5.1).
fn txt(tokens: &[Token<'_>]) -> Result<TXT, String> {
    if tokens.is_empty() {
        return Err("TXT needs at least one string".into());
    }
    let strings = tokens
        .iter()
        .map(|t| unescape(t.text))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(long) = strings.iter().find(|s| s.len() > 255) {
        return Err(format!(
            "a TXT string of {} bytes (at most 255)",
            long.len()
        ));
    }
    Ok(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
}

/// The bytes a character-string stands for.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'\\' {
            out.push(bytes[at]);
            at += 1;
            continue;
        }
        let digits = bytes.get(at + 1..at + 4);
        if let Some(d) = digits.filter(|d| d.iter().all(u8::is_ascii_digit)) {
            let value = d.iter().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
            out.push(u8::try_from(value).map_err(|_| format!("\\{value} is not a byte"))?);
            at += 4;
        } else {
            let escaped = bytes
                .get(at + 1)
                .ok_or("a string ends with a lone backslash")?;
            out.push(*escaped);
            at += 2;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin_name(text: &str) -> Result<Name, String> {
        let origin = Name::from_ascii("example.test.").unwrap();
        match text {
            "@" => Ok(origin),
            _ => Name::parse(text, Some(&origin)).map_err(|e| e.to_string()),
        }
    }

    fn read(entry: &str) -> Option<Entry<'_>> {
        special(entry, &origin_name).unwrap()
    }

    fn unknown(entry: &str) -> Vec<u8> {
        match read(entry).unwrap().rdata {
            RData::Unknown { rdata, .. } => rdata.anything,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn generic_dname_and_rp_become_wire_data() {
        assert_eq!(unknown("gen IN TYPE65280 \\# 4 0a000001"), [10, 0, 0, 1]);
        assert_eq!(
            unknown("gen TYPE65280 \\# ( 4 0a00\n 0001 ) ; c"),
            [10, 0, 0, 1]
        );
        assert_eq!(unknown("x 300 IN A \\# 4 c0000201"), [192, 0, 2, 1]);
        assert_eq!(unknown("gen TYPE1 \\# 0"), Vec::<u8>::new());
        assert_eq!(
            unknown("dn IN DNAME target"),
            b"\x06target\x07example\x04test\x00"
        );
        assert_eq!(
            unknown("rp RP a.b. t"),
            b"\x01a\x01b\x00\x01t\x07example\x04test\x00"
        );
        let entry = read("  3600 DNAME @").unwrap();
        assert_eq!((entry.owner, entry.ttl), (None, Some(3600)));
    }

    #[test]
    fn an_at_in_record_data_becomes_the_origin() {
        let origin = Name::from_ascii("example.test.").unwrap();
        let line = expand_at("cmx IN CNAME @ ; comment", &origin).unwrap();
        assert_eq!(line.as_deref(), Some("cmx IN CNAME example.test. "));
        let line = expand_at("  IN MX ( 10\n @ )", &origin).unwrap();
        assert_eq!(line.as_deref(), Some(" IN MX 10 example.test. "));
        assert!(expand_at("@ IN A 192.0.2.1", &origin).unwrap().is_none());
        assert!(expand_at("t IN TXT \"@\"", &origin).unwrap().is_none());
    }

    #[test]
    fn txt_escapes_are_bytes() {
        let entry = read("txt IN TXT \"a\\255b\" \"c\\\"d\" plain\\032x").unwrap();
        let RData::TXT(txt) = entry.rdata else {
            panic!()
        };
        let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &**s).collect();
        assert_eq!(strings, [&b"a\xffb"[..], b"c\"d", b"plain x"]);
    }

    #[test]
    fn other_types_are_left_to_hickory_and_errors_are_named() {
        assert!(read("www IN A 192.0.2.1").is_some(), "A is read here");
        assert!(
            read("www IN A 192.0.2.256").is_none(),
            "a bad A is hickory's to name"
        );
        assert!(read("svc SVCB 1 . alpn=h2").is_none());
        for (bad, words) in [
            ("g TYPE65280 \\# 4 0a0000", "says 4 bytes"),
            ("g TYPE65280 \\# 2 0g00", "not hex"),
            ("t TXT \"\\256\"", "not a byte"),
            ("t TXT \"open", "does not end"),
            ("d DNAME a b", "expected 1 names"),
            ("d CH DNAME a", "class IN"),
        ] {
            let err = special(bad, &origin_name).unwrap_err();
            assert!(err.contains(words), "{bad}: {err}");
        }
    }
}
