//! Names in the signed bytes: the one canonical spelling of certificate
//! names and the wildcard rule for "does this name cover that one"; the
//! canonical wire form of the zone name and the syntax of cluster ids
//! (format 2).
//!
//! Owns name syntax only; it must not touch DNS owner names of the
//! bundle's own records (that is `layout`).

use hickory_proto::rr::Name;

use super::limits::{MAX_CLUSTER_ID, MAX_NAME_LEN, MAX_ZONE_WIRE};

/// The canonical spelling of a certificate name: ASCII lowercase, no trailing
/// dot, labels of 1..=63 of `a-z 0-9 - _`, and `*` allowed only as the whole
/// first label of a name with at least one more label. `None` if the name
/// cannot be canonical.
pub(crate) fn canonical(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.len() > MAX_NAME_LEN || name == "*" {
        return None;
    }
    let labels_ok = name
        .split('.')
        .enumerate()
        .all(|(i, label)| label_ok(i, label));
    labels_ok.then_some(name)
}

fn label_ok(index: usize, label: &str) -> bool {
    if label == "*" {
        return index == 0;
    }
    let chars_ok = label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    !label.is_empty() && label.len() <= 63 && chars_ok
}

/// Whether certificate name `pattern` covers host `name` (both canonical):
/// equal, or `*.rest` covering exactly one more label in front of `rest`
/// (RFC 6125 section 6.4.3: the wildcard stands for one whole label).
pub(crate) fn covers(pattern: &str, name: &str) -> bool {
    if pattern == name {
        return true;
    }
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    match name.split_once('.') {
        Some((first, rest)) => first != "*" && rest == suffix,
        None => false,
    }
}

/// The zone's name as format 2 signs it: RFC 4034 section 6.2 canonical wire
/// form (uncompressed labels, ASCII `A`-`Z` lowered, the root label last).
pub(crate) fn zone_wire(zone: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in zone.iter() {
        // local invariant: hickory's labels are 1..=63 bytes
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// Whether `wire` is a name in canonical wire form: labels of 1..=63 bytes
/// without ASCII upper-case letters, the root label last and nothing after
/// it, 255 bytes at most.
pub(crate) fn zone_wire_ok(wire: &[u8]) -> bool {
    if wire.len() > MAX_ZONE_WIRE {
        return false;
    }
    let mut rest = wire;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if len == 0 {
            return tail.is_empty();
        }
        if len > 63 || tail.len() < len || tail[..len].iter().any(u8::is_ascii_uppercase) {
            return false;
        }
        rest = &tail[len..];
    }
    false
}

/// Whether `id` is a canonical cluster id: at most 63 bytes of `a-z 0-9 - _ .`
/// (empty allowed).
pub(crate) fn cluster_id_ok(id: &str) -> bool {
    id.len() <= MAX_CLUSTER_ID
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// Whether any of `patterns` covers `name`.
pub(crate) fn any_covers<S: AsRef<str>>(patterns: &[S], name: &str) -> bool {
    patterns.iter().any(|p| covers(p.as_ref(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_spelling() {
        assert_eq!(
            canonical("WWW.Example.TEST."),
            Some("www.example.test".into())
        );
        assert_eq!(canonical("*.example.test"), Some("*.example.test".into()));
        assert_eq!(canonical("a.*.example"), None);
        assert_eq!(canonical("a..b"), None);
        assert_eq!(canonical(""), None);
        assert_eq!(canonical("a b"), None);
        assert_eq!(canonical(&"a".repeat(64)), None);
        assert_eq!(canonical("*"), None, "a bare wildcard covers nothing");
        assert_eq!(canonical("localhost"), Some("localhost".into()));
        assert_eq!(canonical("192.0.2.1"), Some("192.0.2.1".into()));
        assert_eq!(canonical("-a-.b_"), Some("-a-.b_".into()));
    }

    #[test]
    fn zone_wire_form_is_canonical() {
        let zone = Name::from_ascii("_CertZone.Example.TEST.").unwrap();
        let wire = zone_wire(&zone);
        assert_eq!(wire, b"\x09_certzone\x07example\x04test\x00");
        assert!(zone_wire_ok(&wire));
        assert!(!zone_wire_ok(b"\x04TEST\x00"));
        assert!(!zone_wire_ok(b"\x04test"));
        assert!(!zone_wire_ok(b"\x04test\x00\x00"));
        assert!(!zone_wire_ok(b""));
        assert!(zone_wire_ok(b"\x00"));
    }

    #[test]
    fn cluster_ids() {
        assert!(cluster_id_ok(""));
        assert!(cluster_id_ok("prod-eu.1_a"));
        assert!(!cluster_id_ok("Prod"));
        assert!(!cluster_id_ok(&"a".repeat(64)));
    }

    #[test]
    fn wildcard_covers_exactly_one_label() {
        assert!(covers("*.example.test", "a.example.test"));
        assert!(covers("*.example.test", "*.example.test"));
        assert!(!covers("*.example.test", "a.b.example.test"));
        assert!(!covers("*.example.test", "example.test"));
        assert!(!covers("a.example.test", "b.example.test"));
        assert!(covers("a.example.test", "a.example.test"));
    }
}
