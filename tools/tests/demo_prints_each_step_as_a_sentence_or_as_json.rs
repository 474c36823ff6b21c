mod common;

use common::*;
use serde_json::json;

#[test]
fn demo_prints_each_step_as_a_sentence_or_as_json() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = arg(&tmp.path().join("json"));
    let steps = json_lines(&stdout_of(&[
        "demo", "--keys", "500", "--dir", &dir, "--json",
    ]));
    let names: Vec<_> = steps.iter().map(|s| s["step"].clone()).collect();
    let expected = [
        "open", "write", "read", "reopen", "read", "feed", "flush", "done",
    ];
    assert_eq!(names, expected.map(|n| json!(n)));
    assert_eq!(steps[2]["prefix_count"], json!(499));
    assert_eq!(steps[3]["latest_seqno"], json!(502));
    assert_eq!(
        steps[5]["changes"],
        json!(502),
        "the feed holds every write"
    );
    assert_eq!(steps[5]["acknowledged"], json!(502));
    assert_eq!(steps[5]["tailed_seqno"], json!(503));
    assert_eq!(steps[6]["level0_segments"], json!(1));

    let dir = arg(&tmp.path().join("text"));
    let text = stdout_of(&["demo", "--keys", "500", "--dir", &dir]);
    assert!(text.contains("prefix user: holds 499 keys"), "{text}");
    assert!(text.contains("read 7 batch(es), 502 change(s)"), "{text}");
    assert!(text.ends_with("done\n"), "{text}");
    Ok(())
}
