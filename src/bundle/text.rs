//! Zone-file (RFC 1035 section 5) text of the bundle's records, the form the
//! golden vectors are checked in and a master may write to disk.
//!
//! Owns presentation only. hickory-proto 0.26's `Display` for CERT prints
//! mnemonics its own parser and BIND refuse (`PKIX 0 Reserved(0) ...`), so
//! CERT is written here as plain numbers with one base64 token, which both
//! `named-checkzone` and hickory's zone parser read back.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::rr::rdata::{CERT, TXT};
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::BinEncodable as _;

/// One line per record: `owner TTL IN TYPE rdata`.
pub fn zone_text(records: &[Record]) -> String {
    let mut out = String::new();
    for record in records {
        let rdata = match &record.data {
            RData::CERT(cert) => cert_text(cert),
            RData::TXT(txt) => txt_text(txt),
            other => match other_text(other) {
                Some(text) => text,
                None => {
                    let _ = writeln!(
                        out,
                        "; {} {}: rdata cannot be printed",
                        record.name,
                        record.record_type()
                    );
                    continue;
                }
            },
        };
        // local invariant: writing to a String cannot fail
        let _ = writeln!(
            out,
            "{} {} {} {} {}",
            &record.name,
            record.ttl,
            record.dns_class,
            record.record_type(),
            rdata
        );
    }
    out
}

/// hickory's `Display`, or RFC 3597's generic `\# length hex` where that
/// `Display` fails (OPT rdata in hickory-proto 0.26.3 returns an error, which `to_string`
/// would turn into a panic; found by the fuzzer).
fn other_text(rdata: &RData) -> Option<String> {
    let mut out = String::new();
    if write!(out, "{rdata}").is_ok() {
        return Some(out);
    }
    let bytes = rdata.to_bytes().ok()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("\\# {} {hex}", bytes.len()))
}

fn cert_text(cert: &CERT) -> String {
    let kind = u16::from(cert.cert_type);
    let algorithm = u8::from(cert.algorithm);
    let data = STANDARD.encode(&cert.cert_data);
    format!("{kind} {} {algorithm} {data}", cert.key_tag)
}

fn txt_text(txt: &TXT) -> String {
    let quoted: Vec<String> = txt.txt_data.iter().map(|s| quote(s)).collect();
    quoted.join(" ")
}

/// A character-string in quotes; `"` and `\` escaped, anything not
/// printable ASCII as `\DDD`.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote(b"a\"b\\c\x01"), "\"a\\\"b\\\\c\\001\"");
    }
}
