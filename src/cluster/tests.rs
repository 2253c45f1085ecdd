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
