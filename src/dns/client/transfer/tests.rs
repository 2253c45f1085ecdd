//! The transfer loop against a scripted server on loopback: what a real
//! server does not easily do on demand (answer a signed request unsigned,
//! stay silent, refuse). The happy paths run against BIND in tests/it/verify.rs.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{Name, RData, Record};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;
use crate::tsig::{Algorithm, TsigKey};

fn zone() -> Name {
    Name::from_ascii("z.test.").unwrap()
}

fn soa() -> Record {
    let soa = SOA::new(zone(), zone(), 9, 1, 1, 1, 1);
    Record::from_rdata(zone(), 60, RData::SOA(soa))
}

fn txt() -> Record {
    Record::from_rdata(zone(), 60, RData::TXT(TXT::new(vec!["x".into()])))
}

/// Serves one connection: for the request, answers with `rcode` and
/// `answers` unsigned, or says nothing when `answers` is `None`.
async fn server(rcode: ResponseCode, answers: Option<Vec<Record>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.5.20:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).await.unwrap();
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp.read_exact(&mut request).await.unwrap();
        let id = Message::from_vec(&request).unwrap().metadata.id;
        let Some(answers) = answers else {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return;
        };
        let mut reply = Message::response(id, OpCode::Query);
        reply.metadata.response_code = rcode;
        reply.answers = answers;
        let bytes = reply.to_vec().unwrap();
        let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
        tcp.write_all(&[&len[..], &bytes].concat()).await.unwrap();
    });
    addr
}

fn options() -> Options {
    Options {
        timeout: Duration::from_millis(300),
        ..Options::default()
    }
}

#[tokio::test]
async fn an_unsigned_transfer_is_read_without_a_key() {
    let addr = server(ResponseCode::NoError, Some(vec![soa(), txt(), soa()])).await;
    let got = transfer(addr, &zone(), None, &options()).await.unwrap();
    assert_eq!((got.method, got.serial), (Method::Axfr, Some(9)));
    assert_eq!(got.records, vec![soa(), txt()]);
}

#[tokio::test]
async fn an_unsigned_answer_to_a_signed_request_is_refused() {
    let addr = server(ResponseCode::NoError, Some(vec![soa(), txt(), soa()])).await;
    let key = TsigKey::generate(Name::from_ascii("k.").unwrap(), Algorithm::HmacSha256);
    let err = transfer(addr, &zone(), Some(&key.signer()), &options())
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Tsig { .. }), "{err}");
}

#[tokio::test]
async fn refused_is_told_apart_and_names_the_server() {
    let addr = server(ResponseCode::Refused, Some(vec![])).await;
    let err = transfer(addr, &zone(), None, &options()).await.unwrap_err();
    assert!(matches!(err, XfrError::Refused { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let addr = server(ResponseCode::NoError, None).await;
    let err = transfer(addr, &zone(), None, &options()).await.unwrap_err();
    assert!(matches!(err, XfrError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn a_transfer_must_start_with_the_soa() {
    let addr = server(ResponseCode::NoError, Some(vec![txt(), soa()])).await;
    let err = transfer(addr, &zone(), None, &options()).await.unwrap_err();
    assert!(matches!(err, XfrError::BadResponse { .. }), "{err}");
}

/// Accepts one connection, reads the request and closes without a word.
async fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.5.20:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).await.unwrap();
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp.read_exact(&mut request).await.unwrap();
        tcp.shutdown().await.unwrap();
    });
    addr
}

fn key() -> TsigKey {
    TsigKey::generate(Name::from_ascii("k.").unwrap(), Algorithm::HmacSha256)
}

#[tokio::test]
async fn with_a_key_an_unsigned_refusal_is_a_tsig_failure_not_a_refusal() {
    for rcode in [
        ResponseCode::Refused,
        ResponseCode::NotAuth,
        ResponseCode::NotImp,
    ] {
        let addr = server(rcode, Some(vec![])).await;
        let err = fetch(addr, &zone(), Some(&key().signer()), &options())
            .await
            .unwrap_err();
        assert!(matches!(err, XfrError::Tsig { .. }), "{rcode}: {err}");
        assert!(err.unauthenticated());
        assert!(err.to_string().contains("is not TSIG-signed"), "{err}");
    }
}

#[tokio::test]
async fn a_closed_connection_is_a_refusal_only_without_a_key() {
    let addr = closing_server().await;
    let err = transfer(addr, &zone(), None, &options()).await.unwrap_err();
    assert!(matches!(err, XfrError::Refused { .. }), "{err}");
    let addr = closing_server().await;
    let err = fetch(addr, &zone(), Some(&key().signer()), &options())
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Tsig { .. }), "{err}");
    assert!(
        err.to_string().contains("closed without a signed answer"),
        "{err}"
    );
}
