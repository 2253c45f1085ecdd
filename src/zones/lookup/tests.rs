//! The cases the RFCs single out, each on a small zone: what goes in which section. The
//! differential test (tests/it/differential.rs) compares every question with Knot DNS; these
//! name the rule each answer follows.

use std::path::Path;

use hickory_proto::{
    rr::{Name, Record},
    serialize::binary::{BinDecodable, BinDecoder},
};

use super::*;
use crate::zones::{parse, store::records_in};

const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@        3600 IN SOA ns1 hostmaster 1 3600 600 86400 120
@        IN NS    ns1
ns1      IN A     192.0.2.1
www      IN A     192.0.2.10
sub      IN NS    ns1.sub
sub      IN DS    1 13 2 0000000000000000000000000000000000000000000000000000000000000000
ns1.sub  IN A     192.0.2.53
*.w      IN A     192.0.2.100
exists.w IN TXT   \"here\"
x.ent.w  IN A     192.0.2.101
c1       IN CNAME c2
c2       IN CNAME www
cmiss    IN CNAME missing
loop     IN CNAME loop
dn       IN DNAME target
target   IN A     192.0.2.42
";

fn zone() -> Zone {
    let origin = Name::from_ascii("example.test.").unwrap();
    parse::parse(&origin, ZONE, Path::new("test.zone")).unwrap()
}

fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Each section as `owner type` lines (owners as the answer would carry them).
fn section(items: &[Item<'_>]) -> Vec<String> {
    let mut lines = Vec::new();
    for item in items {
        for record in records_in(&item.records) {
            let mut record = record.to_vec();
            if let Some(owner) = &item.owner {
                let stored = name_len(&record);
                record.splice(..stored, owner.iter().copied());
            }
            let decoded = Record::read(&mut BinDecoder::new(&record)).unwrap();
            let ttl = item.ttl.unwrap_or(decoded.ttl);
            lines.push(format!(
                "{} {} {ttl}",
                decoded.name.to_lowercase(),
                decoded.record_type()
            ));
        }
    }
    lines.dedup();
    lines
}

fn ask(name: &str, qtype: u16) -> (Rcode, bool, Vec<String>, Vec<String>, Vec<String>) {
    let zone = zone();
    let r = zone.resolve(&wire(name), qtype);
    (
        r.rcode,
        r.authoritative,
        section(&r.answer),
        section(&r.authority),
        section(&r.additional),
    )
}

const SOA_NEGATIVE: &str = "example.test. SOA 120";

#[test]
fn referrals_carry_glue_and_are_not_authoritative() {
    // RFC 1034 4.3.2 step 3b; RFC 9471 3.1: in-domain glue is required.
    let (rcode, aa, answer, authority, additional) = ask("host.sub.example.test.", A);
    assert_eq!((rcode, aa), (Rcode::NoError, false));
    assert!(answer.is_empty());
    assert_eq!(authority, ["sub.example.test. NS 300"]);
    assert_eq!(additional, ["ns1.sub.example.test. A 300"]);
    // The NS question at the cut is a referral too, not an answer.
    let (_, aa, answer, authority, _) = ask("sub.example.test.", NS);
    assert!(!aa && answer.is_empty() && authority.len() == 1);
    // DS lives on the parent side and is answered there.
    let (_, aa, answer, ..) = ask("sub.example.test.", DS);
    assert!(aa);
    assert_eq!(answer, ["sub.example.test. DS 300"]);
}

#[test]
fn a_wildcard_without_the_type_is_no_data_not_nxdomain() {
    // RFC 4592 3.3.3, RFC 1034 4.3.2 step 3c.
    let (rcode, aa, answer, authority, _) = ask("match.w.example.test.", AAAA);
    assert_eq!((rcode, aa), (Rcode::NoError, true));
    assert!(answer.is_empty());
    assert_eq!(authority, [SOA_NEGATIVE]);
    let (_, _, answer, ..) = ask("MaTcH.w.example.test.", A);
    assert_eq!(answer, ["match.w.example.test. A 300"]);
}

#[test]
fn wildcards_answer_only_below_the_closest_encloser() {
    // A name that exists, an empty non-terminal, and a name below another encloser
    // (RFC 4592 2.2.2, 3.3.1).
    for name in ["exists.w.example.test.", "ent.w.example.test."] {
        let (rcode, _, answer, authority, _) = ask(name, A);
        assert_eq!(rcode, Rcode::NoError, "{name}");
        assert!(answer.is_empty(), "{name}: {answer:?}");
        assert_eq!(authority, [SOA_NEGATIVE], "{name}");
    }
    let (rcode, ..) = ask("child.x.ent.w.example.test.", A);
    assert_eq!(rcode, Rcode::NxDomain);
}

#[test]
fn cname_chains_end_with_the_last_names_rcode() {
    let (rcode, _, answer, authority, _) = ask("c1.example.test.", A);
    assert_eq!(rcode, Rcode::NoError);
    assert_eq!(
        answer,
        [
            "c1.example.test. CNAME 300",
            "c2.example.test. CNAME 300",
            "www.example.test. A 300"
        ]
    );
    assert!(authority.is_empty());
    // RFC 6604 2: NXDOMAIN with the SOA when the chain ends at a missing name.
    let (rcode, _, answer, authority, _) = ask("cmiss.example.test.", A);
    assert_eq!(rcode, Rcode::NxDomain);
    assert_eq!(answer, ["cmiss.example.test. CNAME 300"]);
    assert_eq!(authority, [SOA_NEGATIVE]);
    // A loop stops at the repeated CNAME.
    let (_, _, answer, ..) = ask("loop.example.test.", A);
    assert_eq!(answer, ["loop.example.test. CNAME 300"]);
    // RRSIG and NSEC at a CNAME's owner do not follow it (RFC 4035 2.5).
    let (_, _, answer, authority, _) = ask("c1.example.test.", RRSIG);
    assert!(answer.is_empty());
    assert_eq!(authority, [SOA_NEGATIVE]);
}

#[test]
fn dname_substitutes_below_its_owner() {
    // RFC 6672 2.2: the DNAME, a CNAME made for the name, then the target's answer.
    let (rcode, _, answer, ..) = ask("x.dn.example.test.", A);
    assert_eq!(rcode, Rcode::NxDomain);
    assert_eq!(
        answer,
        ["dn.example.test. DNAME 300", "x.dn.example.test. CNAME 300"]
    );
    let (_, _, answer, ..) = ask("dn.example.test.", DNAME);
    assert_eq!(answer, ["dn.example.test. DNAME 300"]);
}

#[test]
fn negative_answers_carry_the_soa_with_the_negative_ttl() {
    // RFC 2308 3: min(SOA TTL 3600, MINIMUM 120).
    let (rcode, aa, _, authority, _) = ask("nothing.example.test.", A);
    assert_eq!((rcode, aa), (Rcode::NxDomain, true));
    assert_eq!(authority, [SOA_NEGATIVE]);
    let (rcode, _, _, authority, _) = ask("www.example.test.", AAAA);
    assert_eq!(rcode, Rcode::NoError);
    assert_eq!(authority, [SOA_NEGATIVE]);
}

#[test]
fn any_answers_one_record_set_and_ns_brings_addresses() {
    // RFC 8482 4.1: one set, the lowest type at the name (here NS at the apex).
    let (_, _, answer, _, additional) = ask("example.test.", ANY);
    assert_eq!(answer, ["example.test. NS 300"]);
    assert_eq!(additional, ["ns1.example.test. A 300"]);
}
