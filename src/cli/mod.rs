//! The command line: one file per command. Turns typed errors into messages for people and
//! into the exit codes operators script against: 0 ok, 1 failure, 2 bad configuration,
//! 3 invalid bundle.

mod check_config;
mod cluster;
mod docker;
mod keygen;
mod probe;
mod renew;
mod run;
mod status;
mod verify;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Exit code for a configuration that does not pass the checks.
pub const EXIT_BAD_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "certzone",
    version,
    about = "A nameserver cluster whose TLS certificates manage themselves"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node; its role comes from the file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check the file and everything it names, without opening a socket.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Ask the running node to renew its ACME certificate now (same as SIGUSR1).
    Renew {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Make a key: the cluster signing key, a worker's sealing key, a TSIG key.
    Keygen {
        #[command(subcommand)]
        kind: keygen::Keygen,
    },
    /// Fetch a certificate zone from a server and check its bundle.
    Verify(verify::VerifyArgs),
    /// Ask every node of a cluster file (or the node of a node file) how it stands: serials,
    /// lag, leaf, refusals. Exit 0 all well, 1 needs attention, 2 a node is unreachable.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// A whole cluster from one file: each node's config derived, every node run locally, or
    /// the cluster on a docker network with its fault scenarios.
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Run { config } => run::run(&config),
        Command::CheckConfig { config } => check_config::check_config(&config),
        Command::Renew { config } => renew::renew(&config),
        Command::Keygen { kind } => keygen::keygen(&kind),
        Command::Verify(args) => verify::verify(&args),
        Command::Cluster { command } => cluster::cluster(&command),
        Command::Status { config, json } => status::status(&config, json),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CERTZONE_LOG")
        // rustls warns on every client that sends an IP address as SNI (kdig does, asked by
        // address), up to one line per query: noise, not news.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,rustls::msgs::handshake=error")
        });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = std::env::var("CERTZONE_LOG_FORMAT").unwrap_or_default();
    if !matches!(format.as_str(), "" | "json" | "text") {
        eprintln!(
            "warning: CERTZONE_LOG_FORMAT={format:?} is not \"json\" or \"text\"; logging text"
        );
    }
    match format.as_str() {
        // One object per line for log shippers: `timestamp`, `level`, `message`, the
        // event's own fields beside them, and `target`.
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        // Colour codes only for people at a terminal, never in files or pipes.
        _ => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// Loads and checks a node's configuration, printing every problem on failure.
fn load(path: &std::path::Path) -> Result<crate::node::Prepared, ExitCode> {
    let config = crate::config::Config::load(path).map_err(|errors| {
        for error in &errors.0 {
            eprintln!("error: {error}");
        }
        ExitCode::from(EXIT_BAD_CONFIG)
    })?;
    crate::node::prepare(config).map_err(|problems| {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        ExitCode::from(EXIT_BAD_CONFIG)
    })
}
