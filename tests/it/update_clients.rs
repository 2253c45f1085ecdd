//! Other ACME clients: real lego (`--dns rfc2136`) and certbot with its rfc2136
//! plugin (Debian's packages) obtain a certificate for web.example.test from Pebble,
//! sending their DNS-01 TXT records to the master by RFC 2136 UPDATE while Pebble
//! resolves against a worker. Addresses 127.0.17.x. lego runs with `--dns.disable-cp`
//! (its own check resolves the zone's NS names with the system resolver, which a test
//! cannot point at the worker): it tells Pebble as soon as the master says NOERROR, which
//! the master sends once the worker serves the record (`[update] wait-for-workers-ms`).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use certzone::tsig::{Algorithm, TsigKey};
use hickory_proto::rr::Name;

use crate::common::{
    self,
    cluster::{Cluster, DNS},
    kdig,
    pebble::{Pebble, PebbleOptions},
    wait_for,
};

/// A master taking updates from `update-web` (the default grant: TXT at `_acme-challenge`
/// names), one worker, and Pebble resolving against the worker.
fn setup(master: &str, worker: &str, pebble_ip: &str) -> (Cluster, TsigKey, Pebble) {
    let cluster = Cluster::new(master, &[worker], &[0]);
    let key = TsigKey::generate(
        Name::from_ascii("update-web.").unwrap(),
        Algorithm::HmacSha256,
    );
    cluster.scratch.write("update-web.key", &key.to_key_block());
    let config = std::fs::read_to_string(cluster.master_config()).unwrap();
    let update = "\n[update]\n[[update.key]]\ntsig-key-file = \"update-web.key\"\n";
    std::fs::write(cluster.master_config(), config + update).unwrap();
    let pebble_dir = cluster.scratch.path("pebble");
    std::fs::create_dir_all(&pebble_dir).unwrap();
    let resolver = format!("{worker}:{DNS}").parse().unwrap();
    let pebble = Pebble::start(pebble_ip, resolver, &pebble_dir, &PebbleOptions::default());
    (cluster, key, pebble)
}

fn secret(key: &TsigKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&key.secret)
}

/// Runs `command` for at most `secs` seconds (coreutils `timeout`); returns whether it
/// succeeded and what it printed.
fn bounded(command: &mut Command, secs: u64) -> (bool, String) {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let envs: Vec<_> = command
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let out = Command::new("timeout")
        .arg(secs.to_string())
        .arg(program)
        .args(args)
        .envs(envs)
        .output()
        .expect("run timeout (coreutils)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Asserts that `pem` holds a certificate for web.example.test issued by Pebble.
fn assert_certificate(pem: &Path, client: &str) {
    let text = std::fs::read_to_string(pem)
        .unwrap_or_else(|e| panic!("{client} wrote no certificate at {}: {e}", pem.display()));
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-issuer", "-in"])
        .arg(pem)
        .output()
        .expect("run openssl");
    let info = String::from_utf8_lossy(&out.stdout);
    assert!(
        info.contains("DNS:web.example.test") && info.contains("Pebble"),
        "{client}'s certificate is Pebble's, for web.example.test:\n{info}\n{text}"
    );
}

/// The challenge name holds nothing once the client cleaned up.
fn assert_cleaned_up(ip: &str, client: &str) {
    wait_for(
        &format!("{client}'s challenge TXT removed on {ip}"),
        Duration::from_secs(5),
        || {
            kdig(&[
                &format!("@{ip}"),
                "-p",
                &DNS.to_string(),
                "+short",
                "_acme-challenge.web.example.test.",
                "TXT",
            ])
            .trim()
            .is_empty()
            .then_some(())
        },
    );
}

#[test]
fn lego_obtains_a_certificate_through_the_master_while_pebble_asks_a_worker() {
    let _gate = common::gate();
    const MASTER: &str = "127.0.17.1";
    const WORKER: &str = "127.0.17.2";
    let (cluster, key, pebble) = setup(MASTER, WORKER, "127.0.17.3");
    let _master = cluster.start_master();
    let _worker = cluster.start_worker(0);
    let dir = cluster.scratch.path("lego");
    let started = Instant::now();
    let (ok, text) = bounded(
        Command::new("lego")
            .env("LEGO_CA_CERTIFICATES", pebble.https_ca())
            .env("RFC2136_NAMESERVER", format!("{MASTER}:{DNS}"))
            .env("RFC2136_TSIG_KEY", "update-web.")
            .env("RFC2136_TSIG_SECRET", secret(&key))
            .env("RFC2136_TSIG_ALGORITHM", "hmac-sha256.")
            .env("RFC2136_PROPAGATION_TIMEOUT", "10")
            .env("RFC2136_POLLING_INTERVAL", "1")
            .args(["--accept-tos", "--email", "hostmaster@example.test"])
            .args(["--server", &pebble.directory(), "--path"])
            .arg(&dir)
            .args([
                "--dns",
                "rfc2136",
                "--dns.resolvers",
                &format!("{WORKER}:{DNS}"),
            ])
            .args(["--dns.disable-cp", "--domains", "web.example.test", "run"]),
        120,
    );
    println!(
        "lego: certificate after {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(ok, "lego obtains a certificate:\n{text}");
    assert_certificate(&dir.join("certificates/web.example.test.crt"), "lego");
    assert_cleaned_up(WORKER, "lego");
}

#[test]
fn certbot_with_its_rfc2136_plugin_obtains_a_certificate_the_same_way() {
    let _gate = common::gate();
    const MASTER: &str = "127.0.17.4";
    const WORKER: &str = "127.0.17.5";
    let (cluster, key, pebble) = setup(MASTER, WORKER, "127.0.17.6");
    let _master = cluster.start_master();
    let _worker = cluster.start_worker(0);
    let dir = cluster.scratch.path("certbot");
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("rfc2136.ini");
    let ini = format!(
        "dns_rfc2136_server = {MASTER}\ndns_rfc2136_port = {DNS}\ndns_rfc2136_name = update-web.\n\
         dns_rfc2136_secret = {}\ndns_rfc2136_algorithm = HMAC-SHA256\n",
        secret(&key)
    );
    std::fs::write(&credentials, ini).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let started = Instant::now();
    let (ok, text) = bounded(
        Command::new("certbot")
            .env("REQUESTS_CA_BUNDLE", pebble.https_ca())
            .args(["certonly", "--non-interactive", "--agree-tos"])
            .args([
                "--register-unsafely-without-email",
                "--server",
                &pebble.directory(),
            ])
            .arg("--config-dir")
            .arg(dir.join("config"))
            .arg("--work-dir")
            .arg(dir.join("work"))
            .arg("--logs-dir")
            .arg(dir.join("logs"))
            .args([
                "--authenticator",
                "dns-rfc2136",
                "--dns-rfc2136-credentials",
            ])
            .arg(&credentials)
            // The plugin sleeps this long before telling the CA; the workers have the
            // record within milliseconds (tests/update.rs), 1 is its smallest useful value.
            .args([
                "--dns-rfc2136-propagation-seconds",
                "1",
                "-d",
                "web.example.test",
            ]),
        180,
    );
    println!(
        "certbot: certificate after {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(ok, "certbot obtains a certificate:\n{text}");
    assert_certificate(
        &dir.join("config/live/web.example.test/cert.pem"),
        "certbot",
    );
    assert_cleaned_up(WORKER, "certbot");
}
