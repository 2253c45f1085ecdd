//! Which certificate a DoT server presents, and whether it answers for a zone there: one
//! TLS handshake and one SOA query.
//!
//! For `cluster up`'s table, which reports what each node serves. Trust is deliberately not
//! checked here (the CA may be one only the client knows); the handshake's signatures are.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RecordType},
};
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::tls::{self, CertSummary};

/// The leaf `address` presents for `name` once it answers `zone`'s SOA over DoT, or why
/// not yet.
pub(super) async fn served(
    address: SocketAddr,
    name: &str,
    zone: &Name,
    limit: Duration,
) -> Result<CertSummary, String> {
    let connector = tokio_rustls::TlsConnector::from(tls::probe_client_config());
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let handshake = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        answers_soa(&mut tls, zone).await?;
        let leaf = tls::presented_leaf(tls.get_ref().1)?;
        tls::summarize(&leaf).map_err(|e| e.to_string())
    };
    tokio::time::timeout(limit, handshake)
        .await
        .map_err(|_| format!("no TLS handshake within {limit:?}"))?
}

/// A zone is served when its SOA comes back NOERROR with an answer.
async fn answers_soa(
    tls: &mut tokio_rustls::client::TlsStream<TcpStream>,
    zone: &Name,
) -> Result<(), String> {
    let mut query = Message::query();
    query.metadata.id = crate::dns::client::exchange::random_id();
    query.add_query(Query::query(zone.clone(), RecordType::SOA));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    tls.write_all(&framed).await.map_err(|e| e.to_string())?;
    let len = tls.read_u16().await.map_err(|e| e.to_string())?;
    let mut answer = vec![0; usize::from(len)];
    tls.read_exact(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let answer = Message::from_vec(&answer).map_err(|e| e.to_string())?;
    if answer.metadata.response_code != ResponseCode::NoError || answer.answers.is_empty() {
        return Err(format!(
            "does not serve {zone} yet ({})",
            answer.metadata.response_code
        ));
    }
    Ok(())
}
