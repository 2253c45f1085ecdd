//! Reads a transfer message's header and answer records straight from the wire, without
//! decoding them into hickory's types: each record comes out in the uncompressed wire form
//! the zone store keeps (owner, type, class, TTL, length, data), its names made whole. A
//! million-record transfer is read this way in one pass per message, with no record
//! objects in between.
//!
//! Names are decompressed in the owner and, for the types whose data may hold compressed
//! names (RFC 1035's, and those RFC 3597 section 4 says receivers must still decompress),
//! in the data; any other data is copied as it is. Owns this byte walk only: it must not
//! judge what the records say (that is the transfer's and the zone's).

use crate::wire;

/// The parts of a message header a transfer checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub id: u16,
    pub response: bool,
    pub truncated: bool,
    /// the low four bits (a transfer never negotiates extended rcodes)
    pub rcode: u8,
    pub answers: u16,
}

/// The offset of the first answer record and the header, or what is wrong.
pub(super) fn header(message: &[u8]) -> Result<(Header, usize), &'static str> {
    if message.len() < wire::HEADER_LEN {
        return Err("a message shorter than its header");
    }
    let word = |at: usize| u16::from_be_bytes([message[at], message[at + 1]]);
    let header = Header {
        id: word(0),
        response: message[2] & 0x80 != 0,
        truncated: message[2] & 0x02 != 0,
        rcode: message[3] & 0x0F,
        answers: word(6),
    };
    let mut at = wire::HEADER_LEN;
    for _ in 0..word(4) {
        at = wire::skip_name(message, at).ok_or("a question name that runs past the message")?;
        at += 4;
    }
    if at > message.len() {
        return Err("a question that runs past the message");
    }
    Ok((header, at))
}

/// Appends the uncompressed answer record at `at` to `out`; returns the offset after it
/// and the record's type.
pub(super) fn record(
    message: &[u8],
    at: usize,
    out: &mut Vec<u8>,
) -> Result<(usize, u16), &'static str> {
    let after_owner = wire::expand_name(message, at, out)?;
    let fixed = message
        .get(after_owner..after_owner + 10)
        .ok_or("a record that runs past the message")?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let start = after_owner + 10;
    let end = start + rdlen;
    if end > message.len() {
        return Err("record data that runs past the message");
    }
    out.extend_from_slice(&fixed[..8]);
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    data(message, rtype, start, end, out)?;
    let written =
        u16::try_from(out.len() - len_at - 2).map_err(|_| "record data over 65,535 bytes")?;
    out[len_at..len_at + 2].copy_from_slice(&written.to_be_bytes());
    Ok((end, rtype))
}

/// One piece of a record's data, in order.
#[derive(Clone, Copy)]
enum Part {
    /// bytes copied as they are
    Fixed(usize),
    /// a name that may be compressed
    Name,
    /// this many character strings (a length byte, then that many bytes)
    Strings(usize),
}

/// Where names sit in the data of the types that may compress them; `None` for the types
/// whose data is copied as it is.
fn layout(rtype: u16) -> Option<&'static [Part]> {
    use Part::{Fixed, Name, Strings};
    Some(match rtype {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME: one name
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => &[Name],
        // SOA: two names and five numbers
        6 => &[Name, Name, Fixed(20)],
        // MINFO, RP: two names
        14 | 17 => &[Name, Name],
        // MX, AFSDB, RT: a number and a name
        15 | 18 | 21 => &[Fixed(2), Name],
        // PX: a number and two names
        26 => &[Fixed(2), Name, Name],
        // SRV: three numbers and a name
        33 => &[Fixed(6), Name],
        // NAPTR: two numbers, three character strings and a name
        35 => &[Fixed(4), Strings(3), Name],
        _ => return None,
    })
}

/// Appends the data between `start` and `end` (inside `message`) to `out`, names made
/// whole where [`layout`] says they are.
fn data(
    message: &[u8],
    rtype: u16,
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let Some(parts) = layout(rtype) else {
        out.extend_from_slice(&message[start..end]);
        return Ok(());
    };
    let mut at = start;
    for part in parts {
        at = match *part {
            Part::Fixed(n) => fixed(message, at, n, end, out)?,
            Part::Name => {
                let next = wire::expand_name(message, at, out)?;
                if next > end {
                    return Err("a name that runs past its record data");
                }
                next
            }
            Part::Strings(count) => {
                for _ in 0..count {
                    let len = message
                        .get(at)
                        .filter(|_| at < end)
                        .ok_or("a NAPTR string past its data")?;
                    at = fixed(message, at, 1 + usize::from(*len), end, out)?;
                }
                at
            }
        };
    }
    if at != end {
        return Err("record data longer than its type holds");
    }
    Ok(())
}

/// Copies `n` bytes at `from`, which must end by `end`; returns the offset after them.
fn fixed(
    message: &[u8],
    from: usize,
    n: usize,
    end: usize,
    out: &mut Vec<u8>,
) -> Result<usize, &'static str> {
    let part = message.get(from..from + n).filter(|_| from + n <= end);
    out.extend_from_slice(part.ok_or("record data shorter than its type needs")?);
    Ok(from + n)
}

#[cfg(test)]
mod tests {
    use hickory_proto::{
        op::Message,
        rr::{Name, RData, Record, rdata},
        serialize::binary::{BinDecodable, BinDecoder},
    };
    use std::str::FromStr;

    use super::*;

    /// Every record hickory writes (compressed) reads back, through this module, as the
    /// same record: names in owners and in SOA/MX/SRV/NS/CNAME data decompressed.
    #[test]
    fn compressed_records_come_out_whole_and_equal() {
        let origin = Name::from_str("example.test.").unwrap();
        let at = |s: &str| Name::from_str(s).unwrap();
        let records = vec![
            Record::from_rdata(
                origin.clone(),
                300,
                RData::SOA(rdata::SOA::new(
                    at("ns1.example.test."),
                    at("h.example.test."),
                    7,
                    1,
                    2,
                    3,
                    4,
                )),
            ),
            Record::from_rdata(
                origin.clone(),
                300,
                RData::NS(rdata::NS(at("ns1.example.test."))),
            ),
            Record::from_rdata(
                at("www.example.test."),
                60,
                RData::CNAME(rdata::CNAME(at("web.example.test."))),
            ),
            Record::from_rdata(
                origin,
                60,
                RData::MX(rdata::MX::new(10, at("mail.example.test."))),
            ),
            Record::from_rdata(
                at("_s._tcp.example.test."),
                60,
                RData::SRV(rdata::SRV::new(1, 2, 53, at("ns1.example.test."))),
            ),
            Record::from_rdata(
                at("t.example.test."),
                60,
                RData::TXT(rdata::TXT::new(vec!["x y".into()])),
            ),
        ];
        let mut message = Message::response(7, hickory_proto::op::OpCode::Query);
        message.add_answers(records.clone());
        let bytes = message.to_vec().unwrap();
        assert!(bytes.len() < 200, "hickory compressed the names");
        let (header, mut at) = header(&bytes).unwrap();
        assert_eq!((header.id, header.answers), (7, records.len() as u16));
        for expected in &records {
            let mut wire = Vec::new();
            let (next, rtype) = record(&bytes, at, &mut wire).unwrap();
            assert_eq!(rtype, u16::from(expected.record_type()));
            let read = Record::read(&mut BinDecoder::new(&wire)).unwrap();
            assert_eq!(&read, expected);
            at = next;
        }
        assert_eq!(at, bytes.len());
    }

    #[test]
    fn loops_forward_pointers_and_short_data_are_refused() {
        // a header with one answer, no question; then a name pointing at itself
        let mut looped = vec![0, 1, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        looped.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        let (_, at) = header(&looped).unwrap();
        assert!(record(&looped, at, &mut Vec::new()).is_err());
        // an A record whose data runs past the message
        let mut short = vec![0, 1, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        short.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 9, 1, 2, 3, 4]);
        assert!(record(&short, 12, &mut Vec::new()).is_err());
        // an MX whose name runs past its own data length
        let mut mx = vec![0, 1, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        mx.extend_from_slice(&[0, 0, 15, 0, 1, 0, 0, 0, 1, 0, 3, 0, 10, 1, b'a', 0]);
        assert!(record(&mx, 12, &mut Vec::new()).is_err());
        assert!(header(&[0; 11]).is_err());
    }
}
