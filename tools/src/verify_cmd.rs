//! `alluvium verify DIR|FILE`.

use std::io::IsTerminal;
use std::path::PathBuf;

use alluvium::inspect::{self, Problem, Progress, Severity, VerifyReport};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::output::{human_bytes, Align, Out, OutputArgs, Table};
use crate::CmdResult;

#[derive(clap::Args)]
#[command(
    after_help = "Severity: an error is damage, or something that keeps the database from \
opening; a warning is what a crash or a live writer leaves behind and open handles (a torn end \
of the newest log file, files the next open removes). The exit status is 1 when there is an \
error (or, with --strict, a warning).\n\n\
Examples:\n  alluvium verify db/\n  alluvium verify db/000008.seg --json"
)]
pub struct VerifyArgs {
    /// A database directory, or one segment, commit log file, manifest or CURRENT.
    path: PathBuf,
    /// Fail on warnings too.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(args: &VerifyArgs) -> CmdResult {
    let mut bar = Bar::new();
    let report = inspect::verify(&args.path, &mut |p| bar.update(p))?;
    bar.finish();
    let mut out = Out::new();
    match args.out.json {
        true => print_json(&mut out, &report)?,
        false => print_table(&mut out, &report)?,
    }
    out.finish()?;
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    match (errors, args.strict && warnings > 0) {
        (0, false) => Ok(()),
        _ => Err(format!("verify found {errors} error(s) and {warnings} warning(s)").into()),
    }
}

/// A progress bar on stderr, only when stderr is a terminal.
struct Bar {
    bar: Option<ProgressBar>,
    enabled: bool,
}

impl Bar {
    fn new() -> Self {
        Bar {
            bar: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, p: &Progress<'_>) {
        if !self.enabled {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let style = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(p.bytes_total).with_style(style)
        });
        bar.set_position(p.bytes_done);
        bar.set_message(
            p.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn print_table(out: &mut Out, report: &VerifyReport) -> std::io::Result<()> {
    if !report.problems.is_empty() {
        let mut table = Table::new(&[
            ("SEVERITY", Align::Left),
            ("FILE", Align::Left),
            ("OFFSET", Align::Right),
            ("PROBLEM", Align::Left),
        ]);
        for p in &report.problems {
            let cells = vec![
                severity_name(p.severity).into(),
                p.path.display().to_string(),
                p.offset.to_string(),
                p.detail.clone(),
            ];
            table.row(out, cells)?;
        }
        table.finish(out)?;
    }
    out.line(&format!(
        "checked {} file(s), {}: {} error(s), {} warning(s)",
        report.files_checked,
        human_bytes(report.bytes_checked),
        report.count(Severity::Error),
        report.count(Severity::Warning)
    ))
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum VerifyJson<'a> {
    Problem {
        severity: &'static str,
        path: String,
        offset: u64,
        detail: &'a str,
    },
    Summary {
        files_checked: u64,
        bytes_checked: u64,
        errors: usize,
        warnings: usize,
    },
}

fn problem_json(p: &Problem) -> VerifyJson<'_> {
    VerifyJson::Problem {
        severity: severity_name(p.severity),
        path: p.path.display().to_string(),
        offset: p.offset,
        detail: &p.detail,
    }
}

fn print_json(out: &mut Out, report: &VerifyReport) -> std::io::Result<()> {
    for p in &report.problems {
        out.json(&problem_json(p))?;
    }
    out.json(&VerifyJson::Summary {
        files_checked: report.files_checked,
        bytes_checked: report.bytes_checked,
        errors: report.count(Severity::Error),
        warnings: report.count(Severity::Warning),
    })
}
