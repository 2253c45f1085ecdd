//! A master and workers as real processes on 127.0.0.x: keys made here, one config each.
//! The master serves `example.test` and its certificate (PEM files the test controls, so a
//! renewal is "new files + SIGHUP"); workers replicate both.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use certzone::{
    bundle::{self, WorkerSecretKey},
    tsig::{Algorithm, TsigKey},
};
use hickory_proto::rr::Name;

use super::{Node, Scratch, client::DotClient, wait_for};

/// DNS, DoT and DoH ports of every node in a cluster test.
pub const DNS: u16 = 5400;
pub const DOT: u16 = 8540;
pub const DOH: u16 = 4440;
pub const NAME: &str = "ns1.example.test";

/// A bundle a test serves in the master's place.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    pub format: u8,
    pub version: u64,
    pub published: u64,
    pub cluster: String,
    /// signed by this key instead of the cluster's
    pub signer: Option<bundle::SigningKey>,
    /// the zone's SOA serial
    pub serial: u32,
}

impl BundleSpec {
    /// A genuine format 2 bundle of `cluster` at `version`, published then, under `serial`.
    pub fn genuine(cluster: &str, version: u64, serial: u32) -> Self {
        Self {
            format: 2,
            version,
            published: version,
            cluster: cluster.into(),
            signer: None,
            serial,
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub struct Cluster {
    pub scratch: Scratch,
    pub master_ip: String,
    pub worker_ips: Vec<String>,
    pub tsig: TsigKey,
    pub signing: bundle::SigningKey,
    pub workers: Vec<WorkerSecretKey>,
    ca: (rcgen::Certificate, rcgen::KeyPair),
}

impl Cluster {
    /// Keys and configs for a master on `master_ip` and one worker per `worker_ips`;
    /// `notified` lists the workers the master sends NOTIFY to (by index).
    /// The certificate zone's SOA refresh is 2 s, so workers not notified still catch up.
    pub fn new(master_ip: &str, worker_ips: &[&str], notified: &[usize]) -> Self {
        Self::with_refresh(master_ip, worker_ips, notified, 2)
    }

    /// As `new`, with the certificate zone's SOA refresh set to `refresh` seconds.
    pub fn with_refresh(
        master_ip: &str,
        worker_ips: &[&str],
        notified: &[usize],
        refresh: u32,
    ) -> Self {
        let scratch = Scratch::new();
        let mut rng = rand_core::OsRng;
        let signing = bundle::generate_signing_key(&mut rng);
        scratch.write(
            "signing.pem",
            &bundle::signing_key_to_pem(&signing).unwrap(),
        );
        scratch.write(
            "signing.pub",
            &bundle::verifying_key_to_pem(signing.verifying_key()).unwrap(),
        );
        let tsig = TsigKey::generate(
            Name::from_ascii("transfer.").unwrap(),
            Algorithm::HmacSha256,
        );
        scratch.write("transfer.key", &tsig.to_key_block());
        let workers: Vec<WorkerSecretKey> = worker_ips
            .iter()
            .map(|_| WorkerSecretKey::generate(&mut rng))
            .collect();
        let ca = test_ca();
        scratch.write("ca.pem", &ca.0.pem());
        let cluster = Self {
            scratch,
            master_ip: master_ip.to_string(),
            worker_ips: worker_ips.iter().map(|s| s.to_string()).collect(),
            tsig,
            signing,
            workers,
            ca,
        };
        cluster.renew_files();
        cluster.write_configs(notified, refresh);
        cluster
    }

    fn write_configs(&self, notified: &[usize], refresh: u32) {
        let mut workers = String::new();
        for (i, worker) in self.workers.iter().enumerate() {
            self.scratch
                .write(&format!("worker{i}.key"), &worker.to_pem().unwrap());
            self.scratch.write(
                &format!("worker{i}.pub"),
                &worker.public_key().to_pem().unwrap(),
            );
            workers += &format!(
                "[[certificate-zone.worker]]\nname = \"worker{i}\"\npublic-key = \"worker{i}.pub\"\n"
            );
        }
        let notify: Vec<String> = notified
            .iter()
            .map(|i| format!("\"{}:{DNS}\"", self.worker_ips[*i]))
            .collect();
        let master = format!(
            "{}{}\n[certificate-zone]\nname = \"_certzone.example.test.\"\nsigning-key = \"signing.pem\"\nrefresh-secs = {refresh}\nretry-secs = 1\n{workers}\n[transfer]\ntsig-key-file = \"transfer.key\"\nnotify = [{}]\n",
            listen(&self.master_ip),
            "[tls]\nnames = [\"ns1.example.test\"]\nsource = \"files\"\ncert-file = \"tls.pem\"\nkey-file = \"tls.key\"\n\n[[zone]]\nname = \"example.test.\"\nfile = \"example.test.zone\"\n",
            notify.join(", ")
        )
        .replace("state-dir = \"STATE\"", "state-dir = \"master-state\"");
        self.scratch.write("master.toml", &master);
        for (i, ip) in self.worker_ips.iter().enumerate() {
            let config = format!(
                "role = \"worker\"\n{}[tls]\nnames = [\"{NAME}\"]\nsource = \"certificate-zone\"\n\n[primary]\naddress = \"{}:{DNS}\"\ntsig-key-file = \"transfer.key\"\n\n[certificate-zone]\nname = \"_certzone.example.test.\"\nsigning-public-key = \"signing.pub\"\nsealing-key = \"worker{i}.key\"\n\n[[secondary]]\nname = \"example.test.\"\n",
                listen(ip),
                self.master_ip
            )
            .replace("state-dir = \"STATE\"", &format!("state-dir = \"worker{i}-state\""));
            self.scratch.write(&format!("worker{i}.toml"), &config);
        }
    }

    pub fn master_config(&self) -> PathBuf {
        self.scratch.path("master.toml")
    }

    /// Rewrites every node's config (master first, then the workers) with `edit`.
    pub fn edit_configs(&self, edit: impl Fn(&str) -> String) {
        let mut paths = vec![self.master_config()];
        paths.extend((0..self.worker_ips.len()).map(|i| self.worker_config(i)));
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, edit(&text)).unwrap();
        }
    }

    /// Gives master and workers the cluster id `id` (`[certificate-zone] cluster-id`).
    pub fn set_cluster_id(&self, id: &str) {
        self.edit_configs(|text| {
            text.replace(
                "[certificate-zone]\n",
                &format!("[certificate-zone]\ncluster-id = \"{id}\"\n"),
            )
        });
    }

    /// Zone text (SOA with `bundle.serial`, NS, the records) of a certificate zone as a
    /// primary would serve it: a fresh leaf for the cluster's name from the cluster's CA,
    /// sealed for every worker, signed as `bundle` says.
    pub fn certificate_zone_text(&self, bundle: &BundleSpec) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![NAME.to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.ca.0, &self.ca.1).unwrap();
        let input = bundle::BundleInput {
            zone: Name::from_ascii("_certzone.example.test.").unwrap(),
            ttl: 60,
            format: bundle.format,
            minimum_format: bundle.format,
            version: bundle.version,
            published: bundle.published,
            cluster_id: bundle.cluster.clone(),
            names: vec![NAME.to_string()],
            chain: vec![cert.der().to_vec()],
            private_key: rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
            workers: self
                .workers
                .iter()
                .map(WorkerSecretKey::public_key)
                .collect(),
        };
        let signer = bundle.signer.as_ref().unwrap_or(&self.signing);
        let records = bundle::publish(&input, signer, &mut rand_core::OsRng).unwrap();
        format!(
            "$TTL 60\n@ IN SOA ns1.example.test. hm.example.test. {} 2 1 600 60\n@ IN NS ns1.example.test.\n{}",
            bundle.serial,
            bundle::zone_text(&records)
        )
    }

    pub fn worker_config(&self, i: usize) -> PathBuf {
        self.scratch.path(&format!("worker{i}.toml"))
    }

    pub fn start_master(&self) -> Node {
        Node::start(&self.master_config())
    }

    pub fn start_worker(&self, i: usize) -> Node {
        Node::start(&self.worker_config(i))
    }

    /// A fresh leaf for ns1.example.test in the master's PEM files; returns its DER.
    pub fn renew_files(&self) -> Vec<u8> {
        self.renew_files_until(None)
    }

    /// As [`Cluster::renew_files`], the leaf expiring at `not_after` when given.
    pub fn renew_files_until(&self, not_after: Option<time::OffsetDateTime>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![NAME.to_string()]).unwrap();
        if let Some(not_after) = not_after {
            params.not_after = not_after;
        }
        let cert = params.signed_by(&key, &self.ca.0, &self.ca.1).unwrap();
        let dir = self.scratch.dir.path();
        std::fs::write(dir.join("tls.key.new"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("tls.pem.new"), cert.pem()).unwrap();
        std::fs::rename(dir.join("tls.key.new"), dir.join("tls.key")).unwrap();
        std::fs::rename(dir.join("tls.pem.new"), dir.join("tls.pem")).unwrap();
        cert.der().to_vec()
    }

    pub fn ca(&self) -> PathBuf {
        self.scratch.path("ca.pem")
    }

    pub fn dot(&self, ip: &str) -> SocketAddr {
        format!("{ip}:{DOT}").parse().unwrap()
    }

    /// The leaf a new DoT handshake with `ip` gets, verified against the test CA and name.
    pub fn served_leaf(&self, ip: &str) -> Option<Vec<u8>> {
        DotClient::connect(self.dot(ip), &self.ca(), NAME)
            .ok()
            .map(|c| c.peer_leaf())
    }

    /// Waits until worker `ip` serves `leaf` over DoT.
    pub fn wait_serving(&self, ip: &str, leaf: &[u8], limit: Duration) {
        wait_for(
            &format!("{ip} to serve the expected certificate over DoT"),
            limit,
            || (self.served_leaf(ip).as_deref() == Some(leaf)).then_some(()),
        );
    }
}

fn listen(ip: &str) -> String {
    format!(
        "state-dir = \"STATE\"\n\n[listen]\nudp = [\"{ip}:{DNS}\"]\ntcp = [\"{ip}:{DNS}\"]\ntls = [\"{ip}:{DOT}\"]\nhttps = [\"{ip}:{DOH}\"]\n\n"
    )
}

fn test_ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cluster test CA");
    (params.self_signed(&key).unwrap(), key)
}
