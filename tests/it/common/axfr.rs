//! A test-side AXFR client over TCP that TSIG-signs the request and checks the TSIG of every
//! response message with hickory's verifier, keeping the raw bytes for inspection.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType},
};

/// What a transfer brought.
pub struct Transfer {
    pub records: Vec<Record>,
    /// Every response message as received.
    pub raw: Vec<Vec<u8>>,
    pub rcode: ResponseCode,
}

/// Transfers `zone` from `server`, signing with `key` when given.
pub fn axfr(server: SocketAddr, zone: &str, key: Option<&certzone::tsig::TsigKey>) -> Transfer {
    let mut message = Message::query();
    message.metadata.id = 4242;
    message.add_query(Query::query(
        Name::from_ascii(zone).unwrap(),
        RecordType::AXFR,
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut verifier = key.map(|key| {
        let (tsig, verifier) = key.signer().sign_message(&message, now).unwrap();
        message.set_signature(tsig);
        verifier.unwrap()
    });
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let bytes = message.to_vec().unwrap();
    stream
        .write_all(&[&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat())
        .unwrap();
    let mut transfer = Transfer {
        records: Vec::new(),
        raw: Vec::new(),
        rcode: ResponseCode::NoError,
    };
    let mut soas = 0;
    while soas < 2 {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            break;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).unwrap();
        let response = Message::from_vec(&buf).unwrap();
        transfer.rcode = response.metadata.response_code;
        if let Some(verifier) = verifier.as_mut()
            && response.metadata.response_code == ResponseCode::NoError
        {
            verifier
                .verify(&buf)
                .expect("every message's TSIG verifies");
        }
        transfer.raw.push(buf);
        if response.metadata.response_code != ResponseCode::NoError {
            break;
        }
        for record in response.answers {
            soas += usize::from(matches!(record.data, RData::SOA(_)));
            transfer.records.push(record);
        }
    }
    transfer
}
