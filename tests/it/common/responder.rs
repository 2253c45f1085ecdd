//! A scripted primary for tests that need answers no real server gives on demand: SOA
//! answers unsigned or signed with any timers, an AXFR refused without a signature or a
//! connection closed without a word. It listens on UDP and TCP at one address, records
//! every question it is asked (and whether it was TSIG-signed), and stops when dropped.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use certzone::tsig::TsigKey;
use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{Name, RData, Record, RecordType, TSigResponseContext, rdata::SOA},
    serialize::binary::BinEncodable,
};

/// What the responder answers.
#[derive(Clone, Debug)]
pub struct Script {
    /// SOA serial for each zone (any other name: serial 1)
    pub serials: Vec<(Name, u32)>,
    pub refresh: i32,
    pub retry: i32,
    pub expire: i32,
    /// sign SOA answers with this key (the requests must be signed with it too)
    pub sign_with: Option<TsigKey>,
    pub axfr: Axfr,
}

/// What an AXFR gets.
#[derive(Clone, Copy, Debug)]
pub enum Axfr {
    /// an unsigned REFUSED
    UnsignedRefused,
    /// the connection closed after the request
    Close,
}

/// One question received.
#[derive(Clone, Debug)]
pub struct Asked {
    pub name: Name,
    pub kind: RecordType,
    pub signed: bool,
    pub tcp: bool,
    pub at: Instant,
}

pub struct Responder {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    asked: Arc<Mutex<Vec<Asked>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Responder {
    /// Listens on `addr` (UDP and TCP) until dropped.
    pub fn start(addr: SocketAddr, script: Script) -> Self {
        let udp = UdpSocket::bind(addr).expect("bind the responder's UDP socket");
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let tcp = TcpListener::bind(addr).expect("bind the responder's TCP socket");
        tcp.set_nonblocking(true).unwrap();
        let script = Arc::new(Mutex::new(script));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = (script.clone(), asked.clone(), stop.clone());
        let udp_thread =
            std::thread::spawn(move || serve_udp(&udp, &shared.0, &shared.1, &shared.2));
        let shared = (script.clone(), asked.clone(), stop.clone());
        let tcp_thread =
            std::thread::spawn(move || serve_tcp(&tcp, &shared.0, &shared.1, &shared.2));
        Self {
            addr,
            script,
            asked,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// Changes the script from the next question on.
    pub fn set(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.script.lock().unwrap());
    }

    /// Every question so far.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn serve_udp(
    socket: &UdpSocket,
    script: &Mutex<Script>,
    asked: &Mutex<Vec<Asked>>,
    stop: &AtomicBool,
) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let script = script.lock().unwrap().clone();
        if let Some(answer) = answer(&buf[..n], &script, asked, false) {
            let _ = socket.send_to(&answer, peer);
        }
    }
}

fn serve_tcp(
    listener: &TcpListener,
    script: &Mutex<Script>,
    asked: &Mutex<Vec<Asked>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok((stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let script = script.lock().unwrap().clone();
        let _ = serve_connection(stream, &script, asked);
    }
}

/// One question per connection: answered, refused unsigned, or closed.
fn serve_connection(
    mut stream: TcpStream,
    script: &Script,
    asked: &Mutex<Vec<Asked>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut request)?;
    if let Some(answer) = answer(&request, script, asked, true) {
        let framed = [&(answer.len() as u16).to_be_bytes()[..], &answer].concat();
        stream.write_all(&framed)?;
    }
    stream.shutdown(std::net::Shutdown::Both)
}

fn answer(
    request: &[u8],
    script: &Script,
    asked: &Mutex<Vec<Asked>>,
    tcp: bool,
) -> Option<Vec<u8>> {
    let message = Message::from_vec(request).ok()?;
    let query = message.queries.first()?.clone();
    asked.lock().unwrap().push(Asked {
        name: query.name().clone(),
        kind: query.query_type(),
        signed: message.signature().is_some(),
        tcp,
        at: Instant::now(),
    });
    let mut reply = Message::response(message.metadata.id, OpCode::Query);
    reply.metadata.message_type = MessageType::Response;
    reply.add_query(query.clone());
    match query.query_type() {
        RecordType::SOA => {
            reply.metadata.authoritative = true;
            reply.add_answer(soa(query.name(), script));
            let mut bytes = reply.to_vec().ok()?;
            if let Some(key) = &script.sign_with {
                sign(&mut bytes, &message, key)?;
            }
            Some(bytes)
        }
        RecordType::AXFR => match script.axfr {
            Axfr::UnsignedRefused => {
                reply.metadata.response_code = ResponseCode::Refused;
                reply.to_vec().ok()
            }
            Axfr::Close => None,
        },
        _ => {
            reply.metadata.response_code = ResponseCode::Refused;
            reply.to_vec().ok()
        }
    }
}

fn soa(name: &Name, script: &Script) -> Record {
    let serial = script
        .serials
        .iter()
        .find(|(zone, _)| zone == name)
        .map_or(1, |(_, serial)| *serial);
    let soa = SOA::new(
        name.clone(),
        name.clone(),
        serial,
        script.refresh,
        script.retry,
        script.expire,
        60,
    );
    Record::from_rdata(name.clone(), 60, RData::SOA(soa))
}

/// Signs `answer` as the response to the signed `request` (RFC 8945 5.3).
fn sign(answer: &mut Vec<u8>, request: &Message, key: &TsigKey) -> Option<()> {
    let mac = request.signature()?.data.mac.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let context = TSigResponseContext::new(request.metadata.id, now, key.signer(), mac, None);
    let tsig = context.sign(answer).ok()?;
    let bytes = tsig.to_bytes().ok()?;
    let additionals = u16::from_be_bytes([answer[10], answer[11]]) + 1;
    answer[10..12].copy_from_slice(&additionals.to_be_bytes());
    answer.extend_from_slice(&bytes);
    Some(())
}
