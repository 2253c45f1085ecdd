//! Serials: what secondaries compare, so they must never go backwards.

use std::path::Path;

use hickory_proto::rr::Name;

use super::Zones;
use crate::config::ZoneConfig;

fn zone_file(serial: u32) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 hostmaster ( {serial} 3600 600 86400 300 )\n  IN NS ns1\nns1 IN A 192.0.2.1\n"
    )
}

fn load(dir: &Path, serial: u32) -> Zones {
    let file = dir.join("example.test.zone");
    std::fs::write(&file, zone_file(serial)).unwrap();
    let config = ZoneConfig {
        origin: origin(),
        file,
    };
    Zones::load(&[config], &dir.join("state")).unwrap()
}

fn origin() -> Name {
    Name::from_ascii("example.test.").unwrap()
}

/// A challenge set and removed, as an ACME order does.
async fn challenge(zones: &Zones) {
    let owner = Name::from_ascii("_acme-challenge.example.test.").unwrap();
    assert!(zones.set_txt(&owner, &["token".to_string()]).await);
    assert!(zones.set_txt(&owner, &[]).await);
}

#[tokio::test]
async fn a_restart_with_the_same_contents_keeps_the_last_served_serial() {
    let dir = tempfile::tempdir().unwrap();
    let zones = load(dir.path(), 2026112201);
    zones.save_serials().unwrap();
    challenge(&zones).await;
    assert_eq!(zones.serial(&origin()).await, Some(2026112203));
    drop(zones);
    for _ in 0..5 {
        let zones = load(dir.path(), 2026112201);
        zones.save_serials().unwrap();
        assert_eq!(zones.serial(&origin()).await, Some(2026112203));
    }
}

#[tokio::test]
async fn a_restart_with_new_contents_goes_past_the_last_served_serial() {
    let dir = tempfile::tempdir().unwrap();
    let zones = load(dir.path(), 2026112201);
    zones.save_serials().unwrap();
    drop(zones);
    // The same serial in the file, other records.
    let file = dir.path().join("example.test.zone");
    let text = format!("{}www IN A 192.0.2.2\n", zone_file(2026112201));
    std::fs::write(&file, text).unwrap();
    let config = ZoneConfig {
        origin: origin(),
        file,
    };
    let zones = Zones::load(&[config], &dir.path().join("state")).unwrap();
    assert_eq!(zones.serial(&origin()).await, Some(2026112202));
}

#[tokio::test]
async fn a_restart_while_a_challenge_was_served_goes_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let zones = load(dir.path(), 7);
    let owner = Name::from_ascii("_acme-challenge.example.test.").unwrap();
    assert!(zones.set_txt(&owner, &["token".to_string()]).await);
    assert_eq!(zones.serial(&origin()).await, Some(8));
    drop(zones);
    // Served at 8 with the TXT; without it the contents differ from what 8 stood for.
    let zones = load(dir.path(), 7);
    assert_eq!(zones.serial(&origin()).await, Some(9));
}

#[tokio::test]
async fn an_edit_without_a_new_serial_is_announced_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let zones = load(dir.path(), 5);
    let file = dir.path().join("example.test.zone");
    std::fs::write(&file, format!("{}www IN A 192.0.2.2\n", zone_file(5))).unwrap();
    let (changed, errors) = zones.reload();
    assert!(errors.is_empty());
    assert_eq!(changed, vec![origin()], "announced");
    assert_eq!(zones.serial(&origin()).await, Some(6));
}

#[tokio::test]
async fn a_file_serial_ahead_of_the_served_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let zones = load(dir.path(), 1);
    challenge(&zones).await;
    drop(zones);
    let zones = load(dir.path(), 100);
    assert_eq!(zones.serial(&origin()).await, Some(100));
}

#[tokio::test]
async fn a_reload_keeps_the_served_serial_and_an_edit_moves_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let zones = load(dir.path(), 1);
    challenge(&zones).await;
    let (changed, errors) = zones.reload();
    assert!(changed.is_empty() && errors.is_empty());
    assert_eq!(
        zones.serial(&origin()).await,
        Some(3),
        "the same file: no step back"
    );
    // The operator edits the file and raises its serial by one, still behind 3.
    std::fs::write(dir.path().join("example.test.zone"), zone_file(2)).unwrap();
    let (changed, _) = zones.reload();
    assert_eq!(changed, vec![origin()]);
    assert_eq!(zones.serial(&origin()).await, Some(4));
}

/// `records` as the announcer would publish them.
fn txt(owner: &str, value: &str) -> hickory_proto::rr::Record {
    use hickory_proto::rr::{RData, Record, rdata::TXT};
    let owner = Name::from_ascii(owner).unwrap();
    Record::from_rdata(owner, 60, RData::TXT(TXT::new(vec![value.into()])))
}

fn served(zones: &Zones, owner: &str) -> Vec<String> {
    let owner = Name::from_ascii(owner).unwrap();
    let records = zones
        .records_at(&owner, hickory_proto::rr::RecordType::TXT)
        .unwrap();
    records.iter().map(|r| r.data.to_string()).collect()
}

#[tokio::test]
async fn published_sets_replace_the_files_stay_across_reloads_and_go_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.test.zone");
    let text = format!("{}note IN TXT \"hand-written\"\n", zone_file(7));
    std::fs::write(&file, &text).unwrap();
    let config = ZoneConfig {
        origin: origin(),
        file,
    };
    let zones = Zones::load(&[config], &dir.path().join("state")).unwrap();
    let mut changes = zones.subscribe();
    zones.set_published(vec![txt("note.example.test.", "published")]);
    assert_eq!(served(&zones, "note.example.test."), ["published"]);
    assert_eq!(zones.serial(&origin()).await, Some(8));
    assert_eq!(
        changes.try_recv().unwrap(),
        origin(),
        "the change is announced"
    );

    let (changed, errors) = zones.reload();
    assert!(changed.is_empty() && errors.is_empty());
    assert_eq!(
        served(&zones, "note.example.test."),
        ["published"],
        "a reload keeps what is published"
    );

    // Publishing the same again changes nothing; dropping the set removes it.
    zones.set_published(vec![txt("note.example.test.", "published")]);
    assert_eq!(zones.serial(&origin()).await, Some(8));
    zones.set_published(Vec::new());
    assert!(served(&zones, "note.example.test.").is_empty());
    assert_eq!(zones.serial(&origin()).await, Some(9));
}
