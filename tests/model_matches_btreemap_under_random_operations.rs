//! Random puts, deletes, batches, reads, snapshots, iterators, flushes, compactions and
//! reopens give the same answers as a `BTreeMap` model.
//!
//! The key space is small (50 keys, among them the empty key and keys made of `0x00` and
//! `0xff` bytes) so that overwrites and deletes hit live keys, and the memtable is as small as
//! alluvium allows so that reads merge the memtable with several segments. Snapshots are
//! modelled as a clone of the model taken when the snapshot is; they must keep matching after
//! later writes, flushes and compactions. Segments are tiny and level targets small, so
//! background compactions run all the time, with snapshots held and iterators open across
//! them; iterators are modelled as the model's range when they were opened.
use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use alluvium::{Db, Options, Result, Snapshot, WriteBatch, WriteOptions};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

const KEYS: u8 = 50;
const PREFIXES: [&[u8]; 6] = [b"", b"k", b"k1", b"k4", b"\xff", b"\x00"];

fn key(i: u8) -> Vec<u8> {
    match i {
        0 => Vec::new(),
        1 => vec![0x00],
        2 => vec![0xff],
        3 => vec![0xff, 0xff],
        _ => format!("k{i}").into_bytes(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Get(u8),
    Range(Bound<u8>, Bound<u8>, bool),
    Prefix(usize, bool),
    TakeSnapshot,
    ReadSnapshot(usize, Bound<u8>, Bound<u8>, bool),
    SnapshotGet(usize, u8),
    Flush,
    Reopen,
    OpenIter(Bound<u8>, Bound<u8>, bool),
    DrainIter(usize),
    CompactRange(Bound<u8>, Bound<u8>),
    WaitIdle,
}

fn key_index() -> impl Strategy<Value = u8> {
    0..KEYS
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => proptest::collection::vec(any::<u8>(), 100..400),
    ]
}

fn bound() -> impl Strategy<Value = Bound<u8>> {
    prop_oneof![
        key_index().prop_map(Bound::Included),
        key_index().prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let batch_op = (key_index(), proptest::option::weighted(0.7, value()));
    prop_oneof![
        30 => (key_index(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        10 => key_index().prop_map(Op::Delete),
        8 => proptest::collection::vec(batch_op, 1..6).prop_map(Op::Batch),
        12 => key_index().prop_map(Op::Get),
        6 => (bound(), bound(), any::<bool>()).prop_map(|(lo, hi, rev)| Op::Range(lo, hi, rev)),
        3 => (0..PREFIXES.len(), any::<bool>()).prop_map(|(p, rev)| Op::Prefix(p, rev)),
        2 => Just(Op::TakeSnapshot),
        4 => (any::<usize>(), bound(), bound(), any::<bool>())
            .prop_map(|(s, lo, hi, rev)| Op::ReadSnapshot(s, lo, hi, rev)),
        3 => (any::<usize>(), key_index()).prop_map(|(s, k)| Op::SnapshotGet(s, k)),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        2 => (bound(), bound(), any::<bool>()).prop_map(|(lo, hi, rev)| Op::OpenIter(lo, hi, rev)),
        2 => any::<usize>().prop_map(Op::DrainIter),
        1 => (bound(), bound()).prop_map(|(lo, hi)| Op::CompactRange(lo, hi)),
        1 => Just(Op::WaitIdle),
    ]
}

fn options() -> Options {
    // 4 KiB is the smallest memtable alluvium accepts: a few dozen writes fill it. Tiny
    // segments and level targets make every flush start a compaction.
    Options::default()
        .memtable_size_bytes(4096)
        .segment_size_bytes(4096)
        .level_base_size_bytes(8192)
        .level_size_ratio(2)
        .level0_triggers(2, 20, 30)
        .compaction_threads(2)
}

fn key_bound(b: Bound<u8>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(i) => Bound::Included(key(i)),
        Bound::Excluded(i) => Bound::Excluded(key(i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The model's answer for a range, by filtering rather than `BTreeMap::range`, which panics on
/// inverted bounds that the database must simply answer with nothing.
fn model_range(model: &Model, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>, rev: bool) -> Entries {
    let mut out: Entries = model
        .iter()
        .filter(|(k, _)| {
            (
                lo.as_ref().map(Vec::as_slice),
                hi.as_ref().map(Vec::as_slice),
            )
                .contains(k.as_slice())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if rev {
        out.reverse();
    }
    out
}

fn model_prefix(model: &Model, prefix: &[u8], rev: bool) -> Entries {
    let mut out: Entries = model
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if rev {
        out.reverse();
    }
    out
}

fn collect(iter: alluvium::DbIter, rev: bool) -> Result<Entries> {
    if rev {
        iter.rev().collect()
    } else {
        iter.collect()
    }
}

/// The database under test plus everything the model knows.
struct Harness {
    dir: tempfile::TempDir,
    db: Option<Db>,
    model: Model,
    seqno: u64,
    snapshots: Vec<(Snapshot, Model)>,
    iters: Vec<(alluvium::DbIter, Entries, bool)>,
    /// Compactions seen, summed over every open of the database.
    compactions: u64,
}

impl Harness {
    fn new() -> Result<Harness> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), options())?;
        Ok(Harness {
            dir,
            db: Some(db),
            model: Model::new(),
            seqno: 0,
            snapshots: Vec::new(),
            iters: Vec::new(),
            compactions: 0,
        })
    }

    fn db(&self) -> &Db {
        self.db
            .as_ref()
            .expect("the database is open between operations")
    }

    fn snapshot(&self, i: usize) -> Option<&(Snapshot, Model)> {
        match self.snapshots.len() {
            0 => None,
            n => self.snapshots.get(i % n),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<()> {
        match op {
            Op::Put(k, v) => self.write(&[(*k, Some(v.clone()))]),
            Op::Delete(k) => self.write(&[(*k, None)]),
            Op::Batch(ops) => self.write(ops),
            Op::Get(k) => {
                assert_eq!(self.db().get(key(*k))?.as_ref(), self.model.get(&key(*k)));
                Ok(())
            }
            Op::Range(lo, hi, rev) => self.check_range(*lo, *hi, *rev),
            Op::Prefix(p, rev) => {
                let got = collect(self.db().prefix(PREFIXES[*p]), *rev)?;
                assert_eq!(got, model_prefix(&self.model, PREFIXES[*p], *rev));
                Ok(())
            }
            Op::TakeSnapshot => {
                let snap = self.db().snapshot();
                assert_eq!(snap.seqno(), self.seqno);
                self.snapshots.push((snap, self.model.clone()));
                Ok(())
            }
            Op::ReadSnapshot(i, lo, hi, rev) => self.check_snapshot_range(*i, *lo, *hi, *rev),
            Op::SnapshotGet(i, k) => {
                if let Some((snap, model)) = self.snapshot(*i) {
                    assert_eq!(snap.get(key(*k))?.as_ref(), model.get(&key(*k)));
                }
                Ok(())
            }
            Op::Flush => self.db().flush(),
            Op::Reopen => self.reopen(),
            Op::OpenIter(lo, hi, rev) => {
                let (lo, hi) = (key_bound(*lo), key_bound(*hi));
                let iter = self.db().range((lo.clone(), hi.clone()));
                self.iters
                    .push((iter, model_range(&self.model, &lo, &hi, *rev), *rev));
                Ok(())
            }
            Op::DrainIter(i) => self.drain_iter(*i),
            Op::CompactRange(lo, hi) => self.db().compact_range((key_bound(*lo), key_bound(*hi))),
            Op::WaitIdle => {
                self.db().wait_idle()?;
                self.check_levels_do_not_overlap()
            }
        }
    }

    fn write(&mut self, ops: &[(u8, Option<Vec<u8>>)]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (k, v) in ops {
            match v {
                Some(v) => batch.put(key(*k), v),
                None => batch.delete(key(*k)),
            };
        }
        let first = self.db().write(batch, &WriteOptions::default())?;
        assert_eq!(
            first,
            self.seqno + 1,
            "a batch starts right after the last one"
        );
        self.seqno += ops.len() as u64;
        assert_eq!(self.db().latest_seqno(), self.seqno);
        for (k, v) in ops {
            match v {
                Some(v) => self.model.insert(key(*k), v.clone()),
                None => self.model.remove(&key(*k)),
            };
        }
        Ok(())
    }

    fn check_range(&self, lo: Bound<u8>, hi: Bound<u8>, rev: bool) -> Result<()> {
        let (lo, hi) = (key_bound(lo), key_bound(hi));
        let got = collect(self.db().range((lo.clone(), hi.clone())), rev)?;
        assert_eq!(
            got,
            model_range(&self.model, &lo, &hi, rev),
            "range {lo:?}..{hi:?} rev={rev}"
        );
        Ok(())
    }

    fn check_snapshot_range(
        &self,
        i: usize,
        lo: Bound<u8>,
        hi: Bound<u8>,
        rev: bool,
    ) -> Result<()> {
        let Some((snap, model)) = self.snapshot(i) else {
            return Ok(());
        };
        let (lo, hi) = (key_bound(lo), key_bound(hi));
        let got = collect(snap.range((lo.clone(), hi.clone())), rev)?;
        assert_eq!(
            got,
            model_range(model, &lo, &hi, rev),
            "snapshot at {} range {lo:?}..{hi:?} rev={rev}",
            snap.seqno()
        );
        Ok(())
    }

    /// Reads an iterator opened earlier to its end: it must show the state it was opened on.
    fn drain_iter(&mut self, i: usize) -> Result<()> {
        if self.iters.is_empty() {
            return Ok(());
        }
        let (iter, expected, rev) = self.iters.swap_remove(i % self.iters.len());
        assert_eq!(collect(iter, rev)?, expected, "an iterator opened earlier");
        Ok(())
    }

    /// Levels 1 and deeper hold segments whose key ranges do not overlap.
    fn check_levels_do_not_overlap(&self) -> Result<()> {
        let manifest = alluvium::manifest::read_current(self.dir.path())?;
        let (state, _) = alluvium::manifest::read_manifest(&manifest)?;
        for (level, segs) in state.levels.iter().enumerate().skip(1) {
            let mut ranges: Vec<(Vec<u8>, Vec<u8>)> = segs
                .iter()
                .map(|s| {
                    let (lo, hi) = (&s.meta.smallest, &s.meta.largest);
                    (
                        alluvium::key::user_key(lo).to_vec(),
                        alluvium::key::user_key(hi).to_vec(),
                    )
                })
                .collect();
            ranges.sort();
            for pair in ranges.windows(2) {
                assert!(pair[0].1 < pair[1].0, "level {level} overlaps: {pair:?}");
            }
        }
        Ok(())
    }

    /// Drops every snapshot, iterator and the database, then opens the directory again.
    fn reopen(&mut self) -> Result<()> {
        self.snapshots.clear();
        self.iters.clear();
        let levels = self.db().stats().levels;
        self.compactions += levels.iter().map(|l| l.compaction.compactions).sum::<u64>();
        self.db = None;
        let db = Db::open(self.dir.path(), options())?;
        assert_eq!(db.latest_seqno(), self.seqno);
        self.db = Some(db);
        self.check_everything()
    }

    fn check_everything(&self) -> Result<()> {
        let all: Entries = self.db().iter().collect::<Result<_>>()?;
        assert_eq!(
            all,
            model_range(&self.model, &Bound::Unbounded, &Bound::Unbounded, false)
        );
        for (snap, model) in &self.snapshots {
            let seen: Entries = snap.range::<&[u8], _>(..).collect::<Result<_>>()?;
            let expected = model_range(model, &Bound::Unbounded, &Bound::Unbounded, false);
            assert_eq!(seen, expected, "snapshot at {}", snap.seqno());
        }
        Ok(())
    }
}

fn run(ops: &[Op]) -> Result<()> {
    let mut h = Harness::new()?;
    for op in ops {
        h.apply(op)?;
    }
    h.check_everything()?;
    h.reopen()
}

/// The operations above must exercise compactions, not only flushes.
#[test]
fn model_runs_exercise_compactions() -> Result<()> {
    let ops: Vec<Op> = (0..600u32)
        .map(|i| match i % 4 {
            3 => Op::Delete((i % 50) as u8),
            _ => Op::Put((i * 7 % 50) as u8, vec![i as u8; 120]),
        })
        .collect();
    let mut h = Harness::new()?;
    for op in ops.iter().chain([Op::WaitIdle, Op::Reopen].iter()) {
        h.apply(op)?;
    }
    assert!(
        h.compactions > 0,
        "600 writes with tiny segments compacted nothing"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn model_matches_btreemap_under_random_operations(
        ops in proptest::collection::vec(op(), 1..200)
    ) {
        run(&ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
