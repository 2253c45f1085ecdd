//! What the rollover waits for, asked over the network as clients would: that every
//! nameserver answers a new TLSA record, and that every DoT server presents the new key.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RData, RecordType},
};
use rustls::pki_types::ServerName;
use tokio::{net::TcpStream, time::timeout};

use super::SpkiHash;
use crate::dns::client::exchange;

/// One query's or handshake's wait before it counts as unanswered.
const ASK_TIMEOUT: Duration = Duration::from_millis(1000);

/// The TLSA 3 1 1 data `server` answers at `owner`.
pub(super) async fn tlsa_at(server: SocketAddr, owner: &Name) -> Result<Vec<SpkiHash>, String> {
    let mut query = Message::query();
    query.metadata.id = exchange::random_id();
    query.add_query(Query::query(owner.clone(), RecordType::TLSA));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let answer = timeout(ASK_TIMEOUT, exchange::tcp(server, None, &bytes))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let answer = Message::from_vec(&answer).map_err(|e| e.to_string())?;
    Ok(answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(tlsa) => tlsa.cert_data.as_slice().try_into().ok(),
            _ => None,
        })
        .collect())
}

/// The SPKI hash of the leaf `server` presents over DoT.
pub(super) async fn presented(server: SocketAddr) -> Result<SpkiHash, String> {
    let connector = tokio_rustls::TlsConnector::from(crate::tls::probe_client_config());
    let handshake = async {
        let tcp = TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        // The name is not checked (the probe trusts no CA); it only fills the SNI.
        let name = ServerName::IpAddress(server.ip().into());
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let leaf = crate::tls::presented_leaf(tls.get_ref().1)?;
        crate::tls::spki_sha256(&leaf).map_err(|e| e.to_string())
    };
    timeout(ASK_TIMEOUT, handshake)
        .await
        .map_err(|_| "no TLS handshake".to_string())?
}
