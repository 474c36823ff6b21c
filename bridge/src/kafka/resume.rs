//! Where ingest resumes a partition, and which records it applies: the part of exactly-once
//! that does not trust a fetch from an offset to start at that offset.
//!
//! Kafka answers a fetch from offset `o` with the record batch that holds `o` and the client
//! drops the records before `o`. The `tansu` 0.6.0 broker answers with the batches whose *base*
//! offset is `o` or later (TESTING.md, "Bridges"): a fetch from inside a batch silently skips
//! the rest of it, and a fetch from inside the last batch returns nothing. So a restarted
//! ingest fetches from the offset of the last record it applied, not the one after, and
//! applies nothing from a partition until that record (or an earlier one) has come back: from
//! there on the partition is read without a hole. If a later record comes first, or nothing
//! comes for a while, it rewinds further (1,024 records, then 4,096, ..., then the beginning).
//!
//! # Invariants
//! - A record is applied only once the partition is *covered*: since the last seek a record at
//!   or before the stored offset came back, or the read started at the partition's beginning.
//! - A record at or before the stored offset is never applied (it was, before the restart).
//! - A record whose `alluvium-seqno` is not above the stored one is a duplicate a publisher
//!   crash produced: it is not applied, but the stored offset moves past it.

/// The first rewind, in records; each further one is 4 times longer.
const REWIND_FIRST: i64 = 1024;

/// What to do with a record [`PartitionRead::judge`] was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new record: write it, and store the partition's new position with it.
    Apply,
    /// A re-published change: do not write it, but store the partition's new position.
    SkipDuplicate,
    /// A record read again (at or before the stored offset): nothing to do.
    SkipReread,
    /// The fetch did not start early enough: seek the partition to this offset (`None`: its
    /// beginning) and judge what comes from there.
    Rewind(Option<i64>),
}

/// One partition's reading in one run of ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRead {
    /// Offset of the last record applied or skipped as a duplicate (-1: none) and the highest
    /// sequence number applied (0: none): what is stored with the data.
    pub stored: (i64, u64),
    /// Where the partition is fetched from (`None`: its beginning).
    from: Option<i64>,
    /// Whether a record at or before the stored offset came back since the last seek.
    covered: bool,
    /// Rewinds so far in this run.
    rewinds: u32,
}

impl PartitionRead {
    /// Reading resumes with the last record applied, `stored` (offset, sequence number).
    pub fn new(stored: (i64, u64)) -> Self {
        let from = (stored.0 >= 0).then_some(stored.0);
        PartitionRead {
            stored,
            from,
            covered: from.is_none(),
            rewinds: 0,
        }
    }

    /// The offset to fetch from (`None`: the partition's beginning).
    pub fn from(&self) -> Option<i64> {
        self.from
    }

    /// Whether every record after the stored offset that the broker holds will come next.
    pub fn is_covered(&self) -> bool {
        self.covered
    }

    /// Judges the next record of the partition, at `offset`, carrying `seqno`.
    pub fn judge(&mut self, offset: i64, seqno: Option<u64>) -> Verdict {
        if !self.covered {
            if offset > self.stored.0 && self.from.is_some() {
                return Verdict::Rewind(self.rewind());
            }
            self.covered = true;
        }
        if offset <= self.stored.0 {
            return Verdict::SkipReread;
        }
        let fresh = seqno.is_none_or(|s| s > self.stored.1);
        self.stored = (
            offset,
            seqno.map_or(self.stored.1, |s| s.max(self.stored.1)),
        );
        match fresh {
            true => Verdict::Apply,
            false => Verdict::SkipDuplicate,
        }
    }

    /// Nothing came from the partition for a while: where to seek, if the read is not yet
    /// covered (a fetch from inside the broker's last batch returns nothing on tansu).
    pub fn silent(&mut self) -> Option<Option<i64>> {
        if self.covered {
            return None;
        }
        if self.from.is_none() {
            // Read from the beginning and nothing there: the partition holds nothing.
            self.covered = true;
            return None;
        }
        Some(self.rewind())
    }

    fn rewind(&mut self) -> Option<i64> {
        let step = REWIND_FIRST.saturating_mul(1 << (2 * self.rewinds.min(20)));
        self.rewinds += 1;
        self.from = Some(self.stored.0.saturating_sub(step)).filter(|&o| o > 0);
        self.from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition of `records` offsets (sequence number = offset + 1) in batches of the
    /// given sizes, fetched as a broker does: Kafka from the offset, tansu from the first
    /// batch whose base offset is at or after it.
    struct Partition {
        batch_bases: Vec<i64>,
        records: i64,
        tansu: bool,
    }

    impl Partition {
        fn new(batch_sizes: &[i64], tansu: bool) -> Self {
            let mut batch_bases = vec![];
            let mut base = 0;
            for &size in batch_sizes {
                batch_bases.push(base);
                base += size;
            }
            Partition {
                batch_bases,
                records: base,
                tansu,
            }
        }

        fn fetch(&self, from: Option<i64>) -> std::ops::Range<i64> {
            let from = from.unwrap_or(0);
            let start = match self.tansu {
                false => from,
                true => self
                    .batch_bases
                    .iter()
                    .copied()
                    .find(|&b| b >= from)
                    .unwrap_or(self.records),
            };
            start..self.records
        }
    }

    /// Ingests `partition` from the stored position `stored`: the offsets applied.
    fn resume(partition: &Partition, stored: (i64, u64)) -> Vec<i64> {
        let mut read = PartitionRead::new(stored);
        let mut applied = vec![];
        let mut records = partition.fetch(read.from());
        for _ in 0..100 {
            let mut rewound = None;
            for offset in records.clone() {
                match read.judge(offset, Some(offset as u64 + 1)) {
                    Verdict::Apply => applied.push(offset),
                    Verdict::SkipDuplicate | Verdict::SkipReread => {}
                    Verdict::Rewind(to) => {
                        rewound = Some(to);
                        break;
                    }
                }
            }
            match rewound.or_else(|| read.silent()) {
                Some(to) => records = partition.fetch(to),
                None => return applied,
            }
        }
        panic!("no end after 100 rewinds");
    }

    #[test]
    fn a_resumed_partition_applies_each_record_after_the_stored_one_once_on_kafka_and_tansu() {
        let sizes = [1, 300, 7, 1, 1, 2000, 5, 600, 3];
        for tansu in [false, true] {
            let partition = Partition::new(&sizes, tansu);
            for last in -1..partition.records {
                let applied = resume(&partition, (last, (last + 1) as u64));
                let expected: Vec<i64> = (last + 1..partition.records).collect();
                assert!(
                    applied == expected,
                    "tansu {tansu}, stored offset {last}: applied {} records from offset {:?}, \
                     expected {} from {}",
                    applied.len(),
                    applied.first(),
                    expected.len(),
                    last + 1
                );
            }
        }
    }

    #[test]
    fn a_republished_change_moves_the_stored_offset_but_is_not_applied() {
        let mut read = PartitionRead::new((9, 40));
        assert_eq!(read.judge(8, Some(39)), Verdict::SkipReread);
        assert_eq!(read.judge(9, Some(40)), Verdict::SkipReread);
        assert_eq!(read.judge(10, Some(38)), Verdict::SkipDuplicate);
        assert_eq!(read.stored, (10, 40));
        assert_eq!(read.judge(11, Some(41)), Verdict::Apply);
        assert_eq!(read.judge(12, None), Verdict::Apply);
        assert_eq!(read.stored, (12, 41));
    }

    #[test]
    fn a_partition_read_from_its_beginning_is_covered_by_its_first_record() {
        let mut read = PartitionRead::new((-1, 0));
        assert!(read.is_covered());
        assert_eq!(read.judge(500, Some(7)), Verdict::Apply);
        let mut read = PartitionRead::new((2000, 9));
        assert_eq!(read.judge(2500, Some(10)), Verdict::Rewind(Some(976)));
        assert_eq!(read.judge(2500, Some(10)), Verdict::Rewind(None));
        assert_eq!(
            read.judge(2500, Some(10)),
            Verdict::Apply,
            "nothing earlier exists"
        );
    }
}
