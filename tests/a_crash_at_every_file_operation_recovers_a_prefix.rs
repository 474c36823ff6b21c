//! The workload below (open, synced and unsynced batches, flushes, a compaction, close) is
//! crashed at its k-th file operation, for every k: every later operation fails, as if the
//! process had died there. Then, once as a plain process crash and once followed by a power
//! loss that drops every byte and directory entry not yet synced, the database must reopen
//! and hold every acknowledged synced batch, every batch whole or not at all, and a prefix of
//! the write order.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use alluvium::fs::{FaultInjectingFs, FaultKind};
use alluvium::{Db, Error, Options, Result, WriteBatch, WriteOptions};

const BATCHES: u32 = 40;

fn options(fs: &FaultInjectingFs) -> Options {
    Options::default()
        .memtable_size_bytes(4096)
        .segment_size_bytes(4096)
        .level_base_size_bytes(16 * 1024)
        .level0_triggers(2, 20, 30)
        .file_system(Arc::new(fs.clone()))
}

/// Runs the workload until the first error; returns each acknowledged batch and its sync flag.
fn workload(dir: &Path, fs: &FaultInjectingFs) -> BTreeMap<u32, bool> {
    let mut acked = BTreeMap::new();
    let Ok(db) = Db::open(dir, options(fs)) else {
        return acked;
    };
    for i in 0..BATCHES {
        let sync = i % 3 == 0;
        let mut b = WriteBatch::new();
        b.put(format!("k{i:03}"), vec![b'v'; 200])
            .put(format!("pair{i:03}"), i.to_string());
        if db.write(b, &WriteOptions { sync }).is_err() {
            return acked;
        }
        acked.insert(i, sync);
        let extra = match i {
            15 => db.flush(),
            30 => db.compact_range::<&[u8], _>(..),
            _ => Ok(()),
        };
        if extra.is_err() {
            return acked;
        }
    }
    let _ = db.close();
    acked
}

/// Checks the reopened database against what was acknowledged; returns the batches present.
fn check(dir: &Path, acked: &BTreeMap<u32, bool>, what: &str) -> Result<u32> {
    let db = Db::open(dir, Options::default())?;
    let mut present = 0;
    for i in 0..BATCHES {
        let k = db.get(format!("k{i:03}"))?.is_some();
        let pair = db.get(format!("pair{i:03}"))?.is_some();
        assert_eq!(k, pair, "{what}: batch {i} applied in part");
        if k {
            assert_eq!(present, i, "{what}: batch {i} present after a missing one");
            present += 1;
        }
    }
    let lost = acked
        .iter()
        .filter(|(i, sync)| **sync && **i >= present)
        .count();
    assert_eq!(
        lost, 0,
        "{what}: acknowledged synced batches lost (present {present})"
    );
    Ok(present)
}

fn total_ops() -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = FaultInjectingFs::new();
    fs.set_fault(None);
    let acked = workload(dir.path(), &fs);
    assert_eq!(
        acked.len() as u32,
        BATCHES,
        "the workload runs clean without faults"
    );
    fs.ops()
}

fn crash_everywhere(power_loss: bool) -> Result<(u64, u64)> {
    let ops = total_ops();
    let mut checked = 0;
    for k in 1..=ops + 1 {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let fs = FaultInjectingFs::new();
        fs.set_fault(Some(FaultKind::CrashAt(k)));
        let acked = workload(dir.path(), &fs);
        if power_loss {
            fs.power_loss().map_err(|e| Error::io(dir.path(), e))?;
        }
        let what = format!("crash at operation {k} of {ops}, power loss {power_loss}");
        check(dir.path(), &acked, &what)?;
        checked += acked.len() as u64;
    }
    eprintln!(
        "crash points: {} (power loss {power_loss}), acknowledged batches checked: {checked}",
        ops + 1
    );
    Ok((ops, checked))
}

#[test]
fn a_process_crash_at_every_file_operation_recovers_a_prefix() -> Result<()> {
    let (ops, _) = crash_everywhere(false)?;
    assert!(
        ops > 50,
        "the workload does enough file operations to matter: {ops}"
    );
    Ok(())
}

#[test]
fn a_power_loss_at_every_file_operation_recovers_a_prefix() -> Result<()> {
    crash_everywhere(true).map(|_| ())
}
