//! `alluvium-bridge publish|ingest ...`: the bridges without the rest of the `alluvium` tool.
//! The tests run this binary as a child process and kill it (`alluvium feed publish|ingest`
//! is the same code).

use std::process::ExitCode;

use alluvium_bridge::cli::{IngestArgs, PublishArgs};
use clap::Parser;

#[derive(Parser)]
#[command(name = "alluvium-bridge", version)]
enum Cli {
    /// The change feed into a broker.
    Publish(PublishArgs),
    /// A broker's messages into a database.
    Ingest(IngestArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse() {
        Cli::Publish(args) => alluvium_bridge::cli::publish(&args),
        Cli::Ingest(args) => alluvium_bridge::cli::ingest(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alluvium-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
