//! The `alluvium` command-line tool: argument parsing and printing only.

mod bench;
mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// alluvium: an embedded LSM-tree database whose commit log is a change feed.
#[derive(Parser)]
#[command(name = "alluvium", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes, reads, restarts and reads again on a default database, printing each step.
    ///
    /// Example: alluvium demo --dir /tmp/alluvium-demo
    Demo(demo::DemoArgs),
    /// Runs db_bench-style workloads and prints db_bench-style result lines.
    ///
    /// Example: alluvium bench --benchmarks fillrandom,readrandom --num 1000000
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alluvium: {e}");
            ExitCode::FAILURE
        }
    }
}
