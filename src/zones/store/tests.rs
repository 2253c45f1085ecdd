//! The compact store answers exactly as hickory's in-memory store did: both are built from
//! the same records and asked every name and type, with and without DNSSEC OK.

use std::{collections::BTreeSet, path::PathBuf};

use hickory_proto::{
    rr::{LowerName, Name, Record, RecordType},
    serialize::txt::Parser,
};
use hickory_server::{
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, LookupControlFlow, LookupOptions, ZoneHandler, ZoneType},
};

use super::{Builder, Zone};

/// Edge cases beyond the fast-path zone: chains that loop or leave the zone, a wildcard
/// CNAME, a nested delegation, DS at a delegation, MX and NS targets with addresses,
/// names that differ in case only, an empty non-terminal with a wildcard below it.
const EXTRA: &str = "
loop1     IN CNAME loop2.fast.test.
loop2     IN CNAME loop1.fast.test.
self      IN CNAME self.fast.test.
long1     IN CNAME long2
long2     IN CNAME long3
long3     IN CNAME long4
long4     IN CNAME long5
long5     IN CNAME long6
long6     IN CNAME long7
long7     IN CNAME long8
long8     IN CNAME long9
long9     IN CNAME www
*.cn      IN CNAME www.fast.test.
mx2       IN MX 5 alias.fast.test.
mx3       IN MX 5 www.fast.test.
          IN MX 6 ns2.fast.test.
srv2      IN SRV 1 1 443 ns2.fast.test.
sub       IN DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
deeper.sub IN NS ns.deeper.sub.fast.test.
ns.deeper.sub IN A 192.0.2.54
*.ent.x   IN A 192.0.2.80
www       IN A 192.0.2.10
WWW       IN A 192.0.2.12
dup       IN A 192.0.2.13
dup       300 IN A 192.0.2.13
ttl       100 IN A 192.0.2.14
ttl       200 IN A 192.0.2.15
";

fn origin() -> Name {
    Name::from_ascii("fast.test.").unwrap()
}

fn records() -> Vec<Record> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/zones/fast-path.zone");
    let text = std::fs::read_to_string(&path).unwrap() + EXTRA;
    let (_, sets) = Parser::new(text, Some(path), Some(origin()))
        .parse()
        .unwrap();
    sets.into_values().flat_map(|s| s.into_iter()).collect()
}

fn reference(records: &[Record]) -> InMemoryZoneHandler {
    let mut handler =
        InMemoryZoneHandler::empty(origin(), ZoneType::Primary, AxfrPolicy::Deny, None);
    for record in records {
        handler.upsert_mut(record.clone(), 0);
    }
    handler
}

/// Everything a lookup decides, in a form two stores can be compared by.
fn outcome(flow: LookupControlFlow<hickory_server::zone_handler::AuthLookup>) -> String {
    let (kind, result) = match flow {
        LookupControlFlow::Continue(r) => ("continue", r),
        LookupControlFlow::Break(r) => ("break", r),
        LookupControlFlow::Skip => return "skip".into(),
    };
    match result {
        Ok(lookup) => {
            let answers: Vec<&Record> = lookup.iter().collect();
            let additionals: Vec<&Record> = lookup
                .additionals()
                .map(|a| a.collect())
                .unwrap_or_default();
            format!("{kind} ok answers {answers:?} additionals {additionals:?}")
        }
        Err(e) => format!("{kind} error {e:?}"),
    }
}

fn names(records: &[Record]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = records.iter().map(|r| r.name.to_string()).collect();
    for extra in [
        "fast.test.",
        "nothere.fast.test.",
        "x.wild.fast.test.",
        "a.b.wild.fast.test.",
        "wild.fast.test.",
        "*.wild.fast.test.",
        "deep.fast.test.",
        "nonterminal.deep.fast.test.",
        "x.sub.fast.test.",
        "a.x.deeper.sub.fast.test.",
        "ALIAS.FAST.TEST.",
        "MiXeD.fast.test.",
        "mixed.fast.test.",
        "y.cn.fast.test.",
        "q.ent.x.fast.test.",
        "ent.x.fast.test.",
        "x.fast.test.",
        "other.test.",
        "test.",
        ".",
    ] {
        names.insert(extra.to_string());
    }
    names
}

#[tokio::test]
async fn every_lookup_matches_hickorys_in_memory_store() {
    let records = records();
    let hickory = reference(&records);
    let zone = Zone::from_records(&origin(), &records).unwrap();
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::NS,
        RecordType::SOA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::CNAME,
        RecordType::SRV,
        RecordType::CAA,
        RecordType::TLSA,
        RecordType::HTTPS,
        RecordType::CERT,
        RecordType::DS,
        RecordType::PTR,
        RecordType::ANY,
        RecordType::AXFR,
        RecordType::Unknown(65280),
    ];
    let mut compared = 0;
    for name in names(&records) {
        let name = LowerName::from(Name::from_ascii(&name).unwrap());
        for rtype in types {
            for options in [LookupOptions::default(), LookupOptions::for_dnssec()] {
                let want = outcome(hickory.lookup(&name, rtype, None, options).await);
                let got = outcome(zone.lookup(&name, rtype, None, options).await);
                assert_eq!(got, want, "{name} {rtype}");
                compared += 1;
            }
        }
    }
    assert!(compared > 1500, "only {compared} lookups compared");
}

#[test]
fn a_transfer_holds_every_record_once() {
    let records = records();
    let zone = Zone::from_records(&origin(), &records).unwrap();
    let hickory = reference(&records);
    let mut want: Vec<String> = futures_lite_records(&hickory);
    let mut got: Vec<String> = zone.records().iter().map(|r| r.to_string()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(zone.count_records(), want.len());
    let soa = zone.soa_wire().unwrap();
    let others: usize = zone.transfer_sets().map(<[u8]>::len).sum();
    assert_eq!(soa.len() + others, zone.records.len());
}

fn futures_lite_records(handler: &InMemoryZoneHandler) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sets = handler.records().await;
        sets.values()
            .flat_map(|s| s.records_without_rrsigs().map(|r| r.to_string()))
            .collect()
    })
}

#[test]
fn a_cname_beside_other_data_is_refused_with_its_line() {
    let mut builder = Builder::new(&origin());
    let at = |text: &str| {
        Record::from_rdata(
            Name::from_ascii("www.fast.test.").unwrap(),
            300,
            text.parse::<std::net::Ipv4Addr>()
                .map(hickory_proto::rr::RData::from)
                .unwrap(),
        )
    };
    builder.add(&at("192.0.2.1"), 7).unwrap();
    let cname = Record::from_rdata(
        Name::from_ascii("www.fast.test.").unwrap(),
        300,
        hickory_proto::rr::RData::CNAME(hickory_proto::rr::rdata::CNAME(
            Name::from_ascii("other.fast.test.").unwrap(),
        )),
    );
    builder.add(&cname, 9).unwrap();
    let Err(err) = builder.finish() else {
        panic!("a CNAME beside an A record was accepted");
    };
    assert!(err.message.contains("CNAME and other data"), "{err}");
    assert!(err.line == 7 || err.line == 9, "{}", err.line);
}

#[test]
fn a_change_replaces_one_set_and_the_serial() {
    let records = records();
    let zone = Zone::from_records(&origin(), &records).unwrap();
    let owner = Name::from_ascii("_acme-challenge.fast.test.").unwrap();
    let txt = Record::from_rdata(
        owner.clone(),
        60,
        hickory_proto::rr::RData::TXT(hickory_proto::rr::rdata::TXT::new(vec!["t".into()])),
    );
    let next = zone
        .changed(
            zone.serial() + 1,
            &[(owner.clone(), RecordType::TXT, vec![txt])],
        )
        .unwrap();
    assert_eq!(next.serial(), zone.serial() + 1);
    assert_eq!(next.count_records(), zone.count_records() + 1);
    let gone = next
        .changed(next.serial() + 1, &[(owner, RecordType::TXT, Vec::new())])
        .unwrap();
    assert_eq!(gone.count_records(), zone.count_records());
    assert_eq!(gone.serial(), zone.serial() + 2);
}
