//! Arbitrary bytes -> the name scanner in `certzone::wire` and the query-key reader in
//! `certzone::prepared`.
//!
//! Input: one control byte (bit 7: the query came as a datagram; bits 0-6: where in the
//! message `skip_name` and `expand_name` start), then the message. Checked: nothing
//! panics; every offset a scan returns lies within the input and past where it started;
//! a name that scans is at most 255 bytes and reads back the same through every scanner
//! that accepts it; a query with a key, stored as its own answer, is sent back unchanged.
#![no_main]

use certzone::{
    prepared::{PreparedAnswers, Question},
    wire::{self, MAX_NAME},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, message)) = data.split_first() else {
        return;
    };
    let at = usize::from(control & 0x7F);
    scanners(message, at);
    scanners(message, 0);
    prepared(message, control & 0x80 != 0);
});

fn scanners(message: &[u8], at: usize) {
    if let Some(end) = wire::skip_name(message, at) {
        assert!(end > at && end <= message.len(), "skip_name: {at} -> {end}");
    }
    let mut out = Vec::new();
    if let Ok(end) = wire::expand_name(message, at, &mut out) {
        assert!(end > at && end <= message.len(), "expand_name: {at} -> {end}");
        assert!(out.len() <= MAX_NAME, "expanded to {} bytes", out.len());
        // what comes out is an uncompressed name, whole
        assert_eq!(wire::uncompressed_name(&out), Some(&out[..]));
        assert_eq!(wire::skip_name(&out, 0), Some(out.len()));
        assert_eq!(wire::name_len(&out), out.len());
    }
    let rest = message.get(at..).unwrap_or_default();
    assert!(wire::name_len(rest) <= rest.len());
    if let Some(name) = wire::uncompressed_name(rest) {
        assert!(name.len() <= MAX_NAME && name.ends_with(&[0]));
        assert!(rest.starts_with(name));
        assert_eq!(wire::name_len(rest), name.len());
        assert_eq!(wire::skip_name(rest, 0), Some(name.len()));
        let mut expanded = Vec::new();
        assert_eq!(wire::expand_name(rest, 0, &mut expanded), Ok(name.len()));
        assert_eq!(expanded, name);
    }
}

fn prepared(query: &[u8], datagram: bool) {
    let Some(question) = Question::parse(query, datagram) else {
        return;
    };
    let name = wire::uncompressed_name(&query[wire::HEADER_LEN..]);
    assert!(name.is_some(), "a key without a readable name");
    // The query echoes its own question, so it may stand as its own stored answer; what
    // comes back is it with its own id and letter case: the same bytes.
    let answers = PreparedAnswers::default();
    answers.insert(&question, query);
    let mut out = Vec::new();
    if answers.write(&question, query, &mut out) {
        assert_eq!(out, query);
    }
}
