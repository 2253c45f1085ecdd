//! Authoritative answers are right where Knot DNS, the reference, answers: certzone and
//! knotd serve the same zone files and are asked the same questions -- every owner name
//! and names derived from it (children, grandchildren, siblings, wildcard matches, empty
//! non-terminals, letter-case variants), for many types, over UDP without EDNS, with EDNS,
//! with DNSSEC OK, and over TCP. Rcode, header flags, the question, EDNS and every section
//! (as sets of record sets, TTLs included) must be the same, except where [`allowed`]
//! names a legitimate choice the RFCs leave open. certzone serves with prepared answers
//! on and is asked each datagram question twice, so the second, prepared answer is
//! compared too, and must equal the first byte for byte.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    path::PathBuf,
    time::Duration,
};

use hickory_proto::op::Message;

use crate::common::{self, Node, knot::Knot, repo};

/// Types asked at every name: the common ones, those with special rules (DS, ANY,
/// RRSIG, NSEC, DNAME, CNAME), and types only some zones hold.
const TYPES: &[u16] = &[
    1, 2, 5, 6, 12, 15, 16, 17, 28, 33, 35, 37, 39, 43, 46, 47, 52, 64, 65, 255, 257, 65280,
];

/// How a question is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// UDP, no EDNS (512 bytes), RD clear.
    Udp,
    /// UDP, EDNS with 1232 bytes, RD set.
    UdpEdns,
    /// UDP, EDNS offering 4096 bytes with DNSSEC OK, CD set.
    UdpDnssec,
    /// TCP, EDNS with DNSSEC OK.
    Tcp,
}

const VARIANTS: [Variant; 4] = [
    Variant::Udp,
    Variant::UdpEdns,
    Variant::UdpDnssec,
    Variant::Tcp,
];

#[test]
fn answers_match_knot_on_every_question() {
    let _gate = common::gate();
    let diff = repo().join("tests/zones/differential.zone");
    let child = repo().join("tests/zones/child.diff.test.zone");
    let rounds: [Vec<(&str, PathBuf)>; 2] = [
        vec![
            ("diff.test.", diff),
            ("child.diff.test.", child),
            ("example.test.", repo().join("zones/example.test.zone")),
            ("fast.test.", repo().join("tests/zones/fast-path.zone")),
        ],
        // The docker scenarios' zone has the quick start's name: a round of its own.
        vec![(
            "example.test.",
            repo().join("tests/docker/example.test.zone"),
        )],
    ];
    let mut total = Tally::default();
    for (round, zones) in rounds.iter().enumerate() {
        let tally = compare(round, zones);
        println!(
            "round {round}: {} questions, {} answers compared, {} allowed differences, {} differences",
            tally.questions,
            tally.compared,
            tally.allowed,
            tally.differences.len()
        );
        total.add(tally);
    }
    println!(
        "differential test: {} questions ({} answers compared) over UDP and TCP; {} allowed differences; {} differences",
        total.questions,
        total.compared,
        total.allowed,
        total.differences.len()
    );
    for (reason, count) in &total.reasons {
        println!("  allowed {count} times: {reason}");
    }
    for difference in total.differences.iter().take(40) {
        println!("{difference}\n");
    }
    assert!(
        total.questions >= 10_000,
        "only {} questions",
        total.questions
    );
    assert!(
        total.differences.is_empty(),
        "{} answers differ from Knot's (the first are printed above)",
        total.differences.len()
    );
}

#[derive(Default)]
struct Tally {
    questions: usize,
    compared: usize,
    allowed: usize,
    reasons: BTreeMap<&'static str, usize>,
    differences: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Self) {
        self.questions += other.questions;
        self.compared += other.compared;
        self.allowed += other.allowed;
        for (reason, count) in other.reasons {
            *self.reasons.entry(reason).or_default() += count;
        }
        self.differences.extend(other.differences);
    }
}

/// Serves `zones` from both servers and asks every question of them.
fn compare(round: usize, zones: &[(&str, PathBuf)]) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let knot_addr: SocketAddr = format!("127.0.30.{}:5300", 2 * round + 2).parse().unwrap();
    let ours_addr: SocketAddr = format!("127.0.30.{}:5300", 2 * round + 1).parse().unwrap();
    let knot = Knot::start(dir.path(), knot_addr, zones);
    let mut config = format!(
        "state-dir = \"state\"\n[listen]\nudp = [\"{ours_addr}\"]\ntcp = [\"{ours_addr}\"]\n"
    );
    for (origin, file) in zones {
        config.push_str(&format!(
            "[[zone]]\nname = \"{origin}\"\nfile = \"{}\"\n",
            file.display()
        ));
    }
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config).unwrap();
    let _node = Node::start(&path);

    let questions = questions(&knot, zones);
    let odd = odd_queries(zones[0].0);
    let mut tally = Tally {
        questions: questions.len() * VARIANTS.len() + odd.len() * 2 - 2,
        ..Tally::default()
    };
    ask_odd(&odd, knot_addr, ours_addr, &mut tally);
    // A few clients at once: the servers answer in well under a millisecond.
    let chunks: Vec<_> = questions.chunks(questions.len().div_ceil(4)).collect();
    let results: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || ask_all(chunk, knot_addr, ours_addr)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for result in results {
        tally.compared += result.compared;
        tally.allowed += result.allowed;
        for (reason, count) in result.reasons {
            *tally.reasons.entry(reason).or_default() += count;
        }
        tally.differences.extend(result.differences);
    }
    drop(knot);
    tally
}

fn ask_all(questions: &[(String, u16, u16)], knot: SocketAddr, ours: SocketAddr) -> Tally {
    let mut client = Client::new();
    let mut tally = Tally::default();
    for (name, qtype, qclass) in questions {
        for variant in VARIANTS {
            let query = query(name, *qtype, *qclass, variant);
            let theirs = client.ask(knot, &query, variant);
            let first = client.ask(ours, &query, variant);
            let mut ours_answers = vec![first.clone()];
            if variant != Variant::Tcp {
                // The second time, from prepared bytes: the very same answer.
                let second = client.ask(ours, &query, variant);
                if second.get(2..) != first.get(2..) {
                    tally.differences.push(format!(
                        "{name} {qtype} class {qclass} {variant:?}: the prepared answer differs from the first\n  first:  {first:?}\n  second: {second:?}"
                    ));
                }
                ours_answers.push(second);
            }
            let theirs = normalise(&theirs);
            for ours in ours_answers {
                tally.compared += 1;
                let ours = normalise(&ours);
                if ours == theirs {
                    continue;
                }
                match allowed(&query, &theirs, &ours) {
                    Some(reason) => {
                        tally.allowed += 1;
                        *tally.reasons.entry(reason).or_default() += 1;
                    }
                    None => tally.differences.push(format!(
                        "{name} type {qtype} class {qclass} {variant:?}\n  knot:     {theirs:?}\n  certzone: {ours:?}"
                    )),
                }
            }
        }
    }
    tally
}

/// Queries a resolver should not send but a server must answer sensibly: other opcodes,
/// an EDNS version it does not know, malformed sections, transfers over UDP.
fn odd_queries(zone: &str) -> Vec<(&'static str, Vec<u8>)> {
    let plain = query(zone, 6, CLASS_IN, Variant::Udp);
    let edns = query(zone, 6, CLASS_IN, Variant::UdpEdns);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut q = plain.clone();
        f(&mut q);
        q
    };
    let opcode = |code: u8| with(&|q: &mut Vec<u8>| q[2] = code << 3);
    let mut version_1 = edns.clone();
    let opt_version = version_1.len() - 5;
    version_1[opt_version] = 1;
    let mut small_payload = edns.clone();
    let payload_at = small_payload.len() - 8;
    small_payload[payload_at..payload_at + 2].copy_from_slice(&100u16.to_be_bytes());
    let mut option = edns.clone();
    let rdlength_at = option.len() - 2;
    option[rdlength_at..].copy_from_slice(&[0, 6]);
    option.extend_from_slice(&[0xfd, 0xe9, 0, 2, 0xab, 0xcd]);
    let mut two_opts = edns.clone();
    two_opts[11] = 2;
    two_opts.extend_from_slice(&edns[edns.len() - 11..]);
    vec![
        ("opcode IQUERY", opcode(1)),
        ("opcode STATUS", opcode(2)),
        ("opcode UPDATE", opcode(5)),
        ("opcode 7", opcode(7)),
        (
            "no question",
            with(&|q| {
                q[5] = 0;
                q.truncate(12);
            }),
        ),
        (
            "two questions",
            with(&|q| {
                q[5] = 2;
                let question = q[12..].to_vec();
                q.extend_from_slice(&question);
            }),
        ),
        ("a cut-off question", with(&|q| q.truncate(q.len() - 2))),
        ("bytes after the question", with(&|q| q.push(0))),
        ("type 0", query(zone, 0, CLASS_IN, Variant::Udp)),
        (
            "AXFR over UDP",
            query(zone, 252, CLASS_IN, Variant::UdpEdns),
        ),
        ("IXFR over UDP", query(zone, 251, CLASS_IN, Variant::Udp)),
        ("EDNS version 1", version_1),
        ("EDNS payload 100", small_payload),
        ("an unknown EDNS option", option),
        ("two OPT records", two_opts),
    ]
}

fn ask_odd(odd: &[(&'static str, Vec<u8>)], knot: SocketAddr, ours: SocketAddr, tally: &mut Tally) {
    let mut client = Client::new();
    for (what, query) in odd {
        for variant in [Variant::Udp, Variant::Tcp] {
            if [251, 252].contains(&query_type(query)) && variant == Variant::Tcp {
                // Over TCP these are transfers: tests/interop.rs compares them.
                continue;
            }
            let answer = |client: &mut Client, server| {
                client
                    .try_ask(server, query, variant, 1)
                    .map_or_else(no_answer, |bytes| normalise(&bytes))
            };
            let theirs = answer(&mut client, knot);
            let ours = answer(&mut client, ours);
            tally.compared += 1;
            if ours == theirs {
                continue;
            }
            match allowed(query, &theirs, &ours) {
                Some(reason) => {
                    tally.allowed += 1;
                    *tally.reasons.entry(reason).or_default() += 1;
                }
                None => tally.differences.push(format!(
                    "{what} {variant:?}\n  knot:     {theirs:?}\n  certzone: {ours:?}"
                )),
            }
        }
    }
}

/// The type of a query's first question (0 when there is none).
fn query_type(query: &[u8]) -> u16 {
    let mut at = 12;
    while let Some(&len) = query.get(at) {
        if len == 0 {
            return query
                .get(at + 1..at + 3)
                .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
        }
        at += 1 + usize::from(len);
    }
    0
}

/// Differences that are choices the RFCs leave to the server, each with its reason.
/// Everything else must match Knot exactly.
fn allowed(query: &[u8], knot: &Answer, ours: &Answer) -> Option<&'static str> {
    let header = |a: &Answer| (a.rcode, a.flags.clone(), a.question.clone(), a.edns.clone());
    let opcode = query.get(2).map_or(0, |b| (b >> 3) & 0x0F);
    let qtype = query_type(query);
    if qtype == 255
        && header(knot) == header(ours)
        && knot.answer.len() == 1
        && ours.answer.len() == 1
    {
        return Some("ANY: one record set, which one is the server's choice (RFC 8482 4.1)");
    }
    if knot.question == NO_ANSWER && [FORMERR, NOTIMP].contains(&ours.rcode) {
        return Some(
            "a malformed query (or type 0 over TCP): Knot sends nothing; certzone FORMERR as BIND, \
             NOTIMP for type 0 as Knot over UDP (RFC 1035 4.1.1)",
        );
    }
    if opcode == 5 && ours.rcode == REFUSED && knot.rcode == NOTAUTH {
        return Some("UPDATE is not served: REFUSED as BIND, Knot says NOTAUTH (RFC 2136 3.1)");
    }
    if [251, 252].contains(&qtype) && ours.rcode == REFUSED && ours.question == knot.question {
        return Some(
            "zone transfers over UDP: REFUSED; Knot NOTIMP, BIND FORMERR (RFC 5936 4.2 leaves it open)",
        );
    }
    None
}

const FORMERR: u16 = 1;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const NOTAUTH: u16 = 9;

/// What is compared of an answer: every field but the id, sections as sets of record
/// sets with names lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    rcode: u16,
    flags: String,
    question: String,
    answer: BTreeSet<String>,
    authority: BTreeSet<String>,
    additional: BTreeSet<String>,
    edns: Option<String>,
}

fn normalise(bytes: &[u8]) -> Answer {
    let flag_names = [
        (2, 0x04, "aa"),
        (2, 0x02, "tc"),
        (2, 0x01, "rd"),
        (3, 0x80, "ra"),
        (3, 0x20, "ad"),
        (3, 0x10, "cd"),
    ];
    let flags: Vec<&str> = flag_names
        .iter()
        .filter(|(at, bit, _)| bytes.get(*at).is_some_and(|b| b & bit != 0))
        .map(|(_, _, name)| *name)
        .collect();
    let message = match Message::from_vec(bytes) {
        Ok(message) => message,
        Err(e) => {
            return Answer {
                rcode: 0,
                flags: flags.join(" "),
                question: format!("unreadable: {e}"),
                answer: BTreeSet::new(),
                authority: BTreeSet::new(),
                additional: BTreeSet::new(),
                edns: None,
            };
        }
    };
    let high = message
        .edns
        .as_ref()
        .map_or(0, |e| u16::from(e.rcode_high()));
    Answer {
        rcode: high << 4 | u16::from(bytes[3] & 0x0F),
        flags: flags.join(" "),
        question: message
            .queries
            .iter()
            .map(|q| {
                format!(
                    "{} {} {}",
                    q.name().to_lowercase(),
                    q.query_type(),
                    q.query_class()
                )
            })
            .collect(),
        answer: sets(&message.answers),
        authority: sets(&message.authorities),
        additional: sets(&message.additionals),
        edns: message.edns.as_ref().map(|e| {
            format!(
                "version {} do {} payload {}",
                e.version(),
                e.flags().dnssec_ok,
                e.max_payload()
            )
        }),
    }
}

/// What [`normalise`] makes of silence.
fn no_answer() -> Answer {
    Answer {
        rcode: 0,
        flags: String::new(),
        question: NO_ANSWER.to_string(),
        answer: BTreeSet::new(),
        authority: BTreeSet::new(),
        additional: BTreeSet::new(),
        edns: None,
    }
}

const NO_ANSWER: &str = "no answer";

/// Record sets as text: owner, type, class, the TTLs and the sorted data.
fn sets(records: &[hickory_proto::rr::Record]) -> BTreeSet<String> {
    let mut grouped: BTreeMap<String, (BTreeSet<u32>, BTreeSet<String>)> = BTreeMap::new();
    for record in records {
        let key = format!(
            "{} {} {}",
            record.name.to_lowercase(),
            record.record_type(),
            record.dns_class
        );
        let entry = grouped.entry(key).or_default();
        entry.0.insert(record.ttl);
        entry.1.insert(record.data.to_string().to_lowercase());
    }
    grouped
        .into_iter()
        .map(|(key, (ttls, data))| format!("{key} ttl {ttls:?} {data:?}"))
        .collect()
}

/// Every name to ask about: owners from Knot's transfer of each zone, and names derived
/// from them; each with every type in [`TYPES`].
fn questions(knot: &Knot, zones: &[(&str, PathBuf)]) -> Vec<(String, u16, u16)> {
    let mut names = BTreeSet::new();
    for (origin, _) in zones {
        let origin = origin.to_lowercase();
        for line in knot.transfer(&origin) {
            let owner = line.split_whitespace().next().unwrap().to_string();
            for name in derived(&owner, &origin) {
                names.insert(name);
            }
        }
        names.insert(format!("not-there.{origin}"));
    }
    names.insert("outside.invalid.".to_string());
    let mut questions = Vec::new();
    for name in &names {
        for &qtype in TYPES {
            questions.push((name.clone(), qtype, CLASS_IN));
        }
        // Other classes: CH, HS and NONE are REFUSED; ANY is answered as IN.
        for qclass in [3, 4, 254, 255] {
            for qtype in [1, 6] {
                questions.push((name.clone(), qtype, qclass));
            }
        }
    }
    questions
}

/// `owner` and the names a resolver could ask near it: a child and a grandchild, a
/// sibling, the same name in mixed case, every ancestor down to the zone's origin (empty
/// non-terminals among them), and for a wildcard, names it matches.
fn derived(owner: &str, origin: &str) -> Vec<String> {
    let owner = owner.to_lowercase();
    let mut names = vec![
        owner.clone(),
        format!("child.{owner}"),
        format!("a.b.{owner}"),
        mixed_case(&owner),
    ];
    if owner != origin {
        let (first, rest) = owner.split_once('.').unwrap();
        names.push(format!("{first}-sibling.{rest}"));
        if first == "*" {
            names.push(format!("match.{rest}"));
            names.push(format!("a.b.{rest}"));
            names.push(format!("MaTcH.{}", mixed_case(rest)));
        }
        let mut ancestor = rest;
        while ancestor.len() > origin.len() {
            names.push(ancestor.to_string());
            ancestor = ancestor.split_once('.').map_or(origin, |(_, r)| r);
        }
    }
    names
}

fn mixed_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

const CLASS_IN: u16 = 1;

/// A query for `name` (presentation form, case kept), `qtype` and `qclass`, id 0.
fn query(name: &str, qtype: u16, qclass: u16, variant: Variant) -> Vec<u8> {
    let flags: [u8; 2] = match variant {
        Variant::Udp | Variant::Tcp => [0x00, 0x00],
        Variant::UdpEdns => [0x01, 0x00],
        Variant::UdpDnssec => [0x00, 0x10],
    };
    let edns = variant != Variant::Udp;
    let mut query = vec![
        0,
        0,
        flags[0],
        flags[1],
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(edns),
    ];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.push(0);
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&qclass.to_be_bytes());
    if edns {
        let (payload, dnssec_ok): (u16, u8) = match variant {
            Variant::UdpDnssec => (4096, 0x80),
            Variant::Tcp => (1232, 0x80),
            _ => (1232, 0),
        };
        query.extend_from_slice(&[0, 0, 41]);
        query.extend_from_slice(&payload.to_be_bytes());
        query.extend_from_slice(&[0, 0, dnssec_ok, 0, 0, 0]);
    }
    query
}

/// One UDP socket and one TCP connection per server, reused for every question.
struct Client {
    udp: UdpSocket,
    tcp: BTreeMap<SocketAddr, TcpStream>,
    next_id: u16,
}

impl Client {
    fn new() -> Self {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Self {
            udp,
            tcp: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// The answer of `server` to `query`, id patched in; panics after a retry fails.
    fn ask(&mut self, server: SocketAddr, query: &[u8], variant: Variant) -> Vec<u8> {
        self.try_ask(server, query, variant, 2)
            .unwrap_or_else(|| panic!("{server} did not answer {query:?} (2 tries, 2 s each)"))
    }

    /// The answer of `server` to `query` within `tries` of 2 s each, if any.
    fn try_ask(
        &mut self,
        server: SocketAddr,
        query: &[u8],
        variant: Variant,
        tries: usize,
    ) -> Option<Vec<u8>> {
        let mut query = query.to_vec();
        self.next_id = self.next_id.wrapping_add(1);
        if query.len() >= 2 {
            query[..2].copy_from_slice(&self.next_id.to_be_bytes());
        }
        for _ in 0..tries {
            let answer = match variant {
                Variant::Tcp => self.ask_tcp(server, &query),
                _ => self.ask_udp(server, &query),
            };
            if answer.is_some() {
                return answer;
            }
            self.tcp.remove(&server);
        }
        None
    }

    fn ask_udp(&self, server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
        self.udp.send_to(query, server).ok()?;
        let mut buf = [0u8; 65535];
        loop {
            let (len, from) = self.udp.recv_from(&mut buf).ok()?;
            if from == server && buf[..2] == query[..2] {
                return Some(buf[..len].to_vec());
            }
        }
    }

    fn ask_tcp(&mut self, server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
        let stream = match self.tcp.entry(server) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).ok()?;
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                stream.set_nodelay(true).ok()?;
                entry.insert(stream)
            }
        };
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        stream.write_all(&framed).ok()?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).ok()?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer).ok()?;
        Some(answer)
    }
}
