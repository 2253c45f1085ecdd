//! The master publishes its certificate as the signed certificate zone, and transfers zones
//! out by AXFR with TSIG. Each test has its own 127.0.7.x address.

use std::{net::SocketAddr, time::Duration};

use crate::common::{self, Node, Scratch, axfr::axfr, dig, kdig, node_config, wait_for};
use base64::{Engine, engine::general_purpose::STANDARD};
use certzone::{
    bundle::{self, ReaderPolicy, WorkerSecretKey},
    tsig::{Algorithm, TsigKey},
};
use hickory_proto::{
    op::ResponseCode,
    rr::{Name, RData, Record},
};
use rustls_pki_types::pem::PemObject;

const ZONE: &str = "_certzone.example.test.";

/// Keys for a cluster: the signing key, two workers, a transfer key; written to `scratch`.
struct Keys {
    signing: bundle::SigningKey,
    workers: Vec<WorkerSecretKey>,
    tsig: TsigKey,
}

fn keys(scratch: &Scratch) -> Keys {
    let mut rng = rand_core::OsRng;
    let signing = bundle::generate_signing_key(&mut rng);
    scratch.write(
        "signing.pem",
        &bundle::signing_key_to_pem(&signing).unwrap(),
    );
    let workers: Vec<WorkerSecretKey> = (0..2)
        .map(|_| WorkerSecretKey::generate(&mut rng))
        .collect();
    for (i, worker) in workers.iter().enumerate() {
        scratch.write(
            &format!("worker{i}.pub"),
            &worker.public_key().to_pem().unwrap(),
        );
    }
    let tsig = TsigKey::generate(
        Name::from_ascii("transfer.").unwrap(),
        Algorithm::HmacSha256,
    );
    scratch.write("transfer.key", &tsig.to_key_block());
    Keys {
        signing,
        workers,
        tsig,
    }
}

const PUBLISH: &str = r#"
[certificate-zone]
name = "_certzone.example.test."
signing-key = "signing.pem"
[[certificate-zone.worker]]
name = "worker0"
public-key = "worker0.pub"
[[certificate-zone.worker]]
name = "worker1"
public-key = "worker1.pub"

[transfer]
tsig-key-file = "transfer.key"
"#;

fn server(ip: &str) -> SocketAddr {
    format!("{ip}:5300").parse().unwrap()
}

fn policy(keys: &Keys, worker: usize) -> ReaderPolicy {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ReaderPolicy {
        required_names: vec!["ns1.example.test".into()],
        worker: Some(keys.workers[worker].clone()),
        ..ReaderPolicy::new(vec![*keys.signing.verifying_key()], now)
    }
}

fn soa_serial(records: &[Record]) -> u32 {
    records
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .expect("an SOA")
}

#[test]
fn master_publishes_a_bundle_every_worker_unseals_and_no_key_in_clear() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let keys = keys(&scratch);
    let ip = "127.0.7.1";
    let node = Node::start(&scratch.write("master.toml", &node_config(ip, "state", "", PUBLISH)));
    node.wait_log("certificate zone published", Duration::from_secs(10));
    let transfer = axfr(server(ip), ZONE, Some(&keys.tsig));
    assert_eq!(transfer.rcode, ResponseCode::NoError);
    let zone = Name::from_ascii(ZONE).unwrap();
    let leaf_key_pem = std::fs::read_to_string(scratch.path("state/local-ca/leaf.key")).unwrap();
    for worker in 0..2 {
        let verified = bundle::read(&transfer.records, &zone, &policy(&keys, worker))
            .expect("the bundle verifies");
        let key = verified.private_key.expect("the worker's key unseals");
        assert!(
            leaf_key_pem.contains(&STANDARD.encode(key.secret_pkcs8_der())[..40]),
            "it is the served leaf's key"
        );
    }
    // The leaf's private key, in every form, appears nowhere in the transfer.
    let der = rustls_pki_types::PrivateKeyDer::from_pem_slice(leaf_key_pem.as_bytes()).unwrap();
    let der = der.secret_der().to_vec();
    let wire: Vec<u8> = transfer.raw.concat();
    let text = kdig(&[
        &format!("@{ip}"),
        "-p",
        "5300",
        "-y",
        &tsig_arg(&keys.tsig),
        "AXFR",
        ZONE,
    ]);
    assert!(
        text.contains("CERT") && text.contains("manifest"),
        "kdig transfers the zone:\n{text}"
    );
    // The secret part is the EC private scalar (RFC 5915: `02 01 01 04 20` then 32 bytes);
    // the rest of the DER is an algorithm header and the public key, which are public.
    let at = der
        .windows(5)
        .position(|w| w == [2, 1, 1, 4, 32])
        .expect("an ECPrivateKey")
        + 5;
    let scalar = der[at..at + 32].to_vec();
    let body: String = leaf_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der_b64 = STANDARD.encode(&der);
    let forms: Vec<Vec<u8>> = vec![
        scalar.clone(),
        hex(&scalar).into_bytes(),
        STANDARD.encode(&scalar).into_bytes(),
        der_b64.as_bytes()[48..80].to_vec(),
        der_b64.into_bytes(),
        body.into_bytes(),
        STANDARD.encode(&leaf_key_pem).into_bytes(),
        STANDARD.encode(&der).into_bytes(),
    ];
    for form in &forms {
        assert!(!contains(&wire, form), "key material in the AXFR wire");
        assert!(
            !contains(text.as_bytes(), form),
            "key material in kdig's AXFR text"
        );
    }
    let out = dig(&[
        &format!("@{ip}"),
        "-p",
        "5300",
        "-y",
        &tsig_arg(&keys.tsig),
        "AXFR",
        ZONE,
    ]);
    assert!(
        out.contains("manifest") && out.contains("XFR size"),
        "dig transfers the zone:\n{out}"
    );
    node.stop();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn tsig_arg(key: &TsigKey) -> String {
    format!("hmac-sha256:transfer:{}", STANDARD.encode(&key.secret))
}

#[test]
fn transfers_need_a_configured_tsig_key() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let keys = keys(&scratch);
    let ip = "127.0.7.2";
    let node = Node::start(&scratch.write("master.toml", &node_config(ip, "state", "", PUBLISH)));
    node.wait_log("certificate zone published", Duration::from_secs(10));
    assert_eq!(
        axfr(server(ip), ZONE, None).rcode,
        ResponseCode::Refused,
        "unsigned"
    );
    let stranger = TsigKey::generate(
        Name::from_ascii("transfer.").unwrap(),
        Algorithm::HmacSha256,
    );
    assert_eq!(
        axfr(server(ip), ZONE, Some(&stranger)).rcode,
        ResponseCode::NotAuth,
        "wrong secret"
    );
    let other = TsigKey::generate(Name::from_ascii("other.").unwrap(), Algorithm::HmacSha256);
    assert_eq!(
        axfr(server(ip), ZONE, Some(&other)).rcode,
        ResponseCode::NotAuth,
        "unknown key"
    );
    assert_eq!(
        axfr(server(ip), ZONE, Some(&keys.tsig)).rcode,
        ResponseCode::NoError
    );
    let out = kdig(&[&format!("@{ip}"), "-p", "5300", "+notcp", "AXFR", ZONE]);
    assert!(!out.contains("manifest"), "no transfer over UDP:\n{out}");
    node.stop();
}

#[test]
fn version_and_serial_go_forward_across_restarts() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let keys = keys(&scratch);
    let ip = "127.0.7.3";
    let config = scratch.write("master.toml", &node_config(ip, "state", "", PUBLISH));
    let node = Node::start(&config);
    node.wait_log("certificate zone published", Duration::from_secs(10));
    let first = axfr(server(ip), ZONE, Some(&keys.tsig));
    let zone = Name::from_ascii(ZONE).unwrap();
    let v1 = bundle::read(&first.records, &zone, &policy(&keys, 0))
        .unwrap()
        .version;
    node.stop();
    // A version file from the future (clock stepped back) still never goes backwards.
    std::fs::write(
        scratch.path("state/bundle/version"),
        format!("{}\n", v1 + 1000),
    )
    .unwrap();
    let node = Node::start(&config);
    node.wait_log("certificate zone published", Duration::from_secs(10));
    let second = axfr(server(ip), ZONE, Some(&keys.tsig));
    let mut held = policy(&keys, 0);
    held.held_version = Some(v1);
    let v2 = bundle::read(&second.records, &zone, &held)
        .expect("the new bundle is newer")
        .version;
    assert_eq!(v2, v1 + 1001);
    assert!(
        soa_serial(&second.records) > soa_serial(&first.records),
        "the SOA serial moves with the bundle"
    );
    node.stop();
}

#[test]
fn large_zone_transfers_whole_in_many_signed_messages() {
    let _gate = common::gate();
    let scratch = Scratch::new();
    let keys = keys(&scratch);
    let ip = "127.0.7.4";
    let mut zone =
        String::from("$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns hm 1 60 60 600 60\n IN NS ns\n");
    for i in 0..20_000 {
        zone.push_str(&format!(
            "host{i} IN A 10.{}.{}.{}\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    scratch.write("big.test.zone", &zone);
    let extra = format!("{PUBLISH}\n[[zone]]\nname = \"big.test.\"\nfile = \"big.test.zone\"\n");
    let node = Node::start(&scratch.write("master.toml", &node_config(ip, "state", "", &extra)));
    let transfer = wait_for("the big zone to transfer", Duration::from_secs(30), || {
        let t = axfr(server(ip), "big.test.", Some(&keys.tsig));
        (t.rcode == ResponseCode::NoError).then_some(t)
    });
    // SOA + NS + 20,000 A + closing SOA.
    assert_eq!(transfer.records.len(), 20_003);
    assert!(
        transfer.raw.len() > 10,
        "split into many messages ({})",
        transfer.raw.len()
    );
    assert!(transfer.raw.iter().all(|m| m.len() < 65_535));
    let out = kdig(&[
        &format!("@{ip}"),
        "-p",
        "5300",
        "-y",
        &tsig_arg(&keys.tsig),
        "AXFR",
        "big.test.",
    ]);
    assert!(
        out.contains("20003 records"),
        "kdig receives every record:\n{}",
        &out[out.len().saturating_sub(400)..]
    );
    node.stop();
}
