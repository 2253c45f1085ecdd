use std::path::Path;

use super::{Ca, Cluster, ClusterError, Role};

const BASE: &str = r#"
[cluster]
state-dir = "state"
domain = "example.test"
zone-file = "example.test.zone"
names = ["ns1.example.test"]
"#;

fn parse(nodes: &str, extra: &str) -> Result<Cluster, ClusterError> {
    Cluster::parse(
        &format!("{BASE}{extra}{nodes}"),
        Path::new("/etc/certzone/cluster.toml"),
    )
}

const NODES: &str = r#"
[[node]]
name = "w1"
role = "worker"
address = "::1"
[[node]]
name = "m"
role = "master"
address = "127.0.0.1"
"#;

fn key_of(result: Result<Cluster, ClusterError>) -> String {
    match result {
        Err(ClusterError::Invalid { key, .. }) => key,
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn defaults_and_the_master_first() {
    let cluster = parse(NODES, "").unwrap();
    assert_eq!(cluster.master().name, "m");
    assert_eq!(cluster.master().role, Role::Master);
    assert_eq!(cluster.workers()[0].name, "w1");
    assert_eq!(cluster.domain.to_ascii(), "example.test.");
    assert_eq!(
        cluster.certificate_zone.to_ascii(),
        "_certzone.example.test."
    );
    assert_eq!(cluster.dns(&cluster.workers()[0]).to_string(), "[::1]:53");
    assert_eq!(cluster.ports.tls, 853);
    assert_eq!(cluster.ports.https, 443);
    assert!(matches!(cluster.ca, Ca::Local { leaf_days: None }));
    assert_eq!(cluster.keys_dir, Path::new("/etc/certzone/state/keys"));
    assert!(cluster.generate_keys);
}

#[test]
fn ca_settings_belong_to_their_kind() {
    assert_eq!(
        key_of(parse(NODES, "[ca]\nkind = \"acme\"\n")),
        "ca.directory"
    );
    assert_eq!(
        key_of(parse(NODES, "[ca]\ndirectory = \"https://ca.test/dir\"\n")),
        "ca"
    );
    assert_eq!(
        key_of(parse(
            NODES,
            "[ca]\nkind = \"acme\"\ndirectory = \"https://ca.test/dir\"\nleaf-days = 3\n"
        )),
        "ca.leaf-days"
    );
    let acme = parse(
        NODES,
        "[ca]\nkind = \"acme\"\ndirectory = \"https://ca.test/dir\"\nca-roots = [\"r.pem\"]\n",
    )
    .unwrap();
    match acme.ca {
        Ca::Acme { ca_roots, .. } => {
            assert_eq!(ca_roots, [Path::new("/etc/certzone/r.pem")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nodes_need_one_master_plain_names_and_own_addresses() {
    assert_eq!(key_of(parse("", "")), "node");
    let no_master = NODES.replace("\"master\"", "\"worker\"");
    assert_eq!(key_of(parse(&no_master, "")), "node");
    let bad_name = NODES.replace("\"w1\"", "\"W 1\"");
    assert_eq!(key_of(parse(&bad_name, "")), "node[0].name");
    let unspecified = NODES.replace("\"::1\"", "\"0.0.0.0\"");
    assert_eq!(key_of(parse(&unspecified, "")), "node[0].address");
    let ports = parse(NODES, "[ports]\ndns = 853\n");
    assert_eq!(key_of(ports), "ports");
}

const DOCKER_NODES: &str = r#"
[[node]]
name = "m"
role = "master"
address = "172.30.9.10"
[[node]]
name = "w1"
role = "worker"
address = "172.30.9.11"
"#;

fn message_of(result: Result<Cluster, ClusterError>) -> String {
    match result {
        Err(e @ ClusterError::Invalid { .. }) => e.to_string(),
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn docker_table_defaults_and_free_addresses() {
    let acme = "[ca]\nkind = \"acme\"\n[docker]\nsubnet = \"172.30.9.0/24\"\ntest-ca = true\n";
    let cluster = parse(DOCKER_NODES, acme).unwrap();
    let docker = cluster.docker.unwrap();
    assert_eq!(docker.project, "certzone-example-test");
    assert_eq!(docker.subnet.to_string(), "172.30.9.0/24");
    // The first host address is the gateway's: the test CA and the client take the next.
    assert_eq!(docker.test_ca.unwrap().address.to_string(), "172.30.9.2");
    assert_eq!(docker.client.unwrap().to_string(), "172.30.9.3");
    // ACME without a directory is for docker's test CA only.
    assert!(matches!(
        cluster.ca,
        Ca::Acme {
            directory: None,
            ..
        }
    ));
    assert_eq!(
        key_of(parse(DOCKER_NODES, "[ca]\nkind = \"acme\"\n")),
        "ca.directory"
    );
}

#[test]
fn docker_addresses_lie_in_the_subnet() {
    let docker = "[docker]\nsubnet = \"172.30.9.0/24\"\n";
    let outside = DOCKER_NODES.replace("172.30.9.11", "172.30.10.11");
    let message = message_of(parse(&outside, docker));
    assert!(
        message.contains("node[1].address")
            && message
                .contains("node \"w1\": 172.30.10.11 is outside the [docker] subnet 172.30.9.0/24"),
        "{message}"
    );
    let gateway = DOCKER_NODES.replace("172.30.9.11", "172.30.9.1");
    assert!(message_of(parse(&gateway, docker)).contains("its gateway (172.30.9.1)"));
    let v6 = DOCKER_NODES.replace("172.30.9.11", "fd00::11");
    assert!(message_of(parse(&v6, docker)).contains("is IPv6"));
    let host_bits = parse(DOCKER_NODES, "[docker]\nsubnet = \"172.30.9.4/24\"\n");
    assert!(message_of(host_bits).contains("write 172.30.9.0/24"));
    let taken = "[docker]\nsubnet = \"172.30.9.0/24\"\nclient-address = \"172.30.9.10\"\n";
    assert_eq!(key_of(parse(DOCKER_NODES, taken)), "docker.client-address");
}

#[test]
fn docker_test_ca_project_and_service_names_are_checked() {
    let subnet = "[docker]\nsubnet = \"172.30.9.0/24\"\n";
    assert_eq!(
        key_of(parse(DOCKER_NODES, &format!("{subnet}test-ca = true\n"))),
        "docker.test-ca"
    );
    assert_eq!(
        key_of(parse(
            DOCKER_NODES,
            &format!("{subnet}project = \"Bad Name\"\n")
        )),
        "docker.project"
    );
    let client = DOCKER_NODES.replace("\"w1\"", "\"client\"");
    assert_eq!(key_of(parse(&client, subnet)), "node[1].name");
    let unknown = parse(DOCKER_NODES, &format!("{subnet}images = \"x\"\n"));
    assert!(matches!(unknown, Err(ClusterError::Syntax { .. })));
}

#[test]
fn metrics_port_goes_to_every_node_and_must_be_its_own() {
    let cluster = parse(NODES, "[ports]\nmetrics = 9153\n").unwrap();
    for node in &cluster.nodes {
        assert_eq!(cluster.metrics(node).map(|a| a.port()), Some(9153));
    }
    assert!(
        parse(NODES, "")
            .unwrap()
            .metrics(&cluster.nodes[0])
            .is_none()
    );
    let clash = parse(NODES, "[ports]\nmetrics = 853\n");
    assert_eq!(key_of(clash), "ports.metrics");
}

#[test]
fn update_keys_are_made_once_0600_and_given_to_the_master_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("zones/example.test.zone"),
        dir.path().join("example.test.zone"),
    )
    .unwrap();
    let update = "[update]\n[[update.key]]\nname = \"web\"\n[[update.key]]\nname = \"host\"\n\
                  grant = [\"name host.example.test. A\"]\n";
    let text = format!("{BASE}{NODES}{update}");
    let cluster = Cluster::parse(&text, &dir.path().join("cluster.toml")).unwrap();
    let rendered = super::render::render(&cluster).unwrap();
    let key_file = cluster.keys_dir.join("update-web.key");
    let first = std::fs::read_to_string(&key_file).unwrap();
    assert!(first.contains("key \"update-web\""), "{first}");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    super::render::render(&cluster).unwrap();
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        first,
        "made once"
    );
    for node in rendered {
        let config = std::fs::read_to_string(&node.config).unwrap();
        let copied = node.dir.join("update-host.key").exists();
        if node.node.role == Role::Master {
            assert!(config.contains("[[update.key]]\ntsig-key-file = \"update-web.key\"\n"));
            assert!(
                config.contains("grant = [\"name host.example.test. A\"]"),
                "{config}"
            );
            assert!(copied);
        } else {
            assert!(!config.contains("[update]") && !copied, "{config}");
        }
    }
    let bad =
        format!("{BASE}{NODES}[update]\n[[update.key]]\nname = \"w\"\ngrant = [\"zone x A\"]\n");
    let error = Cluster::parse(&bad, &dir.path().join("cluster.toml")).unwrap_err();
    assert!(error.to_string().contains("update.key[0].grant"), "{error}");
}
