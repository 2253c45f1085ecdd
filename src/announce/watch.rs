//! What the rollover waits for, asked over the network as clients would: that every
//! nameserver answers a new TLSA record, and that every DoT server presents the new key.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::ServerName;
use tokio::{net::TcpStream, time::timeout};

use super::SpkiHash;
use crate::dns::client::ask::{AskError, Over, ask};

/// One query's or handshake's wait before it counts as unanswered.
const ASK_TIMEOUT: Duration = Duration::from_millis(1000);

/// The TLSA 3 1 1 data `server` answers at `owner`.
pub(super) async fn tlsa_at(server: SocketAddr, owner: &Name) -> Result<Vec<SpkiHash>, AskError> {
    let answer = ask(server, owner, RecordType::TLSA, Over::Tcp, ASK_TIMEOUT).await?;
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
