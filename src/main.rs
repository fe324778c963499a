//! Command line → configuration → engine. No logic lives here; each command is in `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use cli::capture::{CaptureArgs, CAPTURE_EXIT_CODES};
use cli::replay::{ReplayArgs, EXIT_CODES};
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: each connection allocates its analyzers and record
/// and frees them at its end, thousands of times a second; with glibc that was 7 % of a
/// replay (malloc, free, and the heap trimmed and faulted back in), with mimalloc 4 % less
/// time in all (README "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "mailtap", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read pcap/pcapng files (or directories of them, or - for stdin) and report on the mail
    /// sessions in them.
    Replay(ReplayArgs),
    /// Capture live from a network interface until SIGINT/SIGTERM (needs the cargo feature
    /// `live`); sessions are logged and counted as they close.
    #[command(after_help = CAPTURE_EXIT_CODES)]
    Capture(CaptureArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Replay(args) => cli::replay::run(args),
        Command::Capture(args) => cli::capture::run(args),
    }
}
