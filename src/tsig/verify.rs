//! A message's TSIG checked (RFC 8945 4.3.3, 5.2) without decoding the records before it.
//!
//! hickory's `TSigner::verify_message_byte` decodes every record of a message to find the
//! TSIG at its end; the transfer or query reader then decodes them all again. For a
//! worker taking the certificate zone that first decoding was about a tenth of its work.
//! Here the records before the TSIG are stepped over by their lengths (names by their
//! labels and pointers, `wire::skip_name`), and only the TSIG record is decoded. The bytes
//! covered by the MAC and every check are the same as hickory's. It must not decide what a
//! failure means.

use std::ops::Range;

use hickory_proto::{
    dnssec::DnsSecError,
    rr::{RData, Record, RecordType, TSigner, rdata::tsig::TSIG},
    serialize::binary::{BinDecodable, BinDecoder, BinEncoder},
};

use crate::wire::skip_name;

/// `signer.verify_message_byte(message, previous, first)`, faster: the MAC, the signer's
/// time and the window around it, or why the message does not verify. Public for the fuzz
/// target that holds it to hickory's answer on any bytes.
pub fn verify_message(
    signer: &TSigner,
    message: &[u8],
    previous: Option<&[u8]>,
    first: bool,
) -> Result<(Vec<u8>, u64, Range<u64>), DnsSecError> {
    let (tbv, name, tsig) = to_be_verified(message, previous, first)?;
    if name != *signer.signer_name() || tsig.algorithm != *signer.algorithm() {
        return Err(DnsSecError::TsigWrongKey);
    }
    // A truncated MAC fails here too: ring compares the whole tag, lengths included.
    signer.verify(&tbv, &tsig.mac)?;
    let fudge = u64::from(tsig.fudge);
    let window = tsig.time.saturating_sub(fudge)..tsig.time.saturating_add(fudge);
    Ok((tsig.mac, tsig.time, window))
}

/// The bytes the MAC covers, and the TSIG record's owner and data.
fn to_be_verified(
    message: &[u8],
    previous: Option<&[u8]>,
    first: bool,
) -> Result<(Vec<u8>, hickory_proto::rr::Name, TSIG), DnsSecError> {
    let malformed = |what: &str| DnsSecError::from(format!("malformed signed message: {what}"));
    let header: &[u8; 12] = message
        .first_chunk()
        .ok_or_else(|| malformed("no header"))?;
    let count = |at: usize| usize::from(u16::from_be_bytes([header[at], header[at + 1]]));
    let (questions, records, additionals) = (count(4), count(6) + count(8), count(10));
    if additionals == 0 {
        return Err(malformed("no TSIG record"));
    }
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at).ok_or_else(|| malformed("a question"))? + 4;
    }
    for _ in 0..records + additionals - 1 {
        at = skip_record(message, at).ok_or_else(|| malformed("a record"))?;
    }
    let signed = message
        .get(12..at)
        .ok_or_else(|| malformed("records past the end"))?;
    let mut decoder = BinDecoder::new(message);
    decoder
        .read_slice(at)
        .map_err(|_| malformed("records past the end"))?;
    let record = Record::read(&mut decoder).map_err(|e| malformed(&e.to_string()))?;
    if !decoder.is_empty() || record.record_type() != RecordType::TSIG {
        return Err(malformed("the TSIG record is not the last one"));
    }
    let name = record.name.clone();
    let RData::TSIG(tsig) = record.data else {
        return Err(malformed("the TSIG record does not read"));
    };

    let mut buf = Vec::with_capacity(message.len() + 64);
    let mut encoder = BinEncoder::new(&mut buf);
    if let Some(previous) = previous {
        let len = u16::try_from(previous.len()).map_err(|_| malformed("a previous MAC"))?;
        encoder.emit_u16(len)?;
        encoder.emit_vec(previous)?;
    }
    // The header as the signer saw it: its original id, and the TSIG not counted.
    encoder.emit_u16(tsig.oid)?;
    encoder.emit_vec(&header[2..10])?;
    encoder.emit_u16((additionals - 1) as u16)?;
    encoder.emit_vec(signed)?;
    if first {
        tsig.emit_tsig_for_mac(&mut encoder, &name)?;
    } else {
        // Later messages of a chain cover only the time and fudge (RFC 8945 5.3.1).
        encoder.emit_u16((tsig.time >> 32) as u16)?;
        encoder.emit_u32(tsig.time as u32)?;
        encoder.emit_u16(tsig.fudge)?;
    }
    Ok((buf, name, tsig))
}

/// The offset after the record at `at`: owner, type, class, TTL, RDLENGTH, RDATA.
fn skip_record(message: &[u8], at: usize) -> Option<usize> {
    let at = skip_name(message, at)?;
    let fixed = message.get(at..at + 10)?;
    let end = at + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    (end <= message.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use hickory_proto::{
        op::{Message, MessageType, OpCode, Query},
        rr::{Name, rdata},
        serialize::binary::BinEncodable,
    };

    use super::*;
    use crate::tsig::{Algorithm, TsigKey};

    fn signer(secret_from: &str) -> TSigner {
        TsigKey::generate(
            Name::from_ascii(secret_from).unwrap(),
            Algorithm::HmacSha256,
        )
        .signer()
    }

    /// A signed answer with compressed names and records in every section.
    fn signed_answer(signer: &TSigner) -> Vec<u8> {
        let zone = Name::from_ascii("_certzone.example.test.").unwrap();
        let mut message = Message::new(7, MessageType::Response, OpCode::Query);
        message.add_query(Query::query(zone.clone(), RecordType::SOA));
        let soa = rdata::SOA::new(zone.clone(), zone.clone(), 9, 60, 60, 600, 60);
        message.add_answer(Record::from_rdata(zone.clone(), 60, RData::SOA(soa)));
        message.add_authority(Record::from_rdata(
            zone,
            60,
            RData::NS(rdata::NS(Name::from_ascii("ns1.example.test.").unwrap())),
        ));
        message.add_additional(Record::from_rdata(
            Name::from_ascii("ns1.example.test.").unwrap(),
            60,
            RData::A(rdata::A::new(192, 0, 2, 1)),
        ));
        message.finalize(signer, 1_800_000_000).unwrap();
        message.to_bytes().unwrap()
    }

    #[test]
    fn agrees_with_hickory_on_good_tampered_and_foreign_messages() {
        let ours = signer("transfer.");
        let bytes = signed_answer(&ours);
        let want = ours.verify_message_byte(&bytes, None, true).unwrap();
        assert_eq!(verify_message(&ours, &bytes, None, true).unwrap(), want);
        // Chained, as a later message of a transfer: both fail the same way on a first
        // message's MAC, since the covered bytes differ.
        assert!(verify_message(&ours, &bytes, Some(&[1; 32]), false).is_err());

        // Any byte changed before the TSIG fails, as in hickory.
        for at in [2, 5, 13, 40, bytes.len() / 2] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            assert!(
                verify_message(&ours, &bad, None, true).is_err(),
                "byte {at} changed"
            );
        }
        // Another key under another name, or the same name with another secret.
        let other = signer("other.");
        assert!(matches!(
            verify_message(&other, &bytes, None, true),
            Err(DnsSecError::TsigWrongKey)
        ));
        let same_name = signer("transfer.");
        assert!(verify_message(&same_name, &bytes, None, true).is_err());
        // A MAC cut short, with its length fixed up, still fails.
        let mac_len_at = bytes.len() - 6 - 32 - 2;
        assert_eq!(&bytes[mac_len_at..mac_len_at + 2], &[0, 32]);
        let mut short = bytes[..mac_len_at].to_vec();
        short.extend_from_slice(&[0, 16]);
        short.extend_from_slice(&bytes[mac_len_at + 2..mac_len_at + 18]);
        short.extend_from_slice(&bytes[bytes.len() - 6..]);
        // RDLENGTH sits before the algorithm (hmac-sha256., 13 bytes), time and fudge.
        let rdlength_at = mac_len_at - 8 - 13 - 2;
        let rdlength = u16::from_be_bytes([bytes[rdlength_at], bytes[rdlength_at + 1]]);
        assert_eq!(rdlength, 13 + 8 + 2 + 32 + 6);
        short[rdlength_at..rdlength_at + 2].copy_from_slice(&(rdlength - 16).to_be_bytes());
        assert!(
            to_be_verified(&short, None, true).is_ok(),
            "the cut message still reads"
        );
        assert!(ours.verify_message_byte(&short, None, true).is_err());
        assert!(verify_message(&ours, &short, None, true).is_err());
        // Cut short, or something after the TSIG.
        assert!(verify_message(&ours, &bytes[..bytes.len() - 3], None, true).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(verify_message(&ours, &longer, None, true).is_err());
        assert!(verify_message(&ours, &bytes[..11], None, true).is_err());
    }
}
