//! `certzone keygen signing|worker|tsig`: makes key files.
//!
//! Owns where keys are written and how: secret files mode 0600, public
//! halves `FILE.pub` mode 0644, never over an existing file unless `--force`
//! (then atomically). It must not print private key material, except the
//! TSIG block when no `--out` is given (that is its purpose, as with BIND's
//! `tsig-keygen`). Key formats belong to `bundle` and `tsig`.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use hickory_proto::rr::Name;
use rand_core::OsRng;

use crate::{bundle, state, tsig};

#[derive(Debug, Subcommand)]
pub(super) enum Keygen {
    /// The cluster signing key (PKCS#8 PEM, 0600) and its public key in FILE.pub.
    Signing {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// A worker's sealing key pair (FILE 0600, FILE.pub 0644); prints its key id.
    Worker {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// A TSIG key block, printed or written to FILE (0600).
    Tsig {
        /// The key's name, e.g. `transfer`.
        name: String,
        #[arg(long, value_enum, default_value_t = TsigAlgorithm::HmacSha256)]
        algorithm: TsigAlgorithm,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long, requires = "out")]
        force: bool,
    },
}

/// The algorithms `tsig` supports, spelled as in BIND's configuration.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum TsigAlgorithm {
    #[value(name = "hmac-sha256")]
    HmacSha256,
    #[value(name = "hmac-sha384")]
    HmacSha384,
    #[value(name = "hmac-sha512")]
    HmacSha512,
}

impl From<TsigAlgorithm> for tsig::Algorithm {
    fn from(value: TsigAlgorithm) -> Self {
        match value {
            TsigAlgorithm::HmacSha256 => Self::HmacSha256,
            TsigAlgorithm::HmacSha384 => Self::HmacSha384,
            TsigAlgorithm::HmacSha512 => Self::HmacSha512,
        }
    }
}

pub(super) fn keygen(command: &Keygen) -> ExitCode {
    let result = match command {
        Keygen::Signing { out, force } => signing(out, *force),
        Keygen::Worker { out, force } => worker(out, *force),
        Keygen::Tsig {
            name,
            algorithm,
            out,
            force,
        } => tsig_key(name, (*algorithm).into(), out.as_deref(), *force),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn signing(out: &Path, force: bool) -> anyhow::Result<()> {
    let key = bundle::generate_signing_key(&mut OsRng);
    let secret = bundle::signing_key_to_pem(&key)?;
    let public = bundle::verifying_key_to_pem(key.verifying_key())?;
    let pub_path = write_pair(out, &secret, &public, force)?;
    println!(
        "wrote the signing key to {} (secret) and its public key to {}",
        out.display(),
        pub_path.display()
    );
    Ok(())
}

fn worker(out: &Path, force: bool) -> anyhow::Result<()> {
    let key = bundle::WorkerSecretKey::generate(&mut OsRng);
    let public = key.public_key().to_pem()?;
    let pub_path = write_pair(out, &key.to_pem()?, &public, force)?;
    println!(
        "wrote the worker key to {} (secret) and its public key to {}",
        out.display(),
        pub_path.display()
    );
    println!("key id: {}", key.key_id());
    Ok(())
}

fn tsig_key(
    name: &str,
    algorithm: tsig::Algorithm,
    out: Option<&Path>,
    force: bool,
) -> anyhow::Result<()> {
    let name = Name::from_ascii(name).with_context(|| format!("key name {name:?}"))?;
    let block = tsig::TsigKey::generate(name, algorithm).to_key_block();
    let Some(out) = out else {
        print!("{block}");
        return Ok(());
    };
    refuse_existing(&[out], force)?;
    write(out, &block, state::SECRET, force)?;
    println!("wrote the TSIG key to {} (secret)", out.display());
    Ok(())
}

/// Writes the secret to `out` and the public half to `out.pub`; returns the
/// latter. Both are checked before either is written, so a refusal leaves
/// nothing half done; with `--force` both are replaced together or not at all
/// (a key whose `.pub` no longer matches would pin workers to the wrong key).
fn write_pair(out: &Path, secret: &str, public: &str, force: bool) -> anyhow::Result<PathBuf> {
    let pub_path = pub_path(out);
    refuse_existing(&[out, &pub_path], force)?;
    if force {
        state::replace_together(&[
            (out, secret.as_bytes(), state::SECRET),
            (&pub_path, public.as_bytes(), state::PUBLIC),
        ])?;
        return Ok(pub_path);
    }
    write(out, secret, state::SECRET, false)?;
    if let Err(e) = write(&pub_path, public, state::PUBLIC, false) {
        // The public half appeared since the check: leave no key without it.
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(pub_path)
}

fn pub_path(out: &Path) -> PathBuf {
    let mut name = OsString::from(out.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}

fn refuse_existing(paths: &[&Path], force: bool) -> anyhow::Result<()> {
    // symlink_metadata: a dangling symlink is still something we would replace
    match paths.iter().find(|p| p.symlink_metadata().is_ok()) {
        Some(path) if !force => bail!(
            "{} already exists; use --force to replace it",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Without `--force` the file is created exclusively, so a file that
/// appeared since the check is not overwritten either. Both ways set `mode`
/// whatever the umask.
fn write(path: &Path, text: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    if force {
        state::write_atomic(path, text.as_bytes(), mode)?;
    } else {
        state::write_exclusive(path, text.as_bytes(), mode)?;
    }
    Ok(())
}
