//! The `certzone` binary: see the library's crate documentation for the architecture.

fn main() -> std::process::ExitCode {
    certzone::cli::main()
}
