//! AXFR (RFC 5936) over TCP, optionally TSIG-signed (RFC 8945): the request
//! is signed and every response message must carry a TSIG that verifies in
//! the chain hickory's `TSigVerifier` tracks.
//!
//! With a key there is no downgrade: the TSIG is checked before the rcode, so
//! only a signed REFUSED, NOTAUTH or NOTIMP is a refusal ([`XfrError::Refused`],
//! which lets the caller read by signed queries); an unsigned one, or a
//! connection closed before any answer, is a failure. Without a key, any of
//! them is a refusal, as before.
//!
//! Owns the transfer's message loop; it must not interpret the records
//! beyond the SOA that opens and closes the transfer.

use std::net::SocketAddr;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType, TSigner};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::answers;
use super::conn::Conn;
use super::{Fetched, Method, Options, XfrError};
use crate::{
    dns::client::exchange,
    tsig::client::{self as tsig_client, Chain},
    wire,
};

/// Takes a transfer's records as they arrive, in the uncompressed wire form of
/// [`crate::zones::store`]: the opening SOA first, the closing SOA not at all.
pub trait Sink: Send {
    /// One record (`rtype` is its type); an error stops the transfer and is reported as
    /// a bad response.
    fn record(&mut self, wire: &[u8], rtype: u16) -> Result<(), String>;
}

/// Collects decoded records (the certificate zone, `certzone verify`).
impl Sink for Vec<Record> {
    fn record(&mut self, wire: &[u8], _rtype: u16) -> Result<(), String> {
        let record = Record::read(&mut BinDecoder::new(wire)).map_err(|e| e.to_string())?;
        self.push(record);
        Ok(())
    }
}

/// Where a transfer stands: records seen, the opening serial, whether the closing SOA came.
#[derive(Default)]
struct Transfer {
    records: usize,
    serial: Option<u32>,
    done: bool,
}

/// Transfers `zone` from `server` into decoded records. A refusal is
/// [`XfrError::Refused`], so the caller can fall back to queries.
pub async fn transfer(
    server: SocketAddr,
    zone: &Name,
    tsig: Option<&TSigner>,
    options: &Options,
) -> Result<Fetched, XfrError> {
    let mut records = Vec::new();
    let serial = transfer_into(server, zone, tsig, options, &mut records).await?;
    Ok(Fetched {
        method: Method::Axfr,
        serial: Some(serial),
        records,
    })
}

/// Transfers `zone` from `server`, handing every record to `sink` as it is read (no
/// record of the whole zone is kept here); returns the zone's serial.
pub async fn transfer_into(
    server: SocketAddr,
    zone: &Name,
    tsig: Option<&TSigner>,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<u32, XfrError> {
    let mut conn = Conn::open(server, options).await?;
    let mut request = Message::query();
    request.add_query(Query::query(zone.clone(), RecordType::AXFR));
    // The id is set before signing: the MAC covers it.
    request.metadata.id = exchange::random_id();
    let mut chain = sign(&mut request, tsig, server)?;
    let id = conn.send_message(&mut request).await?;
    let mut transfer = Transfer::default();
    let mut wire = Vec::with_capacity(512);
    while !transfer.done {
        let first = transfer.records == 0;
        let Some(bytes) = conn.recv().await? else {
            return Err(closed(&conn, zone, first, chain.is_some()));
        };
        let (header, at) =
            answers::header(&bytes).map_err(|e| conn.bad(format!("undecodable message: {e}")))?;
        if header.id != id || !header.response {
            return Err(conn.bad("a message that is not the response to the request"));
        }
        if header.truncated {
            return Err(conn.bad("truncated message over TCP"));
        }
        if let Some(chain) = chain.as_mut()
            && let Err(reason) = chain.verify(&bytes)
        {
            return Err(tsig_error(&conn, &bytes, reason));
        }
        if header.rcode != 0 {
            return Err(rcode_error(&conn, zone, &bytes, first));
        }
        transfer.add(&conn, &bytes, header.answers, at, &mut wire, sink)?;
    }
    transfer
        .serial
        .ok_or_else(|| conn.bad("the transfer does not start with the SOA"))
}

/// Signs the request when a key is given; the chain checks the answers.
fn sign(
    request: &mut Message,
    tsig: Option<&TSigner>,
    server: SocketAddr,
) -> Result<Option<Chain>, XfrError> {
    tsig.map(|signer| Chain::sign(request, signer))
        .transpose()
        .map_err(|reason| XfrError::Tsig { server, reason })
}

/// A message that failed its TSIG check, decoded only now to say why.
fn tsig_error(conn: &Conn, bytes: &[u8], reason: tsig_client::VerifyError) -> XfrError {
    match Message::from_vec(bytes) {
        Ok(message) => XfrError::Tsig {
            server: conn.server,
            reason: tsig_client::failure(&message, Err(reason))
                .unwrap_or_else(|| "the answer's TSIG does not verify".into()),
        },
        Err(e) => conn.bad(format!("undecodable message: {e}")),
    }
}

/// A message with an error rcode: a refusal of the first, else a failure.
fn rcode_error(conn: &Conn, zone: &Name, bytes: &[u8], first: bool) -> XfrError {
    match Message::from_vec(bytes) {
        Ok(message) => match check_rcode(conn, zone, &message, first) {
            Err(e) => e,
            Ok(()) => conn.bad("an error rcode that decodes as NOERROR"),
        },
        Err(e) => conn.bad(format!("undecodable message: {e}")),
    }
}

/// A closed connection before any answer is the way some servers refuse; with a key it
/// is not authenticated, so it is only a failure.
fn closed(conn: &Conn, zone: &Name, first: bool, signed: bool) -> XfrError {
    match (first, signed) {
        (true, false) => refused(conn, zone, "connection closed without an answer".into()),
        (true, true) => XfrError::Tsig {
            server: conn.server,
            reason: "the connection closed without a signed answer".into(),
        },
        (false, _) => conn.bad("connection closed in the middle of the transfer"),
    }
}

fn refused(conn: &Conn, zone: &Name, reason: String) -> XfrError {
    XfrError::Refused {
        server: conn.server,
        zone: zone.to_string(),
        reason,
    }
}

fn check_rcode(conn: &Conn, zone: &Name, message: &Message, first: bool) -> Result<(), XfrError> {
    let rcode = message.metadata.response_code;
    let refusal = matches!(
        rcode,
        ResponseCode::Refused | ResponseCode::NotAuth | ResponseCode::NotImp
    );
    match rcode {
        ResponseCode::NoError => Ok(()),
        _ if refusal && first => Err(refused(conn, zone, rcode.to_string())),
        _ => Err(XfrError::Rcode {
            server: conn.server,
            name: zone.to_string(),
            kind: "AXFR".into(),
            rcode,
        }),
    }
}

impl Transfer {
    /// Takes one message's answers: the first record must be the SOA, and the transfer
    /// ends with the next SOA, which must be the last record.
    fn add(
        &mut self,
        conn: &Conn,
        bytes: &[u8],
        count: u16,
        mut at: usize,
        wire: &mut Vec<u8>,
        sink: &mut dyn Sink,
    ) -> Result<(), XfrError> {
        if count == 0 {
            return Err(conn.bad("a transfer message without records"));
        }
        for _ in 0..count {
            if self.done {
                return Err(conn.bad("records after the closing SOA"));
            }
            wire.clear();
            let (next, rtype) = answers::record(bytes, at, wire).map_err(|e| conn.bad(e))?;
            at = next;
            let soa = rtype == u16::from(RecordType::SOA);
            match (soa, self.records == 0) {
                (true, true) => {
                    self.serial = Some(
                        soa_serial(wire)
                            .ok_or_else(|| conn.bad("an SOA record too short for its serial"))?,
                    )
                }
                (false, true) => return Err(conn.bad("the transfer does not start with the SOA")),
                (true, false) => self.done = true,
                (false, false) => {}
            }
            if !self.done {
                sink.record(wire, rtype).map_err(|e| conn.bad(e))?;
                self.records += 1;
            }
        }
        Ok(())
    }
}

/// The serial of an uncompressed SOA record: after the owner, 10 fixed bytes and the two
/// names of its data.
fn soa_serial(record: &[u8]) -> Option<u32> {
    let skip = |at: usize| wire::skip_name(record, at);
    let at = skip(skip(skip(0)? + 10)?)?;
    Some(u32::from_be_bytes(record.get(at..at + 4)?.try_into().ok()?))
}
