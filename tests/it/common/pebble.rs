//! Pebble, the ACME test CA (Debian package `pebble`), as a child process on loopback.
//!
//! The package ships no certificates for Pebble's own HTTPS: a throwaway CA and a
//! certificate for the listen address are made here, and only the test trusts them.
//! Pebble's issuing root is new at every start; [`Pebble::root`] fetches it.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use rustls::{ClientConnection, StreamOwned, pki_types::ServerName};

use super::{client::tls_config, wait_for};

/// Options that differ between tests.
#[derive(Clone, Debug, Default)]
pub struct PebbleOptions {
    /// Seconds a certificate lives; `None` for Pebble's default (years).
    pub validity_secs: Option<u64>,
    /// Percent of good nonces rejected (Pebble's PEBBLE_WFE_NONCEREJECT).
    pub nonce_reject: u8,
    /// `(kid, base64url key)` to require External Account Binding.
    pub eab: Option<(String, String)>,
}

pub struct Pebble {
    child: Child,
    pub ip: String,
    pub dir: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Pebble {
    /// Starts Pebble on `ip` (ports 14000 and 15000), validating against `dns`, and waits
    /// until its directory answers. Its HTTPS CA is written to `dir/pebble-https-ca.pem`.
    pub fn start(ip: &str, dns: SocketAddr, dir: &Path, options: &PebbleOptions) -> Self {
        if !dir.join("pebble-https-ca.pem").exists() {
            write_https_material(ip, dir);
        }
        let config = dir.join("pebble.json");
        std::fs::write(&config, config_json(ip, dir, options)).unwrap();
        let mut child = Command::new("pebble")
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", options.nonce_reject.to_string())
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pebble (installed by tests/setup.sh)");
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let pebble = Self {
            child,
            ip: ip.to_string(),
            dir: dir.to_path_buf(),
            log,
        };
        wait_for(
            "Pebble's directory to answer",
            Duration::from_secs(20),
            || {
                pebble
                    .get(14000, "/dir")
                    .ok()
                    .filter(|(status, _)| *status == 200)
            },
        );
        pebble
    }

    pub fn directory(&self) -> String {
        format!("https://{}:14000/dir", self.ip)
    }

    pub fn https_ca(&self) -> PathBuf {
        self.dir.join("pebble-https-ca.pem")
    }

    /// Pebble's issuing root (new at every start), written to `dir/pebble-root.pem`.
    pub fn root(&self) -> PathBuf {
        let (status, body) = self
            .get(15000, "/roots/0")
            .expect("Pebble's management API");
        assert_eq!(status, 200, "GET /roots/0: {body}");
        let path = self.dir.join("pebble-root.pem");
        std::fs::write(&path, body).unwrap();
        path
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops Pebble (its state is gone with it).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A plain HTTP/1.1 GET over TLS, trusting only the test's HTTPS CA.
    fn get(&self, port: u16, path: &str) -> std::io::Result<(u16, String)> {
        let addr: SocketAddr = format!("{}:{port}", self.ip).parse().unwrap();
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let name = ServerName::try_from(self.ip.clone()).unwrap();
        let conn = ClientConnection::new(tls_config(&self.https_ca(), b"http/1.1"), name).unwrap();
        let mut stream = StreamOwned::new(conn, tcp);
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.ip
        )?;
        let mut response = String::new();
        // Pebble closes without a TLS close_notify; what was read is all there is.
        let _ = stream.read_to_string(&mut response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {response:?}")))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- pebble {} log ---\n{}", self.ip, self.log());
        }
    }
}

fn write_https_material(ip: &str, dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pebble HTTPS test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec![ip.to_string(), "localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("pebble-https-ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("pebble-https.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble-https.key"), key.serialize_pem()).unwrap();
}

fn config_json(ip: &str, dir: &Path, options: &PebbleOptions) -> String {
    let mut pebble = serde_json::json!({
        "listenAddress": format!("{ip}:14000"),
        "managementListenAddress": format!("{ip}:15000"),
        "certificate": dir.join("pebble-https.pem"),
        "privateKey": dir.join("pebble-https.key"),
        "httpPort": 5002,
        "tlsPort": 5001,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": options.eab.is_some(),
    });
    if let Some(validity) = options.validity_secs {
        pebble["certificateValidityPeriod"] = validity.into();
    }
    if let Some((kid, key)) = &options.eab {
        pebble["externalAccountMACKeys"] = serde_json::json!({ kid: key });
    }
    serde_json::json!({ "pebble": pebble }).to_string()
}
