use std::{path::Path, time::Duration};

use super::*;

const FULL: &str = r#"
role = "master"
state-dir = "state"

[listen]
udp = ["127.0.0.1:5300"]
tcp = ["127.0.0.1:5300"]
tls = ["127.0.0.1:8530"]
https = ["127.0.0.1:4430"]

[tls]
names = ["ns1.example.test"]

[[zone]]
name = "example.test"
file = "example.test.zone"

[forward]
timeout-ms = 500

[[forward.upstream]]
address = "127.0.0.2:853"
protocol = "tls"
tls-name = "ns2.example.test"

[limits]
connections = 2048

[rrl]
responses-per-second = 20
"#;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("/etc/certzone/node.toml"))
}

#[test]
fn full_file_parses_and_paths_are_relative_to_it() {
    let config = parse(FULL).expect("valid config");
    assert_eq!(config.state_dir, Path::new("/etc/certzone/state"));
    assert_eq!(
        config.zones[0].file,
        Path::new("/etc/certzone/example.test.zone")
    );
    assert_eq!(config.zones[0].origin.to_string(), "example.test.");
    assert!(matches!(
        config.tls.unwrap().source,
        CertificateSource::LocalCa { leaf_days: 90 }
    ));
    let forward = config.forward.unwrap();
    assert_eq!(forward.timeout, Duration::from_millis(500));
    assert!(matches!(
        forward.upstreams[0].transport,
        UpstreamTransport::Tls { .. }
    ));
}

/// Every table of the full file rejects a key it does not know, naming it and its line.
#[test]
fn unknown_key_in_every_table_is_rejected() {
    let tables = [
        "",
        "[listen]",
        "[tls]",
        "[[zone]]",
        "[forward]",
        "[[forward.upstream]]",
        "[limits]",
        "[rrl]",
    ];
    for table in tables {
        let text = if table.is_empty() {
            format!("bogus-key = 1\n{FULL}")
        } else {
            FULL.replacen(table, &format!("{table}\nbogus-key = 1"), 1)
        };
        let err = parse(&text).expect_err(table).to_string();
        assert!(err.contains("bogus-key"), "{table}: {err}");
        assert!(err.contains("line "), "{table}: {err}");
    }
}

#[test]
fn bad_address_names_its_line() {
    let text = FULL.replace("\"127.0.0.1:8530\"", "\"127.0.0.1:notaport\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("line 8"), "{err}");
    assert!(err.contains("socket address"), "{err}");
}

#[test]
fn prepared_answers_are_on_unless_turned_off() {
    assert!(parse(FULL).unwrap().listen.prepared_answers);
    let text = FULL.replace("[listen]\n", "[listen]\nprepared-answers = false\n");
    assert!(!parse(&text).unwrap().listen.prepared_answers);
    let text = FULL.replace("[listen]\n", "[listen]\nprepared-answers = \"no\"\n");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("line 6"), "{err}");
}

#[test]
fn clashing_stream_listeners_are_rejected() {
    let text = FULL.replace("\"127.0.0.1:8530\"", "\"127.0.0.1:5300\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("listen.tls"), "{err}");
}

#[test]
fn tls_listener_without_tls_section_is_rejected() {
    let start = FULL.find("[tls]").unwrap();
    let end = FULL.find("[[zone]]").unwrap();
    let text = format!("{}{}", &FULL[..start], &FULL[end..]);
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("key `tls`"), "{err}");
}

#[test]
fn files_source_needs_both_files() {
    let text = FULL.replace(
        "names = [\"ns1.example.test\"]",
        "names = [\"ns1.example.test\"]\nsource = \"files\"\ncert-file = \"c.pem\"",
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("tls.key-file"), "{err}");
}

#[test]
fn dot_upstream_needs_a_name() {
    let text = FULL.replace("tls-name = \"ns2.example.test\"", "");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("forward.upstream[0].tls-name"), "{err}");
}

#[test]
fn duplicate_zone_is_rejected() {
    let text = format!("{FULL}\n[[zone]]\nname = \"EXAMPLE.test.\"\nfile = \"x.zone\"\n");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("zone[1].name"), "{err}");
}

#[test]
fn unknown_role_is_rejected() {
    let text = FULL.replace("role = \"master\"", "role = \"boss\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("boss") && err.contains("line 2"), "{err}");
}

#[test]
fn limits_have_defaults_and_bad_ones_name_their_key() {
    let config = parse(FULL).unwrap();
    let defaults = Limits::default();
    assert_eq!(config.limits.connections, 2048);
    assert_eq!(config.limits.udp_max_payload, 1232);
    assert_eq!(config.limits.idle_timeout, defaults.idle_timeout);
    let rrl = config.rrl.unwrap();
    assert_eq!(
        (
            rrl.responses_per_second,
            rrl.slip,
            rrl.ipv4_prefix_length,
            rrl.ipv6_prefix_length
        ),
        (20, 2, 24, 56)
    );
    let forward = parse(FULL).unwrap().forward.unwrap();
    assert!(
        forward
            .allow
            .iter()
            .any(|p| p.contains("127.0.0.1".parse().unwrap()))
    );
    assert!(
        !forward
            .allow
            .iter()
            .any(|p| p.contains("192.0.2.1".parse().unwrap()))
    );
    for (from, to, key) in [
        (
            "connections = 2048",
            "connections = 0",
            "limits.connections",
        ),
        (
            "connections = 2048",
            "udp-max-payload = 100",
            "limits.udp-max-payload",
        ),
        (
            "connections = 2048",
            "idle-timeout-ms = 0",
            "limits.idle-timeout-ms",
        ),
        (
            "responses-per-second = 20",
            "responses-per-second = 0",
            "rrl.responses-per-second",
        ),
        (
            "responses-per-second = 20",
            "responses-per-second = 5\nipv4-prefix-length = 33",
            "rrl.ipv4-prefix-length",
        ),
        (
            "timeout-ms = 500",
            "timeout-ms = 500\nallow = [\"10.0.0.0/99\"]",
            "forward.allow",
        ),
        (
            "timeout-ms = 500",
            "timeout-ms = 500\nmax-in-flight = 0",
            "forward.max-in-flight",
        ),
    ] {
        let err = parse(&FULL.replace(from, to)).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

const WORKER: &str = r#"
role = "worker"
state-dir = "state"

[listen]
udp = ["127.0.0.2:5300"]
tls = ["127.0.0.2:8530"]

[tls]
names = ["ns1.example.test"]
source = "certificate-zone"

[primary]
address = "127.0.0.1:5300"
tsig-key-file = "transfer.key"

[certificate-zone]
name = "_certzone.example.test."
signing-public-key = "signing.pub"
sealing-key = "worker.key"
"#;

fn worker_with(lines: &str) -> Result<Config, ConfigErrors> {
    parse(&WORKER.replace(
        "[certificate-zone]\n",
        &format!("[certificate-zone]\n{lines}\n"),
    ))
}

#[test]
fn worker_floors_and_cluster_id() {
    let config = worker_with("cluster-id = \"prod-eu\"\nminimum-version = 42\nminimum-format = 2\nminimum-published = \"2026-01-01T00:00:00Z\"")
        .expect("valid");
    let reader = config.worker().unwrap().certificate.clone().unwrap();
    assert_eq!(reader.cluster_id, "prod-eu");
    assert_eq!(
        reader.floors,
        Floors {
            version: 42,
            published: 1_767_225_600,
            format: 2
        }
    );
    let unix = worker_with("minimum-published = 1767225600").unwrap();
    assert_eq!(
        unix.worker()
            .unwrap()
            .certificate
            .clone()
            .unwrap()
            .floors
            .published,
        1_767_225_600
    );
    let defaults = worker_with("")
        .unwrap()
        .worker()
        .unwrap()
        .certificate
        .clone()
        .unwrap();
    assert_eq!(defaults.cluster_id, "");
    assert_eq!(
        defaults.floors,
        Floors {
            version: 0,
            published: 0,
            format: 1
        }
    );
}

#[test]
fn bad_certificate_zone_values_name_their_key() {
    for (lines, key) in [
        ("cluster-id = \"Prod\"", "certificate-zone.cluster-id"),
        ("minimum-format = 3", "certificate-zone.minimum-format"),
        (
            "minimum-published = \"yesterday\"",
            "certificate-zone.minimum-published",
        ),
        ("format = 2", "certificate-zone.signing-key"),
    ] {
        let err = worker_with(lines).unwrap_err().to_string();
        assert!(err.contains(key), "{lines}: {err}");
    }
    let master = |lines: &str| {
        parse(&format!(
            "{FULL}\n[certificate-zone]\nsigning-key = \"signing.key\"\n{lines}\n"
        ))
    };
    let ok = master("cluster-id = \"prod\"")
        .unwrap()
        .master()
        .unwrap()
        .certificate_zone
        .clone()
        .unwrap();
    assert_eq!((ok.cluster_id.as_str(), ok.format), ("prod", 2));
    for (lines, key) in [
        ("format = 3", "certificate-zone.format"),
        (
            "format = 1\ncluster-id = \"prod\"",
            "certificate-zone.cluster-id",
        ),
        ("minimum-version = 3", "certificate-zone.sealing-key"),
    ] {
        let err = master(lines).unwrap_err().to_string();
        assert!(err.contains(key), "{lines}: {err}");
    }
}

/// check-config lists every config-level problem at once, not the first alone.
#[test]
fn every_problem_is_listed_at_once() {
    let text = FULL
        .replace(
            "names = [\"ns1.example.test\"]",
            "names = [\"ns1.example.test\"]\nsource = \"files\"\ncert-file = \"c.pem\"",
        )
        .replace("tls = [\"127.0.0.1:8530\"]", "tls = [\"127.0.0.1:5300\"]")
        .replace("tls-name = \"ns2.example.test\"", "");
    let errors = parse(&text).unwrap_err();
    let text = errors.to_string();
    for needle in [
        "127.0.0.1:5300 is already used",
        "forward.upstream[0].tls-name",
        "tls.key-file`: missing",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    assert!(
        !text.contains("need a [tls] section"),
        "nothing that follows: {text}"
    );
}

#[test]
fn a_workers_certificate_zone_defaults_under_its_first_secondary() {
    let text = r#"
role = "worker"
state-dir = "state"
[listen]
udp = ["127.0.0.2:5300"]
[tls]
names = ["ns1.example.test"]
source = "certificate-zone"
[primary]
address = "127.0.0.1:5300"
tsig-key-file = "transfer.key"
[certificate-zone]
signing-public-key = "signing.pub"
sealing-key = "sealing.key"
[[secondary]]
name = "example.test"
"#;
    let config = parse(text).expect("valid");
    let reader = config.worker().unwrap().certificate.clone().unwrap();
    assert_eq!(reader.origin.to_string(), "_certzone.example.test.");
}

/// Addresses among the names: served by the local CA on a node of its own, refused where
/// the names travel in the certificate zone (the master's bundle, a worker's checks).
#[test]
fn ip_names_only_where_nothing_reads_them_as_names() {
    let with_ip = FULL.replace(
        "names = [\"ns1.example.test\"]",
        "names = [\"ns1.example.test\", \"127.0.0.7\", \"::1\"]",
    );
    parse(&with_ip).expect("a local CA node of its own serves addresses");
    let publishing = format!("{with_ip}\n[certificate-zone]\nsigning-key = \"signing.pem\"\n");
    let text = parse(&publishing).unwrap_err().to_string();
    assert!(
        text.contains("`tls.names`: `127.0.0.7`, `::1` is an IP address: a master publishing"),
        "{text}"
    );
}

#[test]
fn metrics_listen_is_off_unless_given_and_never_a_dns_listener() {
    assert_eq!(parse(FULL).unwrap().metrics, None);
    let on = format!("{FULL}\n[metrics]\nlisten = \"127.0.0.1:9153\"\n");
    assert_eq!(
        parse(&on).unwrap().metrics,
        Some("127.0.0.1:9153".parse().unwrap())
    );
    let clash = format!("{FULL}\n[metrics]\nlisten = \"127.0.0.1:8530\"\n");
    let message = parse(&clash).unwrap_err().to_string();
    assert!(
        message.contains("metrics.listen") && message.contains("already a DNS listener"),
        "{message}"
    );
    let unknown = format!("{FULL}\n[metrics]\nlisten = \"127.0.0.1:9153\"\npath = \"/m\"\n");
    let message = parse(&unknown).unwrap_err().to_string();
    assert!(message.contains("unknown field `path`"), "{message}");
}

#[test]
fn publish_takes_ports_from_the_listeners_and_refuses_what_it_cannot_do() {
    let publish = "\n[publish]\nsvcb = true\ntlsa = true\nttl = 60\n";
    let config = parse(&format!("{FULL}{publish}")).unwrap();
    let publish_config = config.master().unwrap().publish.clone().unwrap();
    assert_eq!(publish_config.dot_port, Some(8530));
    assert_eq!(publish_config.doh_port, Some(4430));
    assert_eq!(publish_config.doh_path, "/dns-query{?dns}");

    let refused = |text: String, key: &str, words: &str| {
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains(&format!("key `{key}`")) && err.contains(words),
            "{err}"
        );
    };
    let files = FULL.replace(
        "names = [\"ns1.example.test\"]",
        "names = [\"ns1.example.test\"]\nsource = \"files\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"",
    );
    refused(format!("{files}{publish}"), "publish.tlsa", "next key");
    refused(
        format!("{FULL}\n[publish]\ncaa = true\n"),
        "publish.caa",
        "tls.source = \"acme\"",
    );
    refused(
        format!("{FULL}{publish}doh-path = \"/dns-query\"\n"),
        "publish.doh-path",
        "{?dns}",
    );
    refused(
        format!("{FULL}\n[publish]\nttl = 0\n"),
        "publish.ttl",
        "above 0",
    );
    let outside = FULL.replace("\"ns1.example.test\"", "\"ns1.other.test\"");
    refused(
        format!("{outside}{publish}"),
        "publish",
        "inside one of this node's zones",
    );
}

#[test]
fn update_keys_take_grants_and_belong_to_masters() {
    let update = "\n[update]\n[[update.key]]\ntsig-key-file = \"web.key\"\n[[update.key]]\n\
                  tsig-key-file = \"host.key\"\ngrant = [\"name host.example.test A\"]\n";
    let config = parse(&format!("{FULL}{update}")).expect("valid [update]");
    let update_config = config
        .master()
        .unwrap()
        .update
        .clone()
        .expect("[update] kept");
    assert_eq!(
        update_config.keys[0].file,
        Path::new("/etc/certzone/web.key")
    );
    assert_eq!(
        update_config.keys[0].grants,
        [Grant::parse(DEFAULT_GRANT).unwrap()]
    );
    assert_eq!(update_config.wait_for_workers, Duration::from_secs(2));
    let bad = format!(
        "{FULL}\n[update]\n[[update.key]]\ntsig-key-file = \"k\"\ngrant = [\"zone a. A\"]\n"
    );
    let errors = parse(&bad).unwrap_err().to_string();
    assert!(errors.contains("key `update.key[0].grant`"), "{errors}");
    let worker = format!(
        "role = \"worker\"\n{}{update}",
        FULL.replace("role = \"master\"\n", "")
    );
    let errors = parse(&worker).unwrap_err().to_string();
    assert!(errors.contains("key `update`"), "{errors}");
}
