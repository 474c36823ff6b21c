//! A process that writes batches from several threads, reads the change feed and acknowledges
//! positions, killed with SIGKILL at random moments (mid-write, mid-flush, mid-compaction,
//! mid-open), recovers to a prefix of its commit order that holds every batch it acknowledged:
//!
//! - every acknowledged batch is there, at the sequence number `Db::write` returned, whole;
//!   synced or not (a SIGKILL leaves the page cache, and `WriteOptions` promises that an
//!   unsynced write survives a process crash);
//! - the recovered batches are contiguous in sequence numbers up to `latest_seqno` (no hole:
//!   nothing later is present while something earlier is missing), and each is a batch the
//!   workload wrote, byte for byte;
//! - replaying exactly those batches, in order, onto the state of the previous check gives the
//!   database's contents, through `iter` and through `get`: no deleted key comes back, no
//!   overwritten value returns;
//! - no subscription's position is past the recovered end; an acknowledged position is not
//!   lost; a position carried by a data batch (`WriteBatch::ack`) is the one of the last
//!   recovered batch that carried one.
//!
//! The parent runs this test executable again as a child (selected by an environment
//! variable). The child writes until killed with a tiny memtable and tiny segments, so that
//! flushes and compactions run all the time; each thread appends a line per acknowledgement to
//! a file outside the database directory, after `Db::write` returns. The parent kills it 5 to
//! 80 ms after it reports ready (one cycle in six: at a random moment from its start, during
//! open), reopens, checks, and acknowledges what it checked on a subscription of its own, whose
//! position keeps the log files it has not checked yet. Then the next cycle starts on the same
//! directory.
//!
//! CI runs `CYCLES_CI` cycles. `ALLUVIUM_CRASH_CYCLES=5000 cargo test --release --test
//! a_writer_killed_at_random_moments_recovers_a_prefix_with_every_acknowledged_batch --
//! --nocapture` runs thousands and prints the figures (`ALLUVIUM_CRASH_SEED` repeats a run's
//! kill delays). TESTING.md, "Crash test", has the figures of the last long run and the
//! deliberate breakage this test caught.
//!
//! The test can fail: `the_checker_reports_lost_acknowledged_batches` removes the newest log
//! file after a kill and requires the checker to report the acknowledged batches it held.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alluvium::files::{self, FileKind};
use alluvium::{ChangeBatch, Db, Op, Options, Result, SeqNo, Start, WriteBatch, WriteOptions};

/// Set in the child: the database directory.
const CHILD_DIR_VAR: &str = "ALLUVIUM_TEST_KILLED_WRITER_DIR";
/// Set in the child: the file it appends its acknowledgements to.
const CHILD_ACKS_VAR: &str = "ALLUVIUM_TEST_KILLED_WRITER_ACKS";
/// Set in the child: the first batch id of this cycle (ids are unique across cycles).
const CHILD_ID_BASE_VAR: &str = "ALLUVIUM_TEST_KILLED_WRITER_ID_BASE";
/// Set in the child (optional): the memtable size in bytes.
const CHILD_MEMTABLE_VAR: &str = "ALLUVIUM_TEST_KILLED_WRITER_MEMTABLE_BYTES";
/// How many kill cycles to run (default `CYCLES_CI`).
const CYCLES_VAR: &str = "ALLUVIUM_CRASH_CYCLES";
/// The seed of the kill delays (default: the clock).
const SEED_VAR: &str = "ALLUVIUM_CRASH_SEED";
const CYCLES_CI: u64 = 25;

/// Writer threads in the child.
const WRITERS: u64 = 4;
/// Keys `k0000`..: small, so that keys are overwritten and deleted again and again.
const KEYS: u64 = 1000;
/// Batch `id` may delete the key batch `id - DELETE_DISTANCE` put.
const DELETE_DISTANCE: u64 = 37;
/// A child stops by itself after this long, in case its parent is gone.
const CHILD_RUN_MAX: Duration = Duration::from_secs(30);

/// The parent's subscription: its position is the last sequence number checked.
const CHECKER: &str = "checker";
/// The child's consumer thread reads the feed and acknowledges with `Subscription::ack`.
const CONSUMER: &str = "consumer";
/// Writer batches acknowledge the newest sequence number they saw with `WriteBatch::ack`.
const MARKS: &str = "marks";

fn options(memtable_size_bytes: usize) -> Options {
    Options::default()
        .memtable_size_bytes(memtable_size_bytes)
        .segment_size_bytes(4096)
        .level_base_size_bytes(16 * 1024)
        .level0_triggers(2, 20, 30)
}

const MEMTABLE_BYTES: usize = 8 * 1024;

// ---------------------------------------------------------------------------------------
// The workload: every batch is a function of its id (and of the position it acknowledges).

/// splitmix64: the batch plan's randomness, a function of the id alone.
fn mix(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn synced(id: u64) -> bool {
    (mix(id) >> 8) & 3 == 0
}

fn carries_mark(id: u64) -> bool {
    (mix(id) >> 12) & 15 == 0
}

fn key(i: u64) -> Vec<u8> {
    format!("k{:04}", i % KEYS).into_bytes()
}

/// `v<id>.` and padding; now and then 3 KiB, so memtables fill unevenly.
fn value(id: u64) -> Vec<u8> {
    let r = mix(id);
    let pad = if (r >> 32) & 31 == 0 {
        3000
    } else {
        (r >> 16) & 255
    };
    format!("v{id}.{}", "x".repeat(pad as usize)).into_bytes()
}

/// Batch `id`: puts `key(id)`; one in two deletes `key(id - DELETE_DISTANCE)`; one in four
/// overwrites a `hot` key all threads share; a marked batch puts the position it acknowledges
/// under `mark`.
fn plan(id: u64, mark: Option<SeqNo>) -> WriteBatch {
    let r = mix(id);
    let mut b = WriteBatch::new();
    b.put(key(id), value(id));
    if r & 1 == 0 {
        b.delete(key(id - DELETE_DISTANCE));
    }
    if (r >> 1) & 3 == 0 {
        b.put(format!("hot{}", (r >> 3) & 7), value(id));
    }
    if let Some(position) = mark {
        b.put("mark", position.to_string());
        b.ack(MARKS, position);
    }
    b
}

// ---------------------------------------------------------------------------------------
// The child.

/// Appends one line to the acknowledgement file with one `write`, so lines never interleave
/// and a kill can only cut the last one.
fn record(acks: &File, line: String) {
    let mut acks = acks;
    let _ = acks.write_all(format!("{line}\n").as_bytes());
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(PathBuf::from)
}

/// Child mode: writes and consumes until killed. Without the variables (a normal test run)
/// it does nothing.
#[test]
fn crash_child_writes_until_killed() -> Result<()> {
    let (Some(dir), Some(acks)) = (env_path(CHILD_DIR_VAR), env_path(CHILD_ACKS_VAR)) else {
        return Ok(());
    };
    let var = |v: &str| std::env::var(v).ok().and_then(|s| s.parse().ok());
    let base: u64 = var(CHILD_ID_BASE_VAR).expect("id base");
    let memtable = var(CHILD_MEMTABLE_VAR).unwrap_or(MEMTABLE_BYTES as u64) as usize;
    let acks = OpenOptions::new()
        .create(true)
        .append(true)
        .open(acks)
        .expect("acknowledgement file");
    let db = Db::open(&dir, options(memtable))?;
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    let deadline = Instant::now() + CHILD_RUN_MAX;
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let (db, acks) = (&db, &acks);
            s.spawn(move || write_until(db, acks, base + t, deadline));
        }
        s.spawn(|| consume_until(&db, &acks, deadline));
    });
    Ok(())
}

/// Writes batches `first_id`, `first_id + WRITERS`, ...; after each returns, records
/// `batch <id> <first seqno> <synced>`.
fn write_until(db: &Db, acks: &File, first_id: u64, deadline: Instant) {
    let mut id = first_id;
    while Instant::now() < deadline {
        let mark = carries_mark(id).then(|| db.latest_seqno());
        let sync = synced(id);
        match db.write(plan(id, mark), &WriteOptions { sync }) {
            Ok(first) => record(acks, format!("batch {id} {first} {}", u8::from(sync))),
            Err(e) => return record(acks, format!("error writing batch {id}: {e}")),
        }
        id += WRITERS;
    }
}

/// Reads the feed through subscription `CONSUMER` and acknowledges every third batch (every
/// other acknowledgement synced); records `position <p>` after each acknowledgement returns.
fn consume_until(db: &Db, acks: &File, deadline: Instant) {
    let run = || -> Result<()> {
        let mut sub = db.open_subscription(CONSUMER)?;
        let mut read = 0u64;
        while Instant::now() < deadline {
            let Some(batch) = sub.next_timeout(Duration::from_millis(20))? else {
                continue;
            };
            read += 1;
            if read.is_multiple_of(3) {
                let sync = read.is_multiple_of(6);
                sub.ack(batch.last_seqno, &WriteOptions { sync })?;
                record(acks, format!("position {}", batch.last_seqno));
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        record(acks, format!("error consuming: {e}"));
    }
}

// ---------------------------------------------------------------------------------------
// What the child acknowledged.

#[derive(Debug, Default)]
struct Acks {
    /// (batch id, first sequence number, synced)
    batches: Vec<(u64, SeqNo, bool)>,
    /// The newest position the consumer acknowledged.
    position: Option<SeqNo>,
    /// How many positions it acknowledged.
    positions: u64,
    /// Errors the child reported.
    errors: Vec<String>,
}

/// Reads the acknowledgement file; a last line without its newline was cut by the kill.
fn read_acks(path: &Path) -> Acks {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut acks = Acks::default();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        match (words.first().copied(), num(1), num(2), num(3)) {
            (Some("batch"), Some(id), Some(first), Some(sync)) => {
                acks.batches.push((id, first, sync == 1))
            }
            (Some("position"), Some(p), _, _) => {
                acks.position = acks.position.max(Some(p));
                acks.positions += 1;
            }
            _ => acks.errors.push(format!("child: {}", line.trim_end())),
        }
    }
    acks
}

// ---------------------------------------------------------------------------------------
// The parent: running and killing the child.

/// A small xorshift generator: the test needs varied kill moments, not good randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after the child reported ready.
    AfterReady(Duration),
    /// This long after the child was started, whatever it is doing (often opening).
    AfterStart(Duration),
}

fn spawn_child(dir: &Path, acks: &Path, id_base: u64, memtable: usize) -> Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "crash_child_writes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_ACKS_VAR, acks)
        .env(CHILD_ID_BASE_VAR, id_base.to_string())
        .env(CHILD_MEMTABLE_VAR, memtable.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

/// Runs a child, kills it with SIGKILL at `kill_at`; returns what went wrong with the child
/// itself (it failed to start, or it exited by itself), if anything.
fn run_child_and_kill(
    dir: &Path,
    acks: &Path,
    id_base: u64,
    memtable: usize,
    kill_at: KillAt,
) -> Option<String> {
    let mut child = spawn_child(dir, acks, id_base, memtable);
    let mut stdout = BufReader::new(child.stdout.take().expect("child stdout"));
    match kill_at {
        KillAt::AfterStart(delay) => std::thread::sleep(delay),
        KillAt::AfterReady(delay) => {
            let mut line = String::new();
            while !line.contains("ready") {
                line.clear();
                if stdout.read_line(&mut line).map_or(true, |n| n == 0) {
                    break; // the child died before it was ready: reported below
                }
            }
            std::thread::sleep(delay);
        }
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait for child");
    if output.status.signal() == Some(SIGKILL) {
        return None;
    }
    Some(format!(
        "the child was not killed but ended by itself ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// SIGKILL's number on every Unix alluvium runs on.
const SIGKILL: i32 = 9;

// ---------------------------------------------------------------------------------------
// The parent: checking a reopened database.

/// The run's figures, printed at the end and copied into TESTING.md.
#[derive(Debug, Default)]
struct Figures {
    cycles: u64,
    kills_after_start: u64,
    acked_synced: u64,
    acked_unsynced: u64,
    recovered_unacked: u64,
    batches_replayed: u64,
    ops_replayed: u64,
    keys_compared: u64,
    deleted_keys_checked: u64,
    positions_acked: u64,
    lost_synced: u64,
    lost_unsynced: u64,
    /// Kills that left behind segments the manifest does not name: a flush or compaction was
    /// under way (or its inputs not yet removed).
    interrupted_background_work: u64,
    segments_max: usize,
    deepest_level: usize,
}

/// What the parent knows between cycles: the state every check so far agreed on.
struct Checker {
    dir: PathBuf,
    /// The contents the checked batches give.
    model: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Every key ever written, so that deleted ones are looked up too.
    written: BTreeSet<Vec<u8>>,
    /// The last sequence number checked (the `CHECKER` subscription's position).
    checked_seqno: SeqNo,
    /// The position of the last checked batch that acknowledged `MARKS`.
    mark: SeqNo,
    /// `CONSUMER`'s position at the last check.
    consumer_position: SeqNo,
    figures: Figures,
}

impl Checker {
    /// Creates the database and its three subscriptions.
    fn create(dir: &Path) -> Result<Checker> {
        let db = Db::open(dir, options(MEMTABLE_BYTES))?;
        for name in [CHECKER, CONSUMER, MARKS] {
            db.create_subscription(name, Start::Beginning)?;
        }
        db.close()?;
        Ok(Checker {
            dir: dir.to_path_buf(),
            model: BTreeMap::new(),
            written: BTreeSet::new(),
            checked_seqno: 0,
            mark: 0,
            consumer_position: 0,
            figures: Figures::default(),
        })
    }

    /// Reopens the database after a kill and lists every violation; on success the checked
    /// state becomes the base of the next cycle.
    fn check(&mut self, acks: &Acks) -> Vec<String> {
        let mut found = acks.errors.clone();
        if let Err(e) = self.check_reopened(acks, &mut found) {
            found.push(format!("reopening and reading failed: {e}"));
        }
        found
    }

    fn check_reopened(&mut self, acks: &Acks, found: &mut Vec<String>) -> Result<()> {
        let segments_before = segment_files(&self.dir)?;
        let db = Db::open(&self.dir, options(MEMTABLE_BYTES))?;
        if segment_files(&self.dir)? < segments_before {
            self.figures.interrupted_background_work += 1;
        }
        let latest = db.latest_seqno();
        if latest < self.checked_seqno {
            found.push(format!(
                "latest_seqno went back from {} to {latest}",
                self.checked_seqno
            ));
        }
        let recovered = self.replay_feed(&db, latest, found)?;
        self.check_acknowledged(acks, latest, &recovered, found);
        self.check_contents(&db, found)?;
        self.check_positions(&db, acks, latest, found);
        self.note_shape(&db);
        db.open_subscription(CHECKER)?
            .ack(latest, &WriteOptions::synced())?;
        db.close()?;
        self.checked_seqno = latest;
        Ok(())
    }

    /// Reads the feed from the last checked sequence number on, checks that it is contiguous,
    /// ends at `latest` and holds only workload batches, and applies it to the model. Returns
    /// the id of each recovered batch by first sequence number.
    fn replay_feed(
        &mut self,
        db: &Db,
        latest: SeqNo,
        found: &mut Vec<String>,
    ) -> Result<HashMap<SeqNo, u64>> {
        let mut sub = db.open_subscription(CHECKER)?;
        let mut next = self.checked_seqno + 1;
        let mut recovered = HashMap::new();
        while let Some(batch) = sub.try_next()? {
            if batch.first_seqno != next {
                found.push(format!(
                    "the feed hands out a batch at {} where {next} was due (a hole or a repeat)",
                    batch.first_seqno
                ));
            }
            match self.workload_batch(&batch) {
                Some(id) => {
                    recovered.insert(batch.first_seqno, id);
                }
                None => found.push(format!("not a workload batch: {batch:?}")),
            }
            self.apply(&batch);
            next = batch.last_seqno + 1;
        }
        if next != latest + 1 {
            found.push(format!(
                "the feed ends at {}, the database at {latest}",
                next - 1
            ));
        }
        Ok(recovered)
    }

    /// The id of the workload batch `batch` is, whole and byte for byte; notes its mark.
    fn workload_batch(&mut self, batch: &ChangeBatch) -> Option<u64> {
        let (_, first) = batch.ops.first()?;
        let id: u64 = std::str::from_utf8(first.value().strip_prefix(b"v")?)
            .ok()?
            .split('.')
            .next()?
            .parse()
            .ok()?;
        let mark = match batch.ops.iter().find(|(_, op)| op.key() == b"mark") {
            Some((_, op)) => Some(std::str::from_utf8(op.value()).ok()?.parse().ok()?),
            None => None,
        };
        let expected = plan(id, mark);
        let numbered = (batch.first_seqno..).zip(expected.ops().iter().cloned());
        let whole = batch.last_seqno + 1 - batch.first_seqno == expected.len() as u64;
        (whole && numbered.eq(batch.ops.iter().cloned()) && mark.is_some() == carries_mark(id))
            .then(|| {
                self.mark = mark.unwrap_or(self.mark);
                id
            })
    }

    fn apply(&mut self, batch: &ChangeBatch) {
        self.figures.batches_replayed += 1;
        for (_, op) in &batch.ops {
            self.figures.ops_replayed += 1;
            self.written.insert(op.key().to_vec());
            match op {
                Op::Put { key, value } => {
                    self.model.insert(key.clone(), value.clone());
                }
                Op::Delete { key } => {
                    self.model.remove(key);
                }
            }
        }
    }

    /// Every acknowledged batch is recovered, at the sequence number its write returned.
    fn check_acknowledged(
        &mut self,
        acks: &Acks,
        latest: SeqNo,
        recovered: &HashMap<SeqNo, u64>,
        found: &mut Vec<String>,
    ) {
        let f = &mut self.figures;
        for &(id, first, sync) in &acks.batches {
            *(if sync {
                &mut f.acked_synced
            } else {
                &mut f.acked_unsynced
            }) += 1;
            let kind = if sync { "synced" } else { "unsynced" };
            if first > latest {
                *(if sync {
                    &mut f.lost_synced
                } else {
                    &mut f.lost_unsynced
                }) += 1;
                found.push(format!(
                    "lost acknowledged {kind} batch {id} at {first}; recovered up to {latest}"
                ));
            } else if recovered.get(&first) != Some(&id) {
                found.push(format!(
                    "acknowledged {kind} batch {id} at {first}, recovered there: {:?}",
                    recovered.get(&first)
                ));
            }
        }
        f.recovered_unacked += recovered.len().saturating_sub(acks.batches.len()) as u64;
    }

    /// The database holds exactly the model, through `iter` and `get`.
    fn check_contents(&mut self, db: &Db, found: &mut Vec<String>) -> Result<()> {
        let actual: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().collect::<Result<_>>()?;
        let keys: BTreeSet<&Vec<u8>> = actual.keys().chain(self.model.keys()).collect();
        for k in keys {
            let (want, got) = (self.model.get(k), actual.get(k));
            if want != got {
                found.push(describe(k, want, got, "iter"));
            }
        }
        for k in &self.written {
            let (want, got) = (self.model.get(k), db.get(k)?);
            if want != got.as_ref() {
                found.push(describe(k, want, got.as_ref(), "get"));
            }
            self.figures.deleted_keys_checked += u64::from(want.is_none());
        }
        self.figures.keys_compared += self.written.len() as u64;
        Ok(())
    }

    /// No position is past the recovered end; acknowledged positions are not lost or moved
    /// back; `MARKS` is where the last recovered marked batch put it.
    fn check_positions(&mut self, db: &Db, acks: &Acks, latest: SeqNo, found: &mut Vec<String>) {
        let positions: HashMap<String, SeqNo> = db
            .subscriptions()
            .into_iter()
            .map(|s| (s.name, s.position))
            .collect();
        for (name, &p) in &positions {
            if p > latest {
                found.push(format!("{name} is at {p}, past the recovered end {latest}"));
            }
        }
        let consumer = positions.get(CONSUMER).copied().unwrap_or(0);
        let floor = self.consumer_position.max(acks.position.unwrap_or(0));
        if consumer < floor {
            found.push(format!(
                "{CONSUMER} is at {consumer}, but {floor} was acknowledged"
            ));
        }
        let expected = [(CHECKER, self.checked_seqno), (MARKS, self.mark)];
        for (name, want) in expected {
            if positions.get(name) != Some(&want) {
                found.push(format!(
                    "{name} is at {:?}, not {want}",
                    positions.get(name)
                ));
            }
        }
        self.figures.positions_acked += acks.positions;
        self.consumer_position = consumer;
    }

    fn note_shape(&mut self, db: &Db) {
        let levels = db.stats().levels;
        let segments = levels.iter().map(|l| l.segments).sum();
        let deepest = levels.iter().rposition(|l| l.segments > 0).unwrap_or(0);
        self.figures.segments_max = self.figures.segments_max.max(segments);
        self.figures.deepest_level = self.figures.deepest_level.max(deepest);
    }
}

fn describe(k: &[u8], want: Option<&Vec<u8>>, got: Option<&Vec<u8>>, how: &str) -> String {
    let short = |v: Option<&Vec<u8>>| {
        v.map(|v| String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned())
    };
    let k = String::from_utf8_lossy(k);
    match (want, got) {
        (None, Some(_)) => format!("{how}: deleted key {k} came back as {:?}", short(got)),
        (Some(_), None) => format!("{how}: key {k} is missing, expected {:?}", short(want)),
        _ => format!(
            "{how}: key {k} is {:?}, expected {:?}",
            short(got),
            short(want)
        ),
    }
}

fn segment_files(dir: &Path) -> Result<usize> {
    let listing = files::list(dir)?;
    Ok(listing
        .iter()
        .filter(|k| matches!(k, FileKind::Segment(_)))
        .count())
}

fn env_u64(var: &str) -> Option<u64> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

/// One cycle: a child on `checker`'s directory, killed per `rng`, then the check.
fn cycle(checker: &mut Checker, work: &Path, rng: &mut Rng, n: u64) -> Vec<String> {
    let acks_path = work.join(format!("acks-{n}"));
    let kill_at = if rng.below(6) == 0 {
        checker.figures.kills_after_start += 1;
        KillAt::AfterStart(Duration::from_millis(rng.below(60)))
    } else {
        KillAt::AfterReady(Duration::from_millis(5 + rng.below(76)))
    };
    let id_base = (n + 1) << 32;
    let dir = checker.dir.clone();
    let child = run_child_and_kill(&dir, &acks_path, id_base, MEMTABLE_BYTES, kill_at);
    let mut found: Vec<String> = child.into_iter().collect();
    found.extend(checker.check(&read_acks(&acks_path)));
    let _ = std::fs::remove_file(&acks_path);
    checker.figures.cycles += 1;
    found
        .iter_mut()
        .for_each(|v| *v = format!("{kill_at:?}: {v}"));
    found
}

#[test]
fn a_writer_killed_at_random_moments_recovers_a_prefix_with_every_acknowledged_batch() -> Result<()>
{
    let cycles = env_u64(CYCLES_VAR).unwrap_or(CYCLES_CI);
    let seed = env_u64(SEED_VAR).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64)
    });
    let work = tempfile::tempdir().expect("tempdir");
    let mut checker = Checker::create(&work.path().join("db"))?;
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    for n in 0..cycles {
        let found = cycle(&mut checker, work.path(), &mut rng, n);
        assert!(
            found.is_empty(),
            "cycle {n} (seed {seed}): {} violations, the first: {:#?}",
            found.len(),
            &found[..found.len().min(20)]
        );
    }
    let f = &checker.figures;
    println!(
        "seed {seed}, {:.1} s: {f:#?}",
        started.elapsed().as_secs_f64()
    );
    assert!(f.acked_synced > 0 && f.acked_unsynced > 0 && f.positions_acked > 0);
    assert!(f.segments_max > 0, "the children flushed");
    assert!(f.deepest_level > 0, "the children compacted");
    Ok(())
}

#[test]
fn the_checker_reports_lost_acknowledged_batches() -> Result<()> {
    // With a default-size memtable nothing rotates: every batch of the cycle is in the newest
    // log file, and removing it loses every acknowledged one.
    let work = tempfile::tempdir().expect("tempdir");
    let mut checker = Checker::create(&work.path().join("db"))?;
    let acks_path = work.path().join("acks");
    let kill_at = KillAt::AfterReady(Duration::from_millis(100));
    let child = run_child_and_kill(&checker.dir, &acks_path, 1 << 32, 64 << 20, kill_at);
    assert_eq!(child, None);
    let acks = read_acks(&acks_path);
    assert!(!acks.batches.is_empty(), "the child acknowledged batches");
    let newest = files::log_numbers(&checker.dir)?
        .into_iter()
        .max()
        .expect("a log file");
    std::fs::remove_file(files::log_path(&checker.dir, newest)).expect("remove log file");
    let found = checker.check(&acks);
    assert!(
        found.iter().any(|v| v.starts_with("lost acknowledged")),
        "{found:?}"
    );
    Ok(())
}
