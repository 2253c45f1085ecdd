//! The test CA of a docker cluster: Pebble on the network, the master's ACME directory.
//!
//! Owns Pebble's files under `<state-dir>/docker/test-ca/` (its config, and an HTTPS
//! certificate from a throwaway CA made at every `up`: the master trusts that CA through
//! its rendered `ca-roots`), waiting for Pebble's directory, and the roots the client
//! trusts: Pebble makes a new root at every start, so each one is added to the client's
//! file and the certificates issued before a restart still verify. It must not start
//! containers.

use std::{net::Ipv4Addr, path::Path, sync::Arc, time::Duration};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::project::{PEBBLE_MANAGEMENT_PORT, PEBBLE_PORT, Project};
use crate::{cluster::docker::TestCa, state};

/// Roots kept in the client's file: enough for every restart a certificate outlives.
const ROOTS_KEPT: usize = 16;
/// An answer from Pebble larger than this is not one of its small JSON or PEM bodies.
const BODY_MAX: u64 = 1 << 20;

/// Writes Pebble's HTTPS certificate (and its CA, which the master trusts) and config.
pub(super) fn prepare(project: &Project, test_ca: TestCa) -> Result<(), String> {
    let dir = project.pebble_dir();
    state::ensure_dir(&dir).map_err(|e| e.to_string())?;
    let (ca, leaf, key) = https_material(test_ca.address)
        .map_err(|e| format!("failed to make the test CA's HTTPS certificate: {e}"))?;
    let write = |name: &str, text: &str, mode: u32| {
        state::write_atomic(&dir.join(name), text.as_bytes(), mode).map_err(|e| e.to_string())
    };
    write("https-ca.pem", &ca, state::PUBLIC)?;
    write("https.pem", &leaf, state::PUBLIC)?;
    // Pebble runs as root in its container; the key never leaves this directory.
    write("https.key", &key, state::SECRET)?;
    let validity = test_ca
        .leaf_secs
        .map(|s| format!(",\n    \"certificateValidityPeriod\": {s}"))
        .unwrap_or_default();
    let config = format!(
        "{{\"pebble\": {{\n    \"listenAddress\": \"{ip}:{PEBBLE_PORT}\",\n    \
         \"managementListenAddress\": \"{ip}:{PEBBLE_MANAGEMENT_PORT}\",\n    \
         \"certificate\": \"/pebble/https.pem\",\n    \"privateKey\": \"/pebble/https.key\",\n    \
         \"httpPort\": 5002,\n    \"tlsPort\": 5001,\n    \"ocspResponderURL\": \"\",\n    \
         \"externalAccountBindingRequired\": false{validity}\n}}}}\n",
        ip = test_ca.address
    );
    write("pebble.json", &config, state::PUBLIC)
}

/// A CA made for this start only (its key is not kept) and Pebble's certificate from it.
fn https_material(address: Ipv4Addr) -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "certzone cluster docker: test CA HTTPS");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let now = time::OffsetDateTime::now_utc();
    let (not_before, not_after) = (
        now - time::Duration::hours(1),
        now + time::Duration::days(3650),
    );
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = vec![SanType::IpAddress(address.into())];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
    Ok((ca_cert.pem(), leaf_cert.pem(), key.serialize_pem()))
}

/// Waits until Pebble's directory answers, then adds its root to the client's roots.
pub(super) fn fetch_root(
    project: &Project,
    test_ca: TestCa,
    limit: Duration,
) -> Result<(), String> {
    let ca = std::fs::read(project.pebble_dir().join("https-ca.pem"))
        .map_err(|e| format!("failed to read the test CA's HTTPS CA: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("failed to start the runtime: {e}"))?;
    let deadline = std::time::Instant::now() + limit;
    let directory = loop {
        let answer = runtime.block_on(get(&ca, test_ca.address, PEBBLE_PORT, "/dir"));
        match answer {
            Ok(body) => break body,
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(format!(
                    "the test CA's directory (https://{}:{PEBBLE_PORT}/dir) did not answer \
                     within {limit:?}: {e}",
                    test_ca.address
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    if !directory.contains("newOrder") {
        return Err(format!(
            "the test CA's directory is not an ACME directory: {directory}"
        ));
    }
    let root = runtime
        .block_on(get(
            &ca,
            test_ca.address,
            PEBBLE_MANAGEMENT_PORT,
            "/roots/0",
        ))
        .map_err(|e| format!("failed to fetch the test CA's root: {e}"))?;
    add_root(&project.client_dir().join("ca.pem"), &root)
}

/// Adds `root` to the PEM file `path`, keeping the last [`ROOTS_KEPT`].
pub(super) fn add_root(path: &Path, root: &str) -> Result<(), String> {
    let root = CertificateDer::from_pem_slice(root.as_bytes())
        .map_err(|e| format!("the test CA's root is not a PEM certificate: {e}"))?;
    let old = std::fs::read(path).unwrap_or_default();
    let mut roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&old)
        .filter_map(Result::ok)
        .filter(|r| *r != root)
        .collect();
    roots.push(root);
    let keep = roots.len().saturating_sub(ROOTS_KEPT);
    let text: String = roots[keep..].iter().map(|r| pem(r.as_ref())).collect();
    state::write_atomic(path, text.as_bytes(), state::PUBLIC).map_err(|e| e.to_string())
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    // Base64 is ASCII: every chunk is UTF-8.
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// One HTTPS GET to Pebble, its certificate checked against `ca`; the body of a 200.
async fn get(ca: &[u8], address: Ipv4Addr, port: u16, path: &str) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = crate::tls::client_config(roots);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((address, port)).await?;
        let mut tls = connector
            .connect(ServerName::IpAddress(address.into()), tcp)
            .await?;
        // HTTP/1.0: the body ends with the connection, never chunked.
        let request = format!("GET {path} HTTP/1.0\r\nHost: {address}:{port}\r\n\r\n");
        tls.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        tls.take(BODY_MAX).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "no answer within 5 s".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status:?}"));
    }
    Ok(body.to_string())
}
