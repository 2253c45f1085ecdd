//! The fast path: prepared answers (src/prepared.rs) must be byte for byte what the
//! full path sends, and every zone change must reach the very next query.
//!
//! In process, one `Handler` with prepared answers and one without share a zone; between
//! real nodes, one runs with `[listen] prepared-answers = false`. Both get every name and
//! type of tests/zones/fast-path.zone and thousands of random queries (random letter case,
//! types, flags, EDNS sizes, DO bit, options, with and without EDNS), most of them asked
//! again so that prepared answers are hit with new ids and letter case. The random seed is
//! printed with any failure (set FAST_PATH_SEED to replay one). Each test has its own
//! 127.0.10.x address.

use std::{
    net::{SocketAddr, UdpSocket},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::common::{self, Node, Scratch, cluster::Cluster, kdig, wait_for};
use certzone::{
    config::ZoneConfig,
    dns::server::{Handler, Transport},
    zones::Zones,
};
use hickory_proto::rr::{Name, RData, Record, rdata};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

const ORIGIN: &str = "fast.test.";
const PORT: u16 = 5300;

/// Random queries per comparison (each transport), on top of every name and type.
const RANDOM_QUERIES: usize = 4000;

/// The test zone, and two handlers on it: with prepared answers and without. The state
/// directory (only read, for served serials) lives as long as the returned guard.
fn handlers() -> (tempfile::TempDir, Arc<Zones>, Handler, Handler) {
    let state = tempfile::tempdir().unwrap();
    let zones = Arc::new(
        Zones::load(&[zone_config(&zone_file())], state.path()).expect("the test zone loads"),
    );
    let fast = Handler::new(zones.clone(), None, None);
    let full = Handler::new(zones.clone(), None, None).with_prepared_answers(false);
    (state, zones, fast, full)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_answers_are_the_full_paths_bytes_in_process() {
    let _gate = common::gate();
    let (_state, _zones, fast, full) = handlers();
    let src: SocketAddr = "127.0.10.250:5353".parse().unwrap();
    let mut queries = Queries::new();
    let mut hits = 0;
    let mut out = Vec::new();
    for transport in [Transport::Udp, Transport::Tcp] {
        for query in queries.all(RANDOM_QUERIES) {
            let expected = full.answer(&query, src, transport).await;
            if fast.answer_prepared(&query, transport, &mut out) {
                hits += 1;
                assert_eq!(Some(&out), expected.as_ref(), "{}", queries.explain(&query));
            }
            let got = fast.answer(&query, src, transport).await;
            assert_eq!(got, expected, "{}", queries.explain(&query));
        }
    }
    // Most random queries repeat an earlier question: the comparison covers hits.
    assert!(
        hits > RANDOM_QUERIES / 2,
        "only {hits} prepared answers were hit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_records_and_generated_zones_are_seen_by_the_next_query() {
    let _gate = common::gate();
    let (_state, zones, fast, full) = handlers();
    let src: SocketAddr = "127.0.10.250:5353".parse().unwrap();
    let ask = async |name: &str, rtype: u16| {
        let query = raw_query(7, name, rtype);
        // Twice, so the second is answered from what the first prepared.
        fast.answer(&query, src, Transport::Udp).await;
        let got = fast.answer(&query, src, Transport::Udp).await.unwrap();
        let expected = full.answer(&query, src, Transport::Udp).await.unwrap();
        assert_eq!(got, expected, "{name} {rtype}");
        client_parse(&got)
    };
    let owner = Name::from_ascii("_acme-challenge.fast.test.").unwrap();
    assert!(
        ask("_acme-challenge.fast.test.", 16)
            .await
            .answers
            .is_empty()
    );
    assert!(zones.set_txt(&owner, &["token-1".to_string()]).await);
    assert_eq!(
        txt(&ask("_acme-challenge.fast.test.", 16).await.answers),
        ["token-1"]
    );
    assert!(zones.set_txt(&owner, &["token-2".to_string()]).await);
    assert_eq!(
        txt(&ask("_acme-challenge.fast.test.", 16).await.answers),
        ["token-2"]
    );
    assert!(zones.set_txt(&owner, &[]).await);
    assert!(
        ask("_acme-challenge.fast.test.", 16)
            .await
            .answers
            .is_empty()
    );

    // The certificate zone and a worker's transferred zones are swapped in whole.
    let generated = Name::from_ascii("gen.fast.test.").unwrap();
    for address in [[192, 0, 2, 1], [192, 0, 2, 2]] {
        zones
            .replace_generated(&generated, generated_zone(&generated, address))
            .unwrap();
        let answer = ask("www.gen.fast.test.", 1).await;
        assert_eq!(answer.answers.len(), 1);
        assert_eq!(
            answer.answers[0].data,
            RData::A(rdata::A::from(std::net::Ipv4Addr::from(address)))
        );
    }
}

#[test]
fn two_nodes_answer_alike_over_udp_and_tcp() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let (fast, full) = fast_and_full(&scratch, "127.0.10.1", "127.0.10.2");
    let mut queries = Queries::new();
    let (fast_udp, full_udp) = (udp_client(), udp_client());
    let (mut fast_tcp, mut full_tcp) = (
        common::client::TcpClient::connect(addr("127.0.10.1")),
        common::client::TcpClient::connect(addr("127.0.10.2")),
    );
    for query in queries.all(RANDOM_QUERIES) {
        let expected = exchange_udp(&full_udp, addr("127.0.10.2"), &query);
        let got = exchange_udp(&fast_udp, addr("127.0.10.1"), &query);
        assert_eq!(got, expected, "UDP {}", queries.explain(&query));
        let expected = full_tcp.exchange(&query).unwrap();
        let got = fast_tcp.exchange(&query).unwrap();
        assert_eq!(got, expected, "TCP {}", queries.explain(&query));
    }
    fast.stop();
    full.stop();
}

/// Queries sent in bursts, so the node reads many per system call and answers a mix of
/// prepared and new questions together: each is answered once, with the full path's bytes.
#[test]
fn bursts_over_udp_get_every_answer_once_and_right() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let (fast, full) = fast_and_full(&scratch, "127.0.10.8", "127.0.10.9");
    let mut queries = Queries::new();
    let mut all = queries.all(RANDOM_QUERIES);
    all.truncate(usize::from(u16::MAX));
    // Each query gets its position as id, so answers can be told apart however they come.
    for (index, query) in all.iter_mut().enumerate() {
        query[..2].copy_from_slice(&(index as u16).to_be_bytes());
    }
    let full_udp = udp_client();
    let expected: Vec<Vec<u8>> = all
        .iter()
        .map(|q| exchange_udp(&full_udp, addr("127.0.10.9"), q))
        .collect();
    let socket = udp_client();
    let mut buf = vec![0u8; 65535];
    // 32 at a time: as many as the node reads at once, and under the socket buffers'
    // default sizes even for the largest answers, so nothing is dropped on the way.
    for (chunk_index, chunk) in all.chunks(32).enumerate() {
        for query in chunk {
            socket.send_to(query, addr("127.0.10.8")).unwrap();
        }
        let mut answered = vec![false; chunk.len()];
        let deadline = Instant::now() + Duration::from_secs(5);
        while answered.contains(&false) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "a burst went unanswered within 5 s: {answered:?}"
            );
            socket.set_read_timeout(Some(left)).unwrap();
            let Ok((len, _)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let index = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            let slot = index
                .checked_sub(chunk_index * 32)
                .filter(|s| *s < chunk.len());
            let slot =
                slot.unwrap_or_else(|| panic!("an answer with id {index} outside the burst"));
            assert!(!answered[slot], "two answers to query {index}");
            answered[slot] = true;
            assert_eq!(
                buf[..len],
                expected[index],
                "UDP burst {}",
                queries.explain(&all[index])
            );
        }
    }
    fast.stop();
    full.stop();
}

#[test]
fn a_reloaded_record_reaches_the_very_next_udp_query() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let node = start(&scratch, "node", "127.0.10.3", "", "");
    let ask = |name: &str| {
        kdig(&["@127.0.10.3", "-p", "5300", "+short", name, "A"])
            .trim()
            .to_string()
    };
    for _ in 0..3 {
        assert_eq!(ask("www.fast.test"), "192.0.2.10\n192.0.2.11");
    }
    // The serial stays: what was prepared must go with any reload, not with serials.
    let zone = scratch.path("node.zone");
    let text = std::fs::read_to_string(&zone).unwrap();
    let changed = text.replace("IN A    192.0.2.11\n", "IN A    192.0.2.111\n");
    assert_ne!(text, changed, "the test changes www's second address");
    std::fs::write(&zone, changed).unwrap();
    node.signal("HUP");
    node.wait_log("zones re-read", Duration::from_secs(10));
    assert_eq!(ask("WwW.fast.TEST"), "192.0.2.10\n192.0.2.111");
    node.stop();
}

#[test]
fn forwarded_answers_are_never_prepared() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    // The upstream is another node, serving the example zone on its own address.
    let upstream_config = scratch.write(
        "upstream.toml",
        "state-dir = \"upstream-state\"\n[listen]\nudp = [\"127.0.10.4:5300\"]\n\
         tcp = [\"127.0.10.4:5300\"]\n[[zone]]\nname = \"example.test.\"\n\
         file = \"example.test.zone\"\n",
    );
    let upstream = Node::start(&upstream_config);
    let forward = "[forward]\n[[forward.upstream]]\naddress = \"127.0.10.4:5300\"";
    let node = start(&scratch, "forwarder", "127.0.10.5", "", forward);
    let ask = || {
        kdig(&[
            "@127.0.10.5",
            "-p",
            "5300",
            "+short",
            "www.example.test",
            "A",
        ])
        .trim()
        .to_string()
    };
    assert_eq!(ask(), "192.0.2.10");
    assert_eq!(ask(), "192.0.2.10");
    let zone = scratch.path("example.test.zone");
    let text = std::fs::read_to_string(&zone)
        .unwrap()
        .replace("192.0.2.10", "192.0.2.110");
    std::fs::write(&zone, text).unwrap();
    upstream.signal("HUP");
    upstream.wait_log("zones re-read", Duration::from_secs(10));
    assert_eq!(ask(), "192.0.2.110");
    node.stop();
    upstream.stop();
}

#[test]
fn a_transferred_zone_change_reaches_the_very_next_udp_query() {
    let _gate = common::gate();
    let cluster = Cluster::new("127.0.10.6", &["127.0.10.7"], &[0]);
    let master = cluster.start_master();
    let worker = cluster.start_worker(0);
    let port = common::cluster::DNS.to_string();
    let ask = || {
        kdig(&[
            "@127.0.10.7",
            "-p",
            &port,
            "+short",
            "www.example.test",
            "A",
        ])
        .trim()
        .to_string()
    };
    wait_for(
        "the worker to serve example.test",
        Duration::from_secs(10),
        || (ask() == "192.0.2.10").then_some(()),
    );
    assert_eq!(ask(), "192.0.2.10");
    let zone = cluster.scratch.path("example.test.zone");
    let text = std::fs::read_to_string(&zone)
        .unwrap()
        .replace("2026112201 ; serial", "2026112202 ; serial")
        .replace("192.0.2.10", "192.0.2.110");
    std::fs::write(&zone, text).unwrap();
    master.signal("HUP");
    wait_for(
        "the worker to log the transfer of serial 2026112202",
        Duration::from_secs(10),
        || {
            worker
                .stderr()
                .lines()
                .any(|l| l.contains("zone transferred") && l.contains("serial=2026112202"))
                .then_some(())
        },
    );
    assert_eq!(ask(), "192.0.2.110");
    worker.stop();
    master.stop();
}

// --- nodes ---

/// A node named `name` on `ip` serving its own copy of the test zone over UDP and TCP;
/// `listen` adds to `[listen]`, `tail` to the end of the file.
fn start(scratch: &Scratch, name: &str, ip: &str, listen: &str, tail: &str) -> Node {
    std::fs::copy(zone_file(), scratch.path(&format!("{name}.zone"))).unwrap();
    let config = scratch.write(
        &format!("{name}.toml"),
        &format!(
            "state-dir = \"{name}-state\"\n[listen]\nudp = [\"{ip}:{PORT}\"]\n\
             tcp = [\"{ip}:{PORT}\"]\n{listen}\n[[zone]]\nname = \"{ORIGIN}\"\n\
             file = \"{name}.zone\"\n{tail}\n"
        ),
    );
    Node::start(&config)
}

/// A node with prepared answers and one without, on the test zone.
fn fast_and_full(scratch: &Scratch, fast_ip: &str, full_ip: &str) -> (Node, Node) {
    let fast = start(scratch, "fast", fast_ip, "", "");
    let full = start(scratch, "full", full_ip, "prepared-answers = false", "");
    (fast, full)
}

fn addr(ip: &str) -> SocketAddr {
    format!("{ip}:{PORT}").parse().unwrap()
}

fn udp_client() -> UdpSocket {
    UdpSocket::bind("127.0.10.250:0").unwrap()
}

/// One datagram out, the answer with the same id back within 5 s.
fn exchange_udp(socket: &UdpSocket, to: SocketAddr, query: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    socket.send_to(query, to).unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let (len, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no UDP answer from {to} within 5 s: {e}"));
        if from == to && buf[..2] == query[..2] {
            return buf[..len].to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "no UDP answer with id {:02x?} from {to} within 5 s",
            &query[..2]
        );
    }
}

// --- the zone and the queries ---

fn zone_file() -> std::path::PathBuf {
    common::repo().join("tests/zones/fast-path.zone")
}

fn zone_config(file: &Path) -> ZoneConfig {
    ZoneConfig {
        origin: Name::from_ascii(ORIGIN).unwrap(),
        file: file.to_path_buf(),
    }
}

fn generated_zone(origin: &Name, address: [u8; 4]) -> Vec<Record> {
    let soa = rdata::SOA::new(
        Name::from_ascii("ns1.fast.test.").unwrap(),
        Name::from_ascii("hostmaster.fast.test.").unwrap(),
        u32::from(address[3]),
        300,
        60,
        600,
        60,
    );
    vec![
        Record::from_rdata(origin.clone(), 60, RData::SOA(soa)),
        Record::from_rdata(
            Name::from_ascii("www")
                .unwrap()
                .append_domain(origin)
                .unwrap(),
            60,
            RData::A(rdata::A::from(std::net::Ipv4Addr::from(address))),
        ),
    ]
}

fn client_parse(bytes: &[u8]) -> hickory_proto::op::Message {
    common::client::parse(bytes)
}

fn txt(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.to_string()),
            _ => None,
        })
        .collect()
}

/// Every owner name in the zone file, then names it does not hold: missing ones, under the
/// wildcard, below the delegation, an empty non-terminal, outside the zone.
fn names() -> Vec<String> {
    let text = std::fs::read_to_string(zone_file()).unwrap();
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with([' ', ';', '$']) && !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(|owner| match owner {
            "@" => ORIGIN.to_string(),
            o => format!("{o}.{ORIGIN}"),
        })
        .collect();
    names.dedup();
    for extra in [
        "missing",
        "a.wild",
        "b.c.wild",
        "deep",
        "nonterminal.deep",
        "below.sub",
        "host99",
    ] {
        names.push(format!("{extra}.{ORIGIN}"));
    }
    names.extend(["elsewhere.test.".into(), "test.".into(), ".".into()]);
    names
}

/// Types asked: what the zone has, what it has not, ANY, the transfer types.
const TYPES: [u16; 18] = [
    1, 2, 5, 6, 12, 15, 16, 28, 33, 37, 43, 52, 65, 257, 255, 99, 252, 251,
];

/// One question and how it is asked; the id and letter case are drawn per query.
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    qtype: u16,
    class: u16,
    /// Header bytes 2 and 3: RD, AD, CD and the Z bit.
    flags: [u8; 2],
    edns: Option<Edns>,
}

#[derive(Clone, Debug)]
struct Edns {
    payload: u16,
    /// Extended rcode, version, DO and the other flag bits.
    ttl: [u8; 4],
    /// Option codes; their contents are drawn per query (a cookie differs every time).
    options: Vec<u16>,
}

struct Queries {
    seed: u64,
    rng: ChaCha8Rng,
    names: Vec<String>,
}

impl Queries {
    fn new() -> Self {
        let seed = std::env::var("FAST_PATH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| u64::from(rand_core::OsRng.next_u32()));
        Self {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            names: names(),
        }
    }

    /// Every name with every type (with and without EDNS), then `random` queries, most of
    /// them asking again a question asked before.
    fn all(&mut self, random: usize) -> Vec<Vec<u8>> {
        let mut specs = Vec::new();
        for name in &self.names {
            for qtype in TYPES {
                for edns in [None, Some(plain_edns())] {
                    specs.push(Spec {
                        name: name.clone(),
                        qtype,
                        class: 1,
                        flags: [0x01, 0],
                        edns,
                    });
                }
            }
        }
        let mut asked: Vec<Spec> = Vec::new();
        for _ in 0..random {
            let spec = match self.below(4) {
                0 if !asked.is_empty() => asked[self.below(asked.len())].clone(),
                1 | 2 if !asked.is_empty() => {
                    asked[asked.len() - 1 - self.below(asked.len().min(50))].clone()
                }
                _ => {
                    let spec = self.spec();
                    asked.push(spec.clone());
                    spec
                }
            };
            specs.push(spec);
        }
        specs.iter().map(|spec| self.encode(spec)).collect()
    }

    fn spec(&mut self) -> Spec {
        let pick = self.below(self.names.len());
        let name = self.names[pick].clone();
        let qtype = match self.below(20) {
            0 => self.rng.next_u32() as u16,
            _ => TYPES[self.below(TYPES.len())],
        };
        let class = [1, 1, 1, 1, 1, 1, 3, 255][self.below(8)];
        let flags = [
            (self.below(2) as u8) | [0, 0, 0, 0x02, 0x04][self.below(5)],
            [0, 0x10, 0x20, 0x40][self.below(4)],
        ];
        let edns = (self.below(3) > 0).then(|| {
            let payload = match self.below(10) {
                0 => self.rng.next_u32() as u16,
                i => [0, 1, 511, 512, 513, 1232, 1400, 4096, 65535][i - 1],
            };
            let version = [0, 0, 0, 0, 1][self.below(5)];
            let flags = [0, 0x80][self.below(2)] | [0, 0, 0, 0x01][self.below(4)];
            let options = (0..self.below(3))
                .map(|_| [10, 12, 3, 11, 65001, 8][self.below(6)])
                .collect();
            Edns {
                payload,
                ttl: [[0, 0, 0, 1][self.below(4)], version, flags, 0],
                options,
            }
        });
        Spec {
            name,
            qtype,
            class,
            flags,
            edns,
        }
    }

    /// The query bytes: a random id, each letter of the name in a random case.
    fn encode(&mut self, spec: &Spec) -> Vec<u8> {
        let id = self.rng.next_u32() as u16;
        let name: String = spec
            .name
            .chars()
            .map(|c| match self.below(2) {
                0 => c.to_ascii_uppercase(),
                _ => c.to_ascii_lowercase(),
            })
            .collect();
        let mut query = raw_query(id, &name, spec.qtype);
        query[2..4].copy_from_slice(&spec.flags);
        let at = query.len() - 2;
        query[at..].copy_from_slice(&spec.class.to_be_bytes());
        if let Some(edns) = &spec.edns {
            let mut rdata = Vec::new();
            for code in &edns.options {
                let len = match code {
                    10 => 8,
                    8 => 7,
                    3 => 0,
                    _ => self.below(20),
                };
                let mut data: Vec<u8> = (0..len).map(|_| self.rng.next_u32() as u8).collect();
                if *code == 8 {
                    // Client Subnet: family 1, /24, scope 0, three address bytes.
                    data[..4].copy_from_slice(&[0, 1, 24, 0]);
                }
                rdata.extend_from_slice(&code.to_be_bytes());
                rdata.extend_from_slice(&(len as u16).to_be_bytes());
                rdata.extend_from_slice(&data);
            }
            query[11] = 1;
            query.extend_from_slice(&[0, 0, 41]);
            query.extend_from_slice(&edns.payload.to_be_bytes());
            query.extend_from_slice(&edns.ttl);
            query.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            query.extend_from_slice(&rdata);
        }
        query
    }

    /// What a failure message needs to replay the query.
    fn explain(&self, query: &[u8]) -> String {
        format!(
            "differs for query {query:02x?} (FAST_PATH_SEED={})",
            self.seed
        )
    }

    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u32() as usize) % n
    }
}

/// EDNS as stub resolvers send it: 1232 bytes, DO clear, no options.
fn plain_edns() -> Edns {
    Edns {
        payload: 1232,
        ttl: [0; 4],
        options: Vec::new(),
    }
}

/// A query with RD for `name` (letter case kept) and `qtype` in class IN.
fn raw_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut query = id.to_be_bytes().to_vec();
    query.extend_from_slice(&[0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.push(0);
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&[0, 1]);
    query
}
