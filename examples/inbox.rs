//! The talk's example, runnable: an inbox whose messages are written once, with two derived
//! views, an unread counter per user and a word-search index.
//!
//! ```sh
//! cargo run --release --example inbox            # 8 rounds of kill -9 for each approach
//! cargo run --release --example inbox -- 20      # 20 rounds
//! ```
//!
//! Two approaches run side by side, each in its own database, each in a child process that
//! the parent kills (SIGKILL) at a random moment, several times:
//!
//! - **change feed**: the application only writes messages (`msg:<user>:<id>`) and read marks
//!   (`read:<user>:<id>`). A consumer, subscription `views`, derives `unread:<user>` and
//!   `word:<word>:<message key>` from the feed and acknowledges its position in the same batch
//!   as each view update. After every kill the parent reopens the database, lets the consumer
//!   catch up, and compares the views with a recomputation from the messages: always equal.
//! - **dual writes**: the application writes the message, then the counter, then the index
//!   entries, as separate writes. A kill between two of them leaves the views out of sync, and
//!   nothing ever repairs them.
//!
//! The parent prints one line per round and exits with status 1 if the change-feed views ever
//! differ from the recomputation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alluvium::{ChangeBatch, Db, KeyFilter, Op, Options, Result, Start, WriteBatch, WriteOptions};

const WORDS: [&str; 12] = [
    "lunch", "meeting", "logs", "stream", "cache", "index", "deploy", "coffee", "friday", "bug",
    "review", "kafka",
];
const USERS: u64 = 5;

fn options() -> Options {
    Options::default().memtable_size_bytes(64 * 1024)
}

/// A small xorshift generator: the example needs no dependency for randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    t.map_or(7, |d| d.as_nanos() as u64) | 1
}

// ---- the application's writes -------------------------------------------------------------

/// A new message: key and text.
fn new_message(rng: &mut Rng) -> (String, String) {
    let user = rng.below(USERS);
    let key = format!("msg:{user}:{:016x}", rng.next());
    let text: Vec<&str> = (0..3).map(|_| WORDS[rng.below(12) as usize]).collect();
    (key, text.join(" "))
}

fn read_mark_for(message_key: &str) -> String {
    message_key.replacen("msg:", "read:", 1)
}

fn user_of(key: &str) -> &str {
    key.split(':').nth(1).unwrap_or("")
}

/// The writer shared by both approaches: new messages, and now and then a read mark for a
/// message of this run. `dual` also updates the views itself, one write at a time.
fn write_forever(db: &Db, dual: bool) -> Result<()> {
    let mut rng = Rng(seed());
    let mut unread: Vec<String> = Vec::new();
    for _ in 0..1_000_000 {
        if rng.below(3) == 0 && !unread.is_empty() {
            let key = unread.swap_remove(rng.below(unread.len() as u64) as usize);
            db.put(read_mark_for(&key), "")?;
            if dual {
                add_to_counter(db, user_of(&key), -1)?;
            }
            continue;
        }
        let (key, text) = new_message(&mut rng);
        db.put(&key, &text)?;
        if dual {
            add_to_counter(db, user_of(&key), 1)?;
            for word in text.split(' ') {
                db.put(format!("word:{word}:{key}"), "")?;
            }
        }
        unread.push(key);
    }
    Ok(())
}

/// The dual-write counter update: read, then write, as its own batch.
fn add_to_counter(db: &Db, user: &str, delta: i64) -> Result<()> {
    let key = format!("unread:{user}");
    let n = counter(db.get(&key)?) + delta;
    db.put(key, n.to_string()).map(drop)
}

fn counter(value: Option<Vec<u8>>) -> i64 {
    value
        .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0)
}

// ---- the change-feed consumer --------------------------------------------------------------

/// Messages and read marks: the keys from `msg:` up to (not including) `read;`.
fn source_filter() -> KeyFilter {
    KeyFilter::Range {
        start: Some(b"msg:".to_vec()),
        end: Some(b"read;".to_vec()),
    }
}

/// Applies every visible batch of subscription `views` to the views, each view update and its
/// acknowledgement in one batch; returns how many batches it applied.
fn consume(db: &Db, wait: Duration) -> Result<u64> {
    let mut sub = db.open_subscription("views")?.with_filter(source_filter());
    let mut applied = 0;
    while let Some(batch) = sub.next_timeout(wait)? {
        let mut update = view_update(db, &batch)?;
        update.ack("views", batch.last_seqno);
        db.write(update, &WriteOptions::default())?;
        applied += 1;
    }
    Ok(applied)
}

/// The view changes one batch of messages and read marks makes.
fn view_update(db: &Db, batch: &ChangeBatch) -> Result<WriteBatch> {
    let mut deltas: BTreeMap<String, i64> = BTreeMap::new();
    let mut update = WriteBatch::new();
    for (_, op) in &batch.ops {
        let Op::Put { key, value } = op else { continue };
        let key = String::from_utf8_lossy(key);
        if key.starts_with("msg:") {
            *deltas.entry(user_of(&key).to_string()).or_default() += 1;
            for word in String::from_utf8_lossy(value).split(' ') {
                update.put(format!("word:{word}:{key}"), "");
            }
        } else {
            *deltas.entry(user_of(&key).to_string()).or_default() -= 1;
        }
    }
    for (user, delta) in deltas {
        let key = format!("unread:{user}");
        update.put(&key, (counter(db.get(&key)?) + delta).to_string());
    }
    Ok(update)
}

// ---- checking ------------------------------------------------------------------------------

/// The views as stored, and as recomputed from the messages and read marks.
fn compare(db: &Db) -> Result<Vec<String>> {
    let (stored_counts, stored_words) = stored_views(db)?;
    let (counts, words) = recompute(db)?;
    let mut problems = Vec::new();
    for user in 0..USERS {
        let user = user.to_string();
        let (want, got) = (
            counts.get(&user).copied().unwrap_or(0),
            stored_counts.get(&user).copied().unwrap_or(0),
        );
        if want != got {
            problems.push(format!("unread:{user} is {got}, should be {want}"));
        }
    }
    let missing = words.iter().filter(|w| !stored_words.contains(w)).count();
    let extra = stored_words.iter().filter(|w| !words.contains(w)).count();
    if missing + extra > 0 {
        problems.push(format!(
            "word index: {missing} entries missing, {extra} extra"
        ));
    }
    Ok(problems)
}

fn stored_views(db: &Db) -> Result<(BTreeMap<String, i64>, Vec<String>)> {
    let mut counts = BTreeMap::new();
    for entry in db.prefix("unread:") {
        let (k, v) = entry?;
        counts.insert(
            user_of(&String::from_utf8_lossy(&k)).to_string(),
            counter(Some(v)),
        );
    }
    let words = db
        .prefix("word:")
        .map(|e| e.map(|(k, _)| String::from_utf8_lossy(&k).into_owned()))
        .collect::<Result<Vec<_>>>()?;
    Ok((counts, words))
}

fn recompute(db: &Db) -> Result<(BTreeMap<String, i64>, Vec<String>)> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut words = Vec::new();
    for entry in db.prefix("msg:") {
        let (k, v) = entry?;
        let key = String::from_utf8_lossy(&k).into_owned();
        let read = db.get(read_mark_for(&key))?.is_some();
        *counts.entry(user_of(&key).to_string()).or_default() += i64::from(!read);
        for word in String::from_utf8_lossy(&v).split(' ') {
            words.push(format!("word:{word}:{key}"));
        }
    }
    words.sort();
    words.dedup();
    Ok((counts, words))
}

// ---- the parent: kill, restart, compare ----------------------------------------------------

fn run_child(dir: &Path, mode: &str, rng: &mut Rng) -> std::io::Result<u64> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["child", mode])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()?;
    let ms = 30 + rng.below(170);
    std::thread::sleep(Duration::from_millis(ms));
    child.kill()?; // SIGKILL: no destructor, no close, no flush
    child.wait()?;
    Ok(ms)
}

fn check_round(dir: &Path, feed: bool) -> Result<(Vec<String>, String)> {
    let db = Db::open(dir, options())?;
    let mut note = String::new();
    if feed {
        let lag = db.stats().subscriptions.first().map_or(0, |s| s.lag_seqnos);
        let applied = consume(&db, Duration::ZERO)?;
        note = format!(" (restarted consumer caught up {applied} batches, {lag} seqnos behind)");
    }
    let messages = db.prefix("msg:").count();
    let problems = compare(&db)?;
    db.close()?;
    Ok((problems, format!("{messages} messages{note}")))
}

fn parent(rounds: usize) -> std::result::Result<bool, Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dirs = [tmp.path().join("feed"), tmp.path().join("dual")];
    let db = Db::open(&dirs[0], options())?;
    db.create_subscription("views", Start::Beginning)?;
    db.close()?;
    let mut rng = Rng(seed());
    let mut feed_ok = true;
    for round in 1..=rounds {
        for (dir, mode) in dirs.iter().zip(["feed", "dual"]) {
            let ms = run_child(dir, mode, &mut rng)?;
            let (problems, what) = check_round(dir, mode == "feed")?;
            let verdict = if problems.is_empty() {
                "views = recomputation".to_string()
            } else {
                format!("OUT OF SYNC: {}", problems.join("; "))
            };
            println!("round {round:2} {mode:4}: killed after {ms:3} ms, {what}: {verdict}");
            feed_ok &= mode != "feed" || problems.is_empty();
        }
    }
    Ok(feed_ok)
}

fn child(mode: &str, dir: &PathBuf) -> Result<()> {
    let db = Db::open(dir, options())?;
    if mode == "dual" {
        return write_forever(&db, true);
    }
    let consumer = {
        let db = db.clone();
        std::thread::spawn(move || loop {
            if consume(&db, Duration::from_millis(50)).is_err() {
                return;
            }
        })
    };
    let written = write_forever(&db, false);
    drop(consumer);
    written
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let (mode, dir) = (
            args.get(2).cloned().unwrap_or_default(),
            PathBuf::from(args.get(3).cloned().unwrap_or_default()),
        );
        if let Err(e) = child(&mode, &dir) {
            eprintln!("child failed: {e}");
            std::process::exit(2);
        }
        return;
    }
    let rounds = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(8);
    match parent(rounds) {
        Ok(true) => println!("change feed: the views equalled the recomputation after every kill"),
        Ok(false) => {
            println!("change feed: the views differed from the recomputation");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("inbox: {e}");
            std::process::exit(2);
        }
    }
}
