//! `certzone keygen`: the files it writes and their modes, refusal to
//! overwrite without `--force`, and TSIG blocks that both our parser and
//! BIND's `named-checkconf` accept. Runs the real binary.

use std::{fs, os::unix::fs::PermissionsExt as _, path::Path, process::Output};

use crate::common::{self, certzone};
use certzone::bundle::{WorkerSecretKey, signing_key_from_pem, verifying_key_from_pem};

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
    let _gate = common::gate();
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
    let _gate = common::gate();
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
    let _gate = common::gate();
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
    let _gate = common::gate();
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
    let _gate = common::gate();
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
    let _gate = common::gate();
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
    let _gate = common::gate();
    let block = "key \"t\" {\n\talgorithm hmac-sha256;\n\tsecret \"////QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\";\n};\n";
    let dir = tempfile::tempdir().expect("temp dir");
    named_checkconf(dir.path(), block);
    let keys = certzone::tsig::parse(block).expect("parses");
    assert_eq!(keys[0].secret.len(), 32);
}

/// Runs `certzone ARGS` in `dir`, so `--out` can be a bare file name.
fn certzone_in(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(common::binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run certzone")
}

/// The secret and public halves in `dir` as text, asserting they are one pair.
fn matching_signing_pair(dir: &Path, name: &str) -> (String, String) {
    let secret = read(&dir.join(name));
    let public = read(&dir.join(format!("{name}.pub")));
    let key = signing_key_from_pem(&secret).expect("PKCS#8 P-256");
    let pinned = verifying_key_from_pem(&public).expect("SPKI");
    assert_eq!(*key.verifying_key(), pinned, "{name} and its .pub match");
    (secret, public)
}

/// The bug: with a bare file name the key was replaced, then syncing the directory ""
/// failed with exit 1, leaving the old `.pub` beside a new key.
#[test]
fn force_with_a_bare_file_name_replaces_both_halves() {
    let _gate = common::gate();
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in ["signing", "worker"] {
        let file = format!("{kind}.pem");
        let first = certzone_in(dir.path(), &["keygen", kind, "--out", &file]);
        assert!(first.status.success(), "{:?}", text(&first));
        let before = (
            read(&dir.path().join(&file)),
            read(&dir.path().join(format!("{file}.pub"))),
        );
        let out = certzone_in(dir.path(), &["keygen", kind, "--out", &file, "--force"]);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "keygen {kind} --force: {stdout}{stderr}"
        );
        let after = (
            read(&dir.path().join(&file)),
            read(&dir.path().join(format!("{file}.pub"))),
        );
        assert_ne!(after.0, before.0, "the secret is new");
        assert_ne!(after.1, before.1, "the public half is new too");
    }
    matching_signing_pair(dir.path(), "signing.pem");
    let worker = WorkerSecretKey::from_pem(&read(&dir.path().join("worker.pem"))).expect("key");
    assert_eq!(
        worker.public_key().to_pem().expect("pem"),
        read(&dir.path().join("worker.pem.pub"))
    );
    let tsig = certzone_in(dir.path(), &["keygen", "tsig", "t", "--out", "t.key"]);
    assert!(tsig.status.success(), "{:?}", text(&tsig));
    let forced = certzone_in(
        dir.path(),
        &["keygen", "tsig", "u", "--out", "t.key", "--force"],
    );
    assert!(forced.status.success(), "{:?}", text(&forced));
    let keys = certzone::tsig::load(&dir.path().join("t.key")).expect("loads");
    assert_eq!(keys[0].name.to_string(), "u.");
    assert_eq!(mode(&dir.path().join("t.key")), 0o600);
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "no temporary left: {names:?}"
    );
}

/// `keygen signing --out k.pem --force` run under strace with `inject` (a real fault in
/// the real binary): returns its output.
fn forced_under_strace(dir: &Path, inject: &str) -> Output {
    let binary = common::binary();
    std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", inject, "--", binary])
        .args(["keygen", "signing", "--out", "k.pem", "--force"])
        .current_dir(dir)
        .output()
        .expect("run strace (installed by tests/setup.sh)")
}

#[test]
fn a_failed_second_rename_leaves_the_old_pair() {
    let _gate = common::gate();
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        certzone_in(dir.path(), &["keygen", "signing", "--out", "k.pem"])
            .status
            .success()
    );
    let old = matching_signing_pair(dir.path(), "k.pem");
    // The key is renamed into place first, its .pub second: the second rename fails.
    let out = forced_under_strace(
        dir.path(),
        "inject=rename,renameat,renameat2:error=EIO:when=2",
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("failed to rename into k.pem.pub"),
        "the error names the file: {stderr}"
    );
    assert_eq!(
        matching_signing_pair(dir.path(), "k.pem"),
        old,
        "the old pair is intact"
    );
    assert_eq!(
        fs::read_dir(dir.path()).expect("list").count(),
        2,
        "no temporary left"
    );
}

#[test]
fn a_kill_between_the_two_writes_leaves_the_old_pair() {
    let _gate = common::gate();
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        certzone_in(dir.path(), &["keygen", "signing", "--out", "k.pem"])
            .status
            .success()
    );
    let old = matching_signing_pair(dir.path(), "k.pem");
    // Each file is synced once written: SIGKILL at the second, the .pub's.
    let out = forced_under_strace(dir.path(), "inject=fsync:signal=KILL:when=2");
    assert_ne!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(
        matching_signing_pair(dir.path(), "k.pem"),
        old,
        "the old pair is intact"
    );
}
