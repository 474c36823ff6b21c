mod common;

use common::*;

/// Runs the tool expecting failure: a non-zero status and one line on stderr, no panic.
fn fails_with(args: &[&str], needle: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{args:?}: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
}

#[test]
fn missing_files_foreign_files_and_bad_arguments_get_a_one_line_message() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let foreign = tmp.path().join("notes.txt");
    std::fs::write(
        &foreign,
        "just some text, long enough to hold a footer ......................",
    )?;
    let (foreign, dir) = (arg(&foreign), arg(tmp.path()));
    let missing = arg(&tmp.path().join("missing.seg"));

    fails_with(&["segment", "dump", &missing], "No such file");
    fails_with(&["segment", "dump", &foreign], "not an alluvium segment");
    fails_with(&["segment", "stats", &foreign], "not an alluvium segment");
    fails_with(&["log", "dump", &foreign], "not an alluvium commit log");
    fails_with(&["manifest", "dump", &foreign], "not an alluvium manifest");
    fails_with(&["verify", &foreign], "not an alluvium file");
    fails_with(&["verify", &dir], "holds no alluvium database");
    fails_with(&["levels", &dir], "no alluvium database");
    fails_with(&["log", "dump", &dir], "no alluvium database");
    fails_with(&["manifest", "dump", &dir], "no alluvium database");
    fails_with(&["feed", "follow", &dir], "no alluvium database");
    fails_with(&["feed", "subscriptions", &dir], "no alluvium database");
    fails_with(&["get", &dir, "k"], "no alluvium database");
    fails_with(&["get", &dir, r"bad\q"], "backslash");
    fails_with(
        &["get", &dir, "abc", "--key-encoding", "hex"],
        "not hexadecimal",
    );

    // Argument errors come from clap: a usage message and status 2, never a panic.
    for args in [
        vec!["segment", "dump"],
        vec!["scan", &dir, "--limit", "x"],
        vec!["frobnicate"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    Ok(())
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let commands: [&[&str]; 14] = [
        &["segment", "dump"],
        &["segment", "stats"],
        &["log", "dump"],
        &["manifest", "dump"],
        &["levels"],
        &["verify"],
        &["get"],
        &["put"],
        &["delete"],
        &["scan"],
        &["demo"],
        &["bench"],
        &["feed", "follow"],
        &["feed", "subscriptions"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let help = stdout_of(&args);
        assert!(help.contains("Example"), "{command:?}: {help}");
        assert!(
            help.contains(&format!("alluvium {}", command.join(" "))),
            "{command:?}: {help}"
        );
    }
}
