//! The `alluvium` command-line tool: argument parsing and printing only. Every decoder lives
//! in the library (`alluvium::inspect`), so the tests exercise what the tool prints with.

mod bench;
mod demo;
mod feed_cmd;
mod json;
mod kv_cmd;
mod levels_view;
mod log_cmd;
mod manifest_cmd;
mod output;
mod segment_cmd;
mod serve_cmd;
mod verify_cmd;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// What every command returns; `main` turns an error into a one-line message.
pub type CmdResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// alluvium: an embedded LSM-tree database whose commit log is a change feed.
///
/// Keys and values print as UTF-8 where printable, with `\xNN` for other bytes and `\\` for a
/// backslash; --key-encoding/--value-encoding hex|base64 print them otherwise. --json prints
/// one JSON object per line.
#[derive(Parser)]
#[command(name = "alluvium", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decodes a segment file: its entries or its statistics.
    #[command(subcommand)]
    Segment(segment_cmd::SegmentCommand),
    /// Decodes commit log files.
    #[command(subcommand)]
    Log(log_cmd::LogCommand),
    /// Decodes the manifest.
    #[command(subcommand)]
    Manifest(manifest_cmd::ManifestCommand),
    /// Draws the current LSM shape: each level's segments with sizes, key and sequence ranges.
    Levels(manifest_cmd::LevelsArgs),
    /// Checks every checksum and structural invariant of a database or a file.
    Verify(verify_cmd::VerifyArgs),
    /// Prints the value of a key.
    Get(kv_cmd::GetArgs),
    /// Sets a key to a value (synced).
    Put(kv_cmd::PutArgs),
    /// Deletes a key (synced).
    Delete(kv_cmd::DeleteArgs),
    /// Prints keys and values in key order.
    Scan(kv_cmd::ScanArgs),
    /// Follows the change feed, lists its subscriptions, or bridges it to NATS JetStream
    /// (publish, ingest).
    #[command(subcommand)]
    Feed(feed_cmd::FeedCommand),
    /// Serves the change feed over HTTP (Server-Sent Events) and read-only key lookups.
    Serve(serve_cmd::ServeArgs),
    /// Writes, reads, restarts and reads again on a default database, printing each step.
    #[command(after_help = "Example:\n  alluvium demo --dir /tmp/alluvium-demo")]
    Demo(demo::DemoArgs),
    /// Runs db_bench-style workloads and prints db_bench-style result lines.
    #[command(
        after_help = "Example:\n  alluvium bench --benchmarks fillrandom,readrandom --num 1000000"
    )]
    Bench(bench::BenchArgs),
}

fn run(command: &Command) -> CmdResult {
    match command {
        Command::Segment(c) => segment_cmd::run(c),
        Command::Log(c) => log_cmd::run(c),
        Command::Manifest(c) => manifest_cmd::run(c),
        Command::Levels(args) => manifest_cmd::levels(args),
        Command::Verify(args) => verify_cmd::run(args),
        Command::Get(args) => kv_cmd::get(args),
        Command::Put(args) => kv_cmd::put(args),
        Command::Delete(args) => kv_cmd::delete(args),
        Command::Scan(args) => kv_cmd::scan(args),
        Command::Feed(c) => feed_cmd::run(c),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`alluvium log dump db | head`): not an error.
        Err(e) if is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            warn_line(&format!("alluvium: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Fails with a clear message when `dir` holds no database (no `CURRENT`), instead of an
/// I/O error about a file the user never named.
pub fn require_database(dir: &std::path::Path) -> Result<(), String> {
    match dir.join("CURRENT").is_file() {
        true => Ok(()),
        false => Err(format!(
            "{}: no alluvium database here (no CURRENT file)",
            dir.display()
        )),
    }
}

/// Prints a warning on stderr (never panics, unlike `eprintln!` on a closed stderr).
pub fn warn(message: &str) {
    warn_line(&format!("alluvium: warning: {message}"));
}

fn warn_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
