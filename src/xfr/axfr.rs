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
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigVerifier, TSigner};

use super::stream::Conn;
use super::{Fetched, Method, Options, XfrError};

/// The records of one transfer, SOA first, as they arrive.
#[derive(Default)]
struct Transfer {
    records: Vec<Record>,
    serial: Option<u32>,
    done: bool,
}

/// Transfers `zone` from `server`. A refusal is [`XfrError::Refused`], so
/// the caller can fall back to queries.
pub async fn transfer(
    server: SocketAddr,
    zone: &Name,
    tsig: Option<&TSigner>,
    options: &Options,
) -> Result<Fetched, XfrError> {
    let mut conn = Conn::open(server, options).await?;
    let mut request = Message::query();
    request.add_query(Query::query(zone.clone(), RecordType::AXFR));
    // The id is set before signing: the MAC covers it.
    request.metadata.id = super::stream::random_id();
    let mut verifier = sign(&mut request, tsig, server)?;
    let id = conn.send_message(&mut request).await?;
    let mut transfer = Transfer::default();
    while !transfer.done {
        let first = transfer.records.is_empty();
        let Some(bytes) = conn.recv().await? else {
            return Err(closed(&conn, zone, first, verifier.is_some()));
        };
        let message = conn.decode(&bytes, id)?;
        if let Some(verifier) = verifier.as_mut() {
            check_tsig(&conn, verifier, &bytes, &message)?;
        }
        check_rcode(&conn, zone, &message, first)?;
        transfer.add(&conn, message.answers)?;
    }
    Ok(Fetched {
        method: Method::Axfr,
        serial: transfer.serial,
        records: transfer.records,
    })
}

/// Signs the request when a key is given; the verifier checks the answers.
fn sign(
    request: &mut Message,
    tsig: Option<&TSigner>,
    server: SocketAddr,
) -> Result<Option<TSigVerifier>, XfrError> {
    let Some(signer) = tsig else {
        return Ok(None);
    };
    request
        .finalize(signer, crate::unix_now())
        .map_err(|e| XfrError::Tsig {
            server,
            reason: format!("cannot sign the request: {e}"),
        })
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

fn check_tsig(
    conn: &Conn,
    verifier: &mut TSigVerifier,
    bytes: &[u8],
    message: &Message,
) -> Result<(), XfrError> {
    let verified = verifier
        .verify(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string());
    match super::tsig_failure(message, verified) {
        None => Ok(()),
        Some(reason) => Err(XfrError::Tsig {
            server: conn.server,
            reason,
        }),
    }
}

impl Transfer {
    /// Takes one message's answers: the first record must be the SOA, and
    /// the transfer ends with the next SOA, which must be the last record.
    fn add(&mut self, conn: &Conn, answers: Vec<Record>) -> Result<(), XfrError> {
        if answers.is_empty() {
            return Err(conn.bad("a transfer message without records"));
        }
        for record in answers {
            if self.done {
                return Err(conn.bad("records after the closing SOA"));
            }
            match (&record.data, self.records.is_empty()) {
                (RData::SOA(soa), true) => self.serial = Some(soa.serial),
                (_, true) => return Err(conn.bad("the transfer does not start with the SOA")),
                (RData::SOA(_), false) => self.done = true,
                _ => {}
            }
            if !self.done {
                self.records.push(record);
            }
        }
        Ok(())
    }
}
