//! `certzone keygen`: the files it writes and their modes, refusal to
//! overwrite without `--force`, and TSIG blocks that both our parser and
//! BIND's `named-checkconf` accept. Runs the real binary.

mod common;

use std::{fs, os::unix::fs::PermissionsExt as _, path::Path, process::Output};

use certzone::bundle::{WorkerSecretKey, signing_key_from_pem, verifying_key_from_pem};
use common::certzone;

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .expect("file exists")
        .permissions()
        .mode()
        & 0o777
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(args: &[&str]) -> (String, String) {
    let out = certzone(args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "certzone {args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("readable")
}

#[test]
fn signing_key_and_its_public_half() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("signing.pem");
    let (stdout, _) = run(&["keygen", "signing", "--out", key.to_str().unwrap()]);
    let public = dir.path().join("signing.pem.pub");
    assert_eq!((mode(&key), mode(&public)), (0o600, 0o644));
    let secret = signing_key_from_pem(&read(&key)).expect("PKCS#8 P-256");
    let pinned = verifying_key_from_pem(&read(&public)).expect("SPKI");
    assert_eq!(*secret.verifying_key(), pinned);
    assert!(!stdout.contains("PRIVATE"), "no key material printed");
}

#[test]
fn worker_key_prints_its_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("worker.pem");
    let (stdout, _) = run(&["keygen", "worker", "--out", key.to_str().unwrap()]);
    let secret = WorkerSecretKey::from_pem(&read(&key)).expect("worker key");
    assert!(
        stdout.contains(&format!("key id: {}", secret.key_id())),
        "{stdout}"
    );
    assert!(!stdout.contains("PRIVATE"), "no key material printed");
    let public = dir.path().join("worker.pem.pub");
    assert_eq!((mode(&key), mode(&public)), (0o600, 0o644));
    assert!(read(&public).contains("BEGIN PUBLIC KEY"));
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("k.pem");
    let path = key.to_str().unwrap();
    run(&["keygen", "worker", "--out", path]);
    let before = read(&key);
    let out = certzone(&["keygen", "worker", "--out", path]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(path) && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(read(&key), before, "the old key is untouched");

    run(&["keygen", "worker", "--out", path, "--force"]);
    assert_ne!(read(&key), before, "--force replaced it");
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn an_existing_public_file_alone_blocks_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("s.pem");
    fs::write(dir.path().join("s.pem.pub"), "keep").expect("write");
    let out = certzone(&["keygen", "signing", "--out", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("s.pem.pub"));
    assert!(!key.exists(), "nothing half written");
}

/// BIND accepts the block as part of a configuration.
fn named_checkconf(dir: &Path, block: &str) {
    let key = dir.join("key.conf");
    fs::write(&key, block).expect("write");
    let conf = dir.join("named.conf");
    let body = format!(
        "include \"{}\";\noptions {{ directory \"{}\"; }};\n",
        key.display(),
        dir.display()
    );
    fs::write(&conf, body).expect("write");
    let out = std::process::Command::new("named-checkconf")
        .arg(&conf)
        .output()
        .expect("run named-checkconf (bind9, installed by tests/setup.sh)");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "named-checkconf: {stdout}{stderr}");
}

#[test]
fn tsig_blocks_parse_and_bind_accepts_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (algorithm, len) in [
        ("hmac-sha256", 32),
        ("hmac-sha384", 48),
        ("hmac-sha512", 64),
    ] {
        let (block, _) = run(&["keygen", "tsig", "transfer", "--algorithm", algorithm]);
        let keys = certzone::tsig::parse(&block).expect("our parser reads it");
        assert_eq!(keys[0].name.to_string(), "transfer.");
        assert_eq!(keys[0].algorithm.as_str(), algorithm);
        assert_eq!(keys[0].secret.len(), len);
        named_checkconf(dir.path(), &block);
    }
}

#[test]
fn tsig_to_a_file_is_secret_and_not_printed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("transfer.key");
    let path = file.to_str().unwrap();
    let (stdout, _) = run(&["keygen", "tsig", "xfr.example.", "--out", path]);
    assert!(!stdout.contains("secret \""), "{stdout}");
    assert_eq!(mode(&file), 0o600);
    let keys = certzone::tsig::load(&file).expect("loads");
    assert_eq!(keys[0].name.to_string(), "xfr.example.");
    named_checkconf(dir.path(), &read(&file));
    assert_eq!(
        certzone(&["keygen", "tsig", "x", "--out", path])
            .status
            .code(),
        Some(1)
    );
    run(&["keygen", "tsig", "x", "--out", path, "--force"]);
    assert_eq!(
        certzone::tsig::load(&file).expect("loads")[0]
            .name
            .to_string(),
        "x."
    );
}

/// A base64 secret may contain `//` (about 1 key in 30 for hmac-sha512): BIND takes it,
/// and so must `tsig::parse` (comments are only stripped outside quoted strings).
#[test]
fn a_secret_with_two_slashes_parses() {
    let block = "key \"t\" {\n\talgorithm hmac-sha256;\n\tsecret \"////QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\";\n};\n";
    let dir = tempfile::tempdir().expect("temp dir");
    named_checkconf(dir.path(), block);
    let keys = certzone::tsig::parse(block).expect("parses");
    assert_eq!(keys[0].secret.len(), 32);
}
