use std::path::Path;

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

fn parse(text: &str) -> Result<Config, ConfigError> {
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
