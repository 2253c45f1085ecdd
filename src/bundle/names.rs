//! Certificate names: the one canonical spelling that goes into the signed
//! bytes, and the wildcard rule for "does this name cover that one".
//!
//! Owns host-name syntax only; it must not touch DNS owner names of the
//! bundle's own records (that is `layout`).

use super::limits::MAX_NAME_LEN;

/// The canonical spelling of a certificate name: ASCII lowercase, no trailing
/// dot, labels of 1..=63 of `a-z 0-9 - _`, and `*` allowed only as the whole
/// first label. `None` if the name cannot be canonical.
pub(crate) fn canonical(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.len() > MAX_NAME_LEN {
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
