//! Internet-facing hardening: what a stranger can make a node do, tried against
//! the real binary on loopback. Responses are never answered; two nodes sent a spoofed
//! response do not bounce it; DoH abuse costs bounded memory; the forwarder serves its
//! allow-list only and caps its work; response rate limiting; a low open-file limit; a
//! stalled CA. Each test has its own 127.0.12.x addresses. The attacks that run for half a
//! minute or more are in `attacks.rs`.

use std::{
    net::{SocketAddr, TcpListener, UdpSocket},
    process::Command,
    time::{Duration, Instant},
};

use crate::common::{self, Node, Scratch, client, dig, kdig, load, node_config, proc, wait_for};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RecordType},
};

const NAME: &str = "ns1.example.test";

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// A response to a query, a NOTIFY response and a bare FORMERR header: all QR=1.
fn responses() -> Vec<(&'static str, Vec<u8>)> {
    let mut answer = client::query(0x1111, "www.example.test", RecordType::A);
    answer[2] |= 0x80;
    let mut notify = Message::response(0x2222, OpCode::Notify);
    notify.metadata.message_type = MessageType::Response;
    notify.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::SOA,
    ));
    let error = vec![0x33, 0x33, 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
    vec![
        ("query response", answer),
        ("NOTIFY response", notify.to_vec().unwrap()),
        ("error response", error),
    ]
}

#[test]
fn responses_get_no_answer_over_udp_tcp_dot_or_doh() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.12.1";
    let node = Node::start(&scratch.write("node.toml", &node_config(ip, "state", "", "")));
    let ca = scratch.local_ca("state");
    let query = client::query(0x4242, "www.example.test", RecordType::A);

    let socket = UdpSocket::bind("127.0.12.250:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for (_, response) in responses() {
        socket.send_to(&response, addr(ip, 5300)).unwrap();
    }
    socket.send_to(&query, addr(ip, 5300)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("the query is answered");
    assert_eq!(
        client::parse(&buf[..n]).metadata.id,
        0x4242,
        "UDP: the first datagram back answers the query"
    );
    assert!(
        socket.recv(&mut buf).is_err(),
        "UDP: nothing else comes back"
    );

    let mut tcp = client::TcpClient::connect(addr(ip, 5300));
    let mut dot = client::DotClient::connect(addr(ip, 8530), &ca, NAME).unwrap();
    for (_, response) in responses() {
        tcp.send(&response).unwrap();
        dot.send(&response).unwrap();
    }
    tcp.send(&query).unwrap();
    dot.send(&query).unwrap();
    for (transport, answer) in [("TCP", tcp.receive()), ("DoT", dot.receive())] {
        let answer = client::parse(&answer.unwrap());
        assert_eq!(
            answer.metadata.id, 0x4242,
            "{transport}: the first message back answers the query"
        );
    }

    let mut doh = client::DohClient::connect(addr(ip, 4430), &ca, NAME);
    for (kind, response) in responses() {
        let (status, body) = doh.post(&response);
        assert_eq!(
            (status, body.len()),
            (400, 0),
            "DoH: {kind} gets no DNS message"
        );
    }
    let (status, body) = doh.post(&query);
    assert_eq!(status, 200);
    assert_eq!(client::parse(&body).metadata.id, 0x4242);
    node.stop();
}

#[test]
fn a_spoofed_response_between_two_nodes_dies_out() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let (a, b) = ("127.0.12.2", "127.0.12.3");
    let node_a = Node::start(&scratch.write("a.toml", &node_config(a, "a", "", "")));
    let node_b = Node::start(&scratch.write("b.toml", &node_config(b, "b", "", "")));
    // A socket on node A's own address and port (its sockets use SO_REUSEPORT, and so does
    // this one), so what goes to B seems to come from A.
    let spoof = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    spoof.set_reuse_port(true).unwrap();
    spoof.bind(&addr(a, 5300).into()).unwrap();
    for (_, response) in responses() {
        spoof.send_to(&response, &addr(b, 5300).into()).unwrap();
    }
    // Out of A's group again: queries to A must reach A's own sockets.
    drop(spoof);
    let window = Duration::from_secs(2);
    let (pid_a, pid_b) = (node_a.pid(), node_b.pid());
    let (share_a, share_b) = std::thread::scope(|s| {
        let a = s.spawn(|| proc::cpu_share(pid_a, window));
        let b = s.spawn(|| proc::cpu_share(pid_b, window));
        (a.join().unwrap(), b.join().unwrap())
    });
    println!("CPU over {window:?} after the spoofed responses: A {share_a:.3}, B {share_b:.3}");
    assert!(
        share_a < 0.05 && share_b < 0.05,
        "the nodes bounce nothing: A {share_a:.3}, B {share_b:.3}"
    );
    // Both still answer.
    for ip in [a, b] {
        let out = kdig(&[
            &format!("@{ip}"),
            "-p",
            "5300",
            "+short",
            "www.example.test",
            "A",
        ]);
        assert_eq!(out.trim(), "192.0.2.10");
    }
}

#[test]
fn doh_abuse_costs_bounded_memory_and_a_fresh_query_is_answered() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.12.4";
    let node = Node::start(&scratch.write("node.toml", &node_config(ip, "state", "", "")));
    let ca = format!("+tls-ca={}", scratch.local_ca("state").display());
    let probe = || {
        let start = Instant::now();
        let out = kdig(&[
            &format!("@{ip}"),
            "-p",
            "4430",
            "+https",
            &ca,
            "+tls-hostname=ns1.example.test",
            "+timeout=1",
            "+short",
            "www.example.test",
            "A",
        ]);
        (out.trim() == "192.0.2.10", start.elapsed())
    };
    assert!(probe().0, "DoH answers before the attack");
    let before = proc::rss_kb(node.pid());
    let attack = Command::new("/usr/bin/python3")
        .arg(common::repo().join("tests/attack/doh_abuse.py"))
        .args([
            "--target",
            &format!("{ip}:4430"),
            "--streams",
            "10000",
            "--seconds",
            "8",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run tests/attack/doh_abuse.py (python3-h2, installed by tests/setup.sh)");
    let mut probes = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(1200));
        probes.push(probe());
    }
    let out = attack.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(out.status.success(), "the attack ran: {report}");
    assert_eq!(
        report.matches("streams=10000").count(),
        2,
        "both connections sent every stream: {report}"
    );
    let grown = proc::status_kb(node.pid(), "VmHWM").saturating_sub(before);
    println!("RSS {before} kB before; peak grew by {grown} kB; probes {probes:?}");
    assert!(grown < 32 * 1024, "RSS grew by {grown} kB");
    for (answered, took) in probes {
        assert!(
            answered && took < Duration::from_secs(1),
            "a fresh DoH query during the attack: {took:?}"
        );
    }
    node.stop();
}

/// dig from `source` to `ip` port 5300 with `args` (separated by spaces).
fn dig_from(source: &str, ip: &str, args: &str) -> String {
    let server = format!("@{ip}");
    let mut all = vec!["-b", source, &server, "-p", "5300"];
    all.extend(args.split(' '));
    dig(&all)
}

/// A UDP socket bound and never read: an upstream that never answers.
fn black_hole(ip: &str) -> UdpSocket {
    UdpSocket::bind(addr(ip, 5300)).unwrap()
}

#[test]
fn the_forwarder_refuses_strangers_and_caps_its_work() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.12.5";
    let _upstream = black_hole("127.0.12.6");
    let forward = "[forward]\ntimeout-ms = 2000\nallow = [\"127.0.12.0/24\"]\nmax-in-flight = 4\n\
                   [[forward.upstream]]\naddress = \"127.0.12.6:5300\"\n";
    let node = Node::start(&scratch.write("node.toml", &node_config(ip, "state", "", forward)));
    let stranger = dig_from("127.0.13.250", ip, "outside.test A");
    assert!(
        stranger.contains("status: REFUSED"),
        "a client outside forward.allow: {stranger}"
    );
    assert!(
        stranger.contains("QUESTION SECTION:\n;outside.test."),
        "the answer carries the question: {stranger}"
    );
    // Twenty forwards at once: four wait on the upstream, the rest get SERVFAIL at once.
    let socket = UdpSocket::bind("127.0.12.250:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for i in 0..20u16 {
        let query = client::query(i, &format!("n{i}.outside.test"), RecordType::A);
        socket.send_to(&query, addr(ip, 5300)).unwrap();
    }
    let mut quick = 0;
    let mut buf = [0u8; 512];
    while let Ok(n) = socket.recv(&mut buf) {
        let answer = client::parse(&buf[..n]);
        assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(answer.queries.len(), 1, "SERVFAIL carries the question");
        quick += 1;
    }
    assert_eq!(
        quick, 16,
        "forwards beyond max-in-flight are answered at once"
    );
    node.wait_log("forwards at forward.max-in-flight", Duration::from_secs(1));
    // The four that waited end as SERVFAIL after the timeout, their reason logged as a warning.
    let allowed = dig_from("127.0.12.251", ip, "+time=5 late.outside.test A");
    assert!(
        allowed.contains("status: SERVFAIL") && allowed.contains(";late.outside.test."),
        "{allowed}"
    );
    node.wait_log("no upstream answered", Duration::from_secs(5));
    assert!(
        node.stderr().contains("127.0.12.6:5300: no answer in 2s"),
        "{}",
        node.stderr()
    );
    // Its own zone is still answered to anyone.
    let own = dig_from("127.0.13.250", ip, "+short www.example.test A");
    assert_eq!(own.trim(), "192.0.2.10");
    node.stop();
}

#[test]
fn rate_limiting_gives_a_flood_its_rate_and_others_everything() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.12.7";
    // A big answer: the amplification a spoofed flood would want.
    let zone = std::fs::read_to_string(scratch.path("example.test.zone")).unwrap()
        + &format!(
            "big IN TXT {}\n",
            vec![format!("\"{}\"", "x".repeat(200)); 5].join(" ")
        );
    scratch.write("example.test.zone", &zone);
    let rrl = "[rrl]\nresponses-per-second = 50\nslip = 2\n";
    let node = Node::start(&scratch.write("node.toml", &node_config(ip, "state", "", rrl)));
    let full = dig_from(
        "127.0.14.1",
        ip,
        "+bufsize=1232 +nocookie big.example.test TXT",
    );
    let full_size = msg_size(&full);
    scratch.write("flood.txt", "big.example.test TXT\n");
    let seconds = 3; // dnsperf's -l
    let names = scratch.path("flood.txt");
    // One address, 2,000 q/s of that name for 3 s, 5,000 outstanding at most.
    let flood = format!("-s {ip} -p 5300 -a 127.0.15.1 -e -c 1 -q 5000 -Q 2000 -l 3 -t 1 -d");
    let mut args: Vec<&str> = flood.split(' ').collect();
    args.push(names.to_str().unwrap());
    let flood = load::dnsperf(&args);
    // Another network asks throughout and always gets the whole answer.
    let started = Instant::now();
    let mut others = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let out = dig_from(
            "127.0.14.2",
            ip,
            "+bufsize=1232 +ignore big.example.test TXT",
        );
        assert!(
            out.contains("status: NOERROR") && !out.contains(" tc"),
            "another /24 is answered in full: {out}"
        );
        others += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let report = flood.join().unwrap();
    let completed = load::field(&report, "Queries completed:");
    let average = load::mean_response_size(&report);
    // A slipped answer: header and question (big.example.test. TXT IN) only.
    let truncated_size = 12.0 + 18.0 + 4.0;
    let full_answers = completed * (average - truncated_size) / (full_size - truncated_size);
    let slipped = completed - full_answers;
    println!(
        "flood: {completed} answers, {full_answers:.0} full ({full_size} bytes), {slipped:.0} truncated; {others} answers to the other network"
    );
    let allowed = 50.0 * (seconds as f64 + 1.0);
    assert!(
        full_answers <= allowed + 15.0,
        "at most the rate in full answers: {full_answers:.0} > {allowed}"
    );
    assert!(
        slipped > 100.0,
        "limited answers slip as TC=1: {slipped:.0}\n{report}"
    );
    node.wait_log(
        "rate limiting UDP answers to this prefix",
        Duration::from_secs(2),
    );
    assert!(
        node.stderr().contains("prefix=127.0.15.0/24"),
        "{}",
        node.stderr()
    );
    node.stop();
}

/// dig's ";; MSG SIZE  rcvd: N".
fn msg_size(dig_output: &str) -> f64 {
    dig_output
        .split("MSG SIZE  rcvd: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a message size in {dig_output}"))
}

#[test]
fn a_node_with_256_files_survives_1000_connections() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.12.8";
    proc::raise_open_files();
    let config = scratch.write("node.toml", &node_config(ip, "state", "", ""));
    let node = Node::start_wrapped(&["prlimit", "--nofile=256:256", "--"], &config);
    node.wait_log("open_files=256", Duration::from_secs(1));
    let mut held = Vec::new();
    let mut refused = 0;
    for i in 0..1000 {
        let source = format!("127.0.16.{}", 1 + i % 200);
        match connect_from(&source, addr(ip, 5300)) {
            Ok(stream) => held.push(stream),
            Err(_) => refused += 1,
        }
    }
    println!(
        "1000 connection attempts: {} connected, {refused} failed; node holds {} files",
        held.len(),
        proc::open_files(node.pid())
    );
    let udp = dig_from("127.0.12.250", ip, "+short www.example.test A");
    assert_eq!(
        udp.trim(),
        "192.0.2.10",
        "UDP is answered during the attack"
    );
    drop(held);
    let tcp = wait_for(
        "a new TCP connection to be answered",
        Duration::from_secs(5),
        || {
            let out = dig(&[
                "+short",
                "+tcp",
                &format!("@{ip}"),
                "-p",
                "5300",
                "www.example.test",
                "A",
            ]);
            (out.trim() == "192.0.2.10").then_some(out)
        },
    );
    assert_eq!(tcp.trim(), "192.0.2.10");
    std::thread::sleep(Duration::from_millis(500));
    let idle = proc::cpu_share(node.pid(), Duration::from_secs(2));
    println!("CPU while idle afterwards: {:.1}%", idle * 100.0);
    assert!(
        idle < 0.05,
        "idle afterwards: {:.1}% of a core",
        idle * 100.0
    );
    node.stop();
}

fn connect_from(source: &str, to: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&addr(source, 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_millis(200))?;
    Ok(socket.into())
}

#[test]
fn a_ca_that_accepts_and_never_answers_is_a_logged_timeout_and_a_retry() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let ip = "127.0.12.9";
    let stalled = TcpListener::bind("127.0.12.109:14000").unwrap();
    // Accepts every connection and holds it, saying nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in stalled.incoming().flatten() {
            held.push(stream);
        }
    });
    let config = format!(
        "state-dir = \"state\"\n\n[listen]\nudp = [\"{ip}:5300\"]\ntcp = [\"{ip}:5300\"]\ntls = [\"{ip}:8530\"]\n\n\
         [tls]\nnames = [\"www.example.test\"]\nsource = \"acme\"\n\n\
         [acme]\ndirectory = \"https://127.0.12.109:14000/dir\"\nhttp-timeout-secs = 1\nretry-base-secs = 2\n\n\
         [[zone]]\nname = \"example.test.\"\nfile = \"example.test.zone\"\n"
    );
    let node = Node::start(&scratch.write("node.toml", &config));
    node.wait_log("attempt=2", Duration::from_secs(10));
    let log = node.stderr();
    assert!(
        log.contains("no answer from the CA within 1s"),
        "the timeout is logged:\n{log}"
    );
    assert!(log.contains("retry_in=2s"), "and a retry scheduled:\n{log}");
    let udp = dig_from("127.0.12.250", ip, "+short www.example.test A");
    assert_eq!(udp.trim(), "192.0.2.10", "plain DNS is served meanwhile");
    node.stop();
}
