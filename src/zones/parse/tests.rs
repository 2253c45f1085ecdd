use super::*;

const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster (
        1 ; serial
        3600 600 86400 300 )
  IN NS ns1
ns1 IN A 127.0.0.1
www IN A 127.0.0.2
txt IN TXT \"a ; not a comment\" \"(\"
";

fn origin() -> Name {
    Name::from_ascii("example.test.").unwrap()
}

/// Every record, as text, sorted: what two readers are compared by.
fn hickory_reads(origin: &Name, text: &str, path: &Path) -> Vec<String> {
    let (_, sets) = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
        .parse()
        .unwrap();
    let mut records: Vec<String> = sets
        .into_values()
        .flat_map(|s| s.into_iter())
        .map(|r| format!("{r} class {}", r.dns_class))
        .collect();
    records.sort();
    records.dedup();
    records
}

fn we_read(origin: &Name, text: &str, path: &Path) -> Vec<String> {
    let zone = parse(origin, text, path).unwrap();
    let mut records: Vec<String> = zone
        .records()
        .iter()
        .map(|r| format!("{r} class {}", r.dns_class))
        .collect();
    records.sort();
    records
}

/// Context carried between entries: no `$TTL` (the last TTL goes on), `$ORIGIN`
/// changes, owners left blank after a multi-line record, TTL units, quoting.
const CONTEXT: &str = "$ORIGIN example.test.
@ 3600 IN SOA ns1 hostmaster ( 7 3600 600 86400 300 ) ; comment
  IN NS ns1.example.test.
ns1 IN A 192.0.2.1
  1h IN AAAA 2001:db8::1
  IN TXT \"after ( and ; inside\" plain
$ORIGIN sub.example.test.
www IN A 192.0.2.2
  300 IN MX 10 www
$TTL 1d
late IN A 192.0.2.3
later 60 IN A 192.0.2.4
  IN A 192.0.2.5
$ORIGIN example.test.
back IN CNAME www.sub
";

/// The types read without hickory's parser, in the forms a file may give them.
const COMMON: &str = "$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 300
@ IN NS ns1
@ NS ns2.example.test.
@ IN NS Other.Test.
ns1 IN A 192.0.2.1
ns2 A 192.0.2.2
Mixed.Case 60 IN A 192.0.2.3
v6 IN AAAA 2001:db8::1
v6 IN AAAA ::ffff:192.0.2.9
v6b IN AAAA ( 2001:db8:0:0:0:0:0:2 )
@ IN MX 10 mail
@ IN MX ( 20 ; backup
    mail2 )
@ IN MX 0 .
mail IN CNAME ns1
alias 120 CNAME example.test.
1 IN PTR host.example.test.
2 IN PTR host
";

#[test]
fn the_common_types_read_as_hickory_reads_them() {
    let path = Path::new("common.zone");
    let want = hickory_reads(&origin(), COMMON, path);
    assert_eq!(want.len(), 17, "{want:?}");
    assert_eq!(we_read(&origin(), COMMON, path), want);
    // What does not read as plain data still gets hickory's message, on its line.
    let bad = format!("{COMMON}bad IN A 192.0.2.256\n");
    match parse(&origin(), &bad, path) {
        Err(ZoneError::Syntax {
            line: 21, message, ..
        }) => {
            assert!(message.contains("IPv4 address"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_the_records_hickorys_parser_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        ("fast.test.", "tests/zones/fast-path.zone"),
        ("example.test.", "zones/example.test.zone"),
        ("example.test.", "tests/docker/example.test.zone"),
    ];
    for (origin, file) in files {
        let origin = Name::from_ascii(origin).unwrap();
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let want = hickory_reads(&origin, &text, &path);
        assert!(want.len() > 3, "{file}");
        assert_eq!(we_read(&origin, &text, &path), want, "{file}");
    }
    let path = Path::new("context.zone");
    let want = hickory_reads(&origin(), CONTEXT, path);
    assert_eq!(want.len(), 11);
    assert_eq!(we_read(&origin(), CONTEXT, path), want);
}

#[test]
fn include_reads_a_file_beside_and_returns_to_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.inc"),
        "a IN A 192.0.2.10\n  IN AAAA 2001:db8::10\nb IN A bad\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("good.inc"), "a IN A 192.0.2.10\n").unwrap();
    let main = dir.path().join("main.zone");
    let text = format!("{ZONE}$INCLUDE good.inc lab.example.test.\nafter IN A 192.0.2.11\n");
    let zone = parse(&origin(), &text, &main).unwrap();
    let names: Vec<String> = zone.records().iter().map(|r| r.name.to_string()).collect();
    assert!(
        names.contains(&"a.lab.example.test.".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"after.example.test.".to_string()),
        "{names:?}"
    );
    let text = format!("{ZONE}$INCLUDE hosts.inc\n");
    let err = parse(&origin(), &text, &main).unwrap_err();
    let ZoneError::Syntax { path, line, .. } = &err else {
        panic!("expected a syntax error, got {err}");
    };
    assert_eq!(
        (path.file_name().unwrap(), *line),
        ("hosts.inc".as_ref(), 3),
        "{err}"
    );
}

#[test]
fn context_errors_name_their_line() {
    let cases = [
        ("  IN A 192.0.2.1\n", 1, "without an owner"),
        ("$GENERATE 1-2 h$ A 192.0.2.$\n", 1, "$GENERATE"),
        (
            "www IN A 192.0.2.1\nwww IN CNAME other\n",
            2,
            "CNAME and other data",
        ),
    ];
    for (body, line, words) in cases {
        let text = format!("$ORIGIN example.test.\n$TTL 300\n{body}");
        let err = parse(&origin(), &text, Path::new("z")).unwrap_err();
        let ZoneError::Syntax {
            line: got, message, ..
        } = &err
        else {
            panic!("expected a syntax error, got {err}");
        };
        assert_eq!(*got, line + 2, "{err}");
        assert!(message.contains(words), "{err}");
    }
    let outside = format!("{ZONE}other.test. IN A 127.0.0.1\n");
    let err = parse(&origin(), &outside, Path::new("z")).unwrap_err();
    assert!(
        matches!(err, ZoneError::OutOfZone { line: 10, .. }),
        "{err}"
    );
}

#[test]
fn good_zone_parses() {
    let records = parse(&origin(), ZONE, Path::new("z")).unwrap();
    assert_eq!(records.count_records(), 5);
}

#[test]
fn syntax_error_names_its_line() {
    for (line, bad) in [
        (8, "www IN A not-an-address\n"),
        (9, "mx IN MX notanumber mail\n"),
    ] {
        let mut lines: Vec<&str> = ZONE.split_inclusive('\n').collect();
        lines[line - 1] = bad;
        let text = lines.concat();
        let err = parse(&origin(), &text, Path::new("zones/x.zone")).unwrap_err();
        let ZoneError::Syntax { line: got, .. } = err else {
            panic!("expected a syntax error, got {err}");
        };
        assert_eq!(got, line, "{bad}");
    }
}

#[test]
fn error_inside_parentheses_names_the_entry() {
    let text = ZONE.replace("3600 600", "x600 600");
    let err = parse(&origin(), &text, Path::new("z")).unwrap_err();
    assert!(matches!(err, ZoneError::Syntax { line: 3, .. }), "{err}");
}

#[test]
fn missing_soa_and_out_of_zone_are_refused() {
    let no_soa = "$ORIGIN example.test.\nwww 300 IN A 127.0.0.1\n";
    let err = parse(&origin(), no_soa, Path::new("z")).unwrap_err();
    assert!(matches!(err, ZoneError::NoSoa { .. }), "{err}");
    let outside = format!("{ZONE}other.test. IN A 127.0.0.1\n");
    let err = parse(&origin(), &outside, Path::new("z")).unwrap_err();
    assert!(matches!(err, ZoneError::OutOfZone { .. }), "{err}");
}
