//! Reading the bundle by plain queries over TCP, for servers that refuse
//! transfers: the SOA (for its serial), the manifest, then every record the
//! manifest names (docs/PROTOCOL.md, "Reading by queries"). With a key every
//! query is TSIG-signed and every answer must carry a TSIG that verifies.
//!
//! Owns the order of the queries; it must not check the bundle: missing
//! records are simply not returned, and `bundle::inspect` names them.

use std::net::SocketAddr;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigner};

use super::conn::Conn;
use super::{Fetched, Method, Options, XfrError};
use crate::{
    bundle,
    dns::client::exchange,
    tsig::client::{self as tsig_client, Chain},
};

/// The bundle's records under `zone` from `server`, one query each, on one
/// connection, each signed with `tsig` when given.
pub async fn bundle(
    server: SocketAddr,
    zone: &Name,
    tsig: Option<&TSigner>,
    options: &Options,
) -> Result<Fetched, XfrError> {
    let mut conn = Conn::open(server, options).await?;
    let mut conn = Asker {
        conn: &mut conn,
        tsig,
    };
    let serial = ask(&mut conn, zone, RecordType::SOA)
        .await?
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        });
    let manifest =
        bundle::manifest_name(zone).map_err(|source| XfrError::Bundle { server, source })?;
    let mut records = ask(&mut conn, &manifest, RecordType::TXT).await?;
    if !records.is_empty() {
        let wanted = bundle::record_names(&records, zone)
            .map_err(|source| XfrError::Bundle { server, source })?;
        for (name, kind) in wanted {
            records.extend(ask(&mut conn, &name, kind).await?);
        }
    }
    Ok(Fetched {
        method: Method::Queries,
        serial,
        records,
    })
}

/// The connection and the key its queries are signed with.
struct Asker<'a> {
    conn: &'a mut Conn,
    tsig: Option<&'a TSigner>,
}

/// The answers of type `kind` at `name`; none for NXDOMAIN.
async fn ask(
    asker: &mut Asker<'_>,
    name: &Name,
    kind: RecordType,
) -> Result<Vec<Record>, XfrError> {
    let conn = &mut *asker.conn;
    let mut request = Message::query();
    request.add_query(Query::query(name.clone(), kind));
    request.metadata.id = exchange::random_id();
    let mut chain = asker
        .tsig
        .map(|signer| Chain::sign(&mut request, signer))
        .transpose()
        .map_err(|reason| XfrError::Tsig {
            server: conn.server,
            reason,
        })?;
    let id = conn.send_message(&mut request).await?;
    let Some(bytes) = conn.recv().await? else {
        return Err(conn.bad(format!(
            "connection closed before the answer for {name} {kind}"
        )));
    };
    let message = conn.decode(&bytes, id)?;
    if let Some(chain) = chain.as_mut()
        && let Some(reason) = tsig_client::failure(&message, chain.verify(&bytes))
    {
        return Err(XfrError::Tsig {
            server: conn.server,
            reason: format!("{name} {kind}: {reason}"),
        });
    }
    match message.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(message
            .answers
            .into_iter()
            .filter(|r| r.record_type() == kind)
            .collect()),
        rcode => Err(XfrError::Rcode {
            server: conn.server,
            name: name.to_string(),
            kind: kind.to_string(),
            rcode,
        }),
    }
}
