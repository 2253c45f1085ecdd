//! `certzone verify` against a real BIND 9 primary for a certificate zone:
//! AXFR with TSIG (many messages), the fallback to plain queries when
//! transfers are refused (signed when the refusal was), no fallback after an
//! unsigned refusal, format 1 and format 2 bundles, a forged bundle, another
//! cluster's bundle, no server, and `--json`. Each test has its own `named`
//! on its own 127.0.5.x address.

use std::{path::PathBuf, time::Duration};

use crate::bundle_common::make_chain;
use crate::common::bind::{Bind, BindConfig, BindZone, Source, Transfer};
use crate::common::{self, certzone};
use certzone::bundle::{
    BundleInput, SigningKey, WorkerSecretKey, generate_signing_key, publish, signing_key_id,
    verifying_key_to_pem, zone_text,
};
use hickory_proto::rr::Name;
use rand_core::OsRng;
use rustls_pki_types::PrivatePkcs8KeyDer;

const ZONE: &str = "_certzone.example.test.";
const PORT: u16 = 5300;
const VERSION: u64 = 7;
/// 2026-01-01T00:00:00Z
const PUBLISHED: u64 = 1_767_225_600;
/// A fixed key: a random secret may contain `//`, which `tsig::parse`
/// currently mistakes for a comment (see tests/keygen.rs).
const TSIG: &str = "key \"transfer\" {\n\talgorithm hmac-sha256;\n\tsecret \"0AyJ6J1ygkLeXEjVN9RzZRtPJAdhXtWkJbjBHMa6L8M=\";\n};\n";

/// A certificate zone served by BIND, and the files `verify` takes.
struct Served {
    bind: Bind,
    dir: tempfile::TempDir,
    workers: Vec<WorkerSecretKey>,
}

/// What BIND serves: a bundle of `format`, signed by the pinned key or (`forged`) another.
#[derive(Clone, Copy)]
struct Bundle {
    format: u8,
    forged: bool,
}

const V2: Bundle = Bundle {
    format: 2,
    forged: false,
};

/// SOA, NS and a bundle for two workers, signed by `signer`; format 2 for cluster "prod".
fn zone_contents(signer: &SigningKey, workers: &[WorkerSecretKey], format: u8) -> String {
    let names = ["example.test", "*.example.test"];
    let made = make_chain(2, &names, ((2020, 1, 1), (2090, 1, 1)));
    let input = BundleInput {
        zone: Name::from_ascii(ZONE).expect("valid zone"),
        ttl: 300,
        format,
        minimum_format: format,
        version: VERSION,
        published: PUBLISHED,
        cluster_id: if format == 2 {
            "prod".into()
        } else {
            String::new()
        },
        names: names.iter().map(|n| n.to_string()).collect(),
        chain: made.chain,
        private_key: PrivatePkcs8KeyDer::from(made.leaf_key),
        workers: workers.iter().map(WorkerSecretKey::public_key).collect(),
    };
    let records = publish(&input, signer, &mut OsRng).expect("publishes");
    format!(
        "@ 300 IN SOA ns.example.test. admin.example.test. {VERSION} 7200 3600 1209600 300\n\
         @ 300 IN NS ns.example.test.\n{}",
        zone_text(&records)
    )
}

/// BIND on 127.0.5.`n` serving `bundle`, signed by the key pinned in `public.pem` (or,
/// forged, by another key); BIND knows the TSIG key unless `transfer` is `None`.
fn serve(n: u8, transfer: Option<Transfer>, bundle: Bundle) -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let pinned = generate_signing_key(&mut OsRng);
    let signer = if bundle.forged {
        generate_signing_key(&mut OsRng)
    } else {
        pinned.clone()
    };
    let workers: Vec<WorkerSecretKey> = (0..3)
        .map(|_| WorkerSecretKey::generate(&mut OsRng))
        .collect();
    let public = verifying_key_to_pem(pinned.verifying_key()).expect("pem");
    std::fs::write(dir.path().join("public.pem"), public).expect("write");
    std::fs::write(dir.path().join("transfer.key"), TSIG).expect("write");
    for (i, w) in workers.iter().enumerate() {
        let pem = w.to_pem().expect("pem");
        std::fs::write(dir.path().join(format!("worker-{i}.pem")), pem).expect("write");
    }
    std::fs::write(
        dir.path().join("signer.id"),
        signing_key_id(signer.verifying_key()).to_string(),
    )
    .expect("write");
    let config = BindConfig {
        ip: format!("127.0.5.{n}"),
        port: PORT,
        keys: if transfer.is_some() {
            vec![TSIG.into()]
        } else {
            vec![]
        },
        zones: vec![BindZone {
            name: ZONE.into(),
            // workers 0 and 1 are listed; 2 is not
            source: Source::Primary(zone_contents(&signer, &workers[..2], bundle.format)),
            transfer: transfer.unwrap_or(Transfer::Any),
            extra: String::new(),
        }],
        // small transfer messages, so an AXFR takes many, each TSIG-signed
        options: "\ttransfer-message-size 1024;\n\tquerylog yes;".into(),
    };
    let bind = Bind::start(dir.path(), &config);
    Served { bind, dir, workers }
}

impl Served {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `certzone verify` against this server with `extra` arguments
    /// (file names relative to the temp dir); returns (code, stdout, stderr).
    fn verify(&self, extra: &[&str]) -> (Option<i32>, String, String) {
        let server = self.bind.addr.to_string();
        let public = self.path("public.pem");
        let mut args = vec!["verify", "--server", &server, "--zone", ZONE];
        args.extend(["--public-key", public.to_str().expect("utf-8 path")]);
        let files: Vec<String> = extra
            .iter()
            .map(|a| match self.path(a) {
                p if p.exists() => p.display().to_string(),
                _ => a.to_string(),
            })
            .collect();
        args.extend(files.iter().map(String::as_str));
        let out = certzone(&args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }
}

fn transfer_key() -> Option<Transfer> {
    Some(Transfer::Key("transfer".into()))
}

#[test]
fn axfr_with_tsig_shows_the_bundle_and_unseals() {
    let _gate = common::gate();
    let served = serve(1, transfer_key(), V2);
    let (code, out, err) = served.verify(&[
        "--tsig",
        "transfer.key",
        "--worker-key",
        "worker-0.pem",
        "--cluster-id",
        "prod",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let signer = std::fs::read_to_string(served.path("signer.id")).expect("signer id");
    for line in [
        "fetched by axfr",
        "format 2",
        "minimum format 2",
        "cluster id \"prod\"",
        "published 2026-01-01T00:00:00Z",
        &format!("signed by {signer} (pinned, verified)"),
        &format!("soa serial {VERSION}"),
        &format!("bundle version {VERSION}"),
        "names *.example.test example.test",
        "not after 2090-01-01T00:00:00Z",
        "certificate 0 subject: CN=certzone test leaf",
        "certificate 0 issuer: CN=certzone test ca 1",
        "certificate 1 subject: CN=certzone test ca 1",
        "sealed keys 2",
        &format!("worker key {}: unseals", served.workers[0].key_id()),
        "valid",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }
    // named logs the end of a transfer after its last message, so it may come after verify exits.
    served.bind.wait_log("AXFR ended: ", Duration::from_secs(5));
    let log = served.bind.log();
    let messages = log
        .lines()
        .find_map(|l| l.split("AXFR ended: ").nth(1))
        .and_then(|rest| rest.split(' ').next()?.parse::<u32>().ok());
    assert!(messages > Some(1), "a multi-message transfer:\n{log}");
}

#[test]
fn a_format_1_bundle_is_reported_as_such() {
    let _gate = common::gate();
    let served = serve(
        7,
        transfer_key(),
        Bundle {
            format: 1,
            forged: false,
        },
    );
    let (code, out, err) =
        served.verify(&["--tsig", "transfer.key", "--worker-key", "worker-0.pem"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.lines().any(|l| l == "format 1"), "{out}");
    assert!(
        !out.contains("cluster id") && !out.contains("published"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "valid"), "{out}");
}

#[test]
fn another_clusters_bundle_fails_the_cluster_check() {
    let _gate = common::gate();
    let served = serve(8, transfer_key(), V2);
    let (code, out, err) = served.verify(&["--tsig", "transfer.key", "--cluster-id", "staging"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.lines().any(|l| l == "invalid: cluster check"), "{out}");
    assert!(
        err.contains("cluster check: the bundle is for cluster \"prod\""),
        "{err}"
    );
}

#[test]
fn an_unsigned_refusal_is_not_a_reason_to_read_by_queries() {
    let _gate = common::gate();
    // BIND without the key answers the signed AXFR with an unsigned NOTAUTH (BADKEY).
    let served = serve(9, None, V2);
    let (code, out, err) = served.verify(&["--tsig", "transfer.key"]);
    assert_eq!(
        code,
        Some(1),
        "a network error, not a bundle verdict:\n{out}{err}"
    );
    assert!(
        err.contains("TSIG check failed") && err.contains("NOTAUTH"),
        "{err}"
    );
    assert!(!out.contains("fetched by queries"), "{out}");
}

#[test]
fn a_worker_not_listed_does_not_unseal() {
    let _gate = common::gate();
    let served = serve(2, transfer_key(), V2);
    let (code, out, err) =
        served.verify(&["--tsig", "transfer.key", "--worker-key", "worker-2.pem"]);
    assert_eq!(code, Some(3), "{out}{err}");
    let id = served.workers[2].key_id();
    assert!(
        out.contains(&format!("worker key {id}: does not unseal")),
        "{out}"
    );
    assert!(err.contains("key check: no sealed key"), "{err}");
}

#[test]
fn refused_transfers_fall_back_to_queries() {
    let _gate = common::gate();
    let served = serve(3, Some(Transfer::Refused), V2);
    let (code, out, err) =
        served.verify(&["--tsig", "transfer.key", "--worker-key", "worker-1.pem"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("fetched by queries"), "{out}");
    assert!(out.contains(&format!("soa serial {VERSION}")), "{out}");
    assert!(out.contains("sealed keys 2"), "{out}");
    assert!(out.contains(": unseals"), "{out}");
    // BIND's log is read by another thread: wait for the lines rather than race them.
    served.bind.wait_log("denied", Duration::from_secs(5));
    let query = "query: manifest._certzone.example.test IN TXT";
    served.bind.wait_log(query, Duration::from_secs(5));
    let log = served.bind.log();
    // the refusal was signed (BIND has the key), so are the queries that followed
    let manifest: Vec<&str> = log.lines().filter(|l| l.contains(query)).collect();
    assert!(!manifest.is_empty(), "{log}");
    assert!(
        manifest
            .iter()
            .all(|l| l.contains("/key transfer") && l.contains(" -ST ")),
        "signed (S) over TCP (T): {manifest:?}"
    );
    assert!(
        err.contains("refused the TSIG-signed transfer"),
        "the fallback with --tsig is said: {err}"
    );

    // a TSIG-only zone asked without the key: refused too, same fallback
    let served = serve(4, transfer_key(), V2);
    let (code, out, err) = served.verify(&[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("fetched by queries"), "{out}");
}

#[test]
fn a_forged_bundle_fails_the_signature_check() {
    let _gate = common::gate();
    let served = serve(
        5,
        transfer_key(),
        Bundle {
            format: 2,
            forged: true,
        },
    );
    let (code, out, err) = served.verify(&["--tsig", "transfer.key"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.contains("fetched by axfr"), "{out}");
    assert!(
        out.lines().any(|l| l == "invalid: signature check"),
        "{out}"
    );
    assert!(
        err.contains("signature check: no signature by a pinned key"),
        "{err}"
    );
    assert!(!out.lines().any(|l| l == "valid"), "{out}");
}

#[test]
fn no_server_is_a_network_error_naming_it() {
    let _gate = common::gate();
    let dir = tempfile::tempdir().expect("temp dir");
    let public = dir.path().join("public.pem");
    let key = generate_signing_key(&mut OsRng);
    std::fs::write(
        &public,
        verifying_key_to_pem(key.verifying_key()).expect("pem"),
    )
    .expect("write");
    let out = certzone(&[
        "verify",
        "--server",
        "127.0.5.9:5399",
        "--zone",
        ZONE,
        "--public-key",
        public.to_str().expect("utf-8 path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("127.0.5.9:5399"), "{err}");

    // --json says it on stdout too, as one object.
    let out = certzone(&[
        "verify",
        "--server",
        "127.0.5.9:5399",
        "--zone",
        ZONE,
        "--public-key",
        public.to_str().expect("utf-8 path"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert_eq!(v["valid"], false);
    assert_eq!(v["network_error"], true);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.5.9:5399"),
        "{v}"
    );
}

#[test]
fn a_zone_the_server_does_not_serve_is_named_not_a_network_error() {
    let _gate = common::gate();
    let served = serve(12, transfer_key(), V2);
    let server = served.bind.addr.to_string();
    let public = served.path("public.pem");
    let out = certzone(&[
        "verify",
        "--server",
        &server,
        "--zone",
        "_certzone.other.test.",
        "--public-key",
        public.to_str().expect("utf-8 path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no such zone") && err.contains("_certzone.other.test."),
        "{err}"
    );
}

#[test]
fn json_output_has_every_field() {
    let _gate = common::gate();
    let served = serve(6, transfer_key(), V2);
    let (code, out, err) = served.verify(&[
        "--tsig",
        "transfer.key",
        "--worker-key",
        "worker-1.pem",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["zone"], ZONE);
    assert_eq!(v["server"], "127.0.5.6:5300");
    assert_eq!(v["fetched"], "axfr");
    assert_eq!(v["serial"], VERSION);
    assert_eq!(v["version"], VERSION);
    assert_eq!(
        v["names"],
        serde_json::json!(["*.example.test", "example.test"])
    );
    assert_eq!(v["not_after"], "2090-01-01T00:00:00Z");
    assert_eq!(v["chain"][0]["subject"], "CN=certzone test leaf");
    assert_eq!(v["chain"][0]["issuer"], "CN=certzone test ca 1");
    assert_eq!(v["sealed_keys"], 2);
    let id = served.workers[1].key_id().to_string();
    assert_eq!(
        v["worker_key"],
        serde_json::json!({ "id": id, "unseals": true })
    );
    assert_eq!(v["valid"], true);
    assert!(v["error"].is_null() && v["rule"].is_null());
    assert_eq!(v["format"], 2);
    assert_eq!(v["cluster_id"], "prod");
    assert_eq!(v["published"], "2026-01-01T00:00:00Z");
    assert_eq!(v["signers"][0]["pinned"], true);
}
