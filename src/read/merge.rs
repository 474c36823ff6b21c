//! The merging iterator and the user-facing iterator built on it.

use std::cmp::Ordering;

use crate::error::Result;
use crate::key::{compare_internal, parse_internal_key, SeqNo, ValueKind};

type Entry = (Vec<u8>, Vec<u8>);

/// A source of encoded internal keys and values, walkable from both ends independently.
pub(crate) type Source = Box<dyn DoubleEndedIterator<Item = Result<Entry>> + Send>;

/// A version seen by one end of the iterator, not yet decided.
struct Pending {
    user_key: Vec<u8>,
    kind: ValueKind,
    value: Vec<u8>,
}

/// Iterator over `(key, value)` pairs of a database or snapshot, in key order, forward or
/// backward ([`DoubleEndedIterator`]).
///
/// Consistent at the moment it was created: it reads one sequence number and pins the
/// memtables and segments it reads, so writes, flushes and compactions that happen meanwhile
/// are invisible to it and never wait for it.
///
/// # Invariants
/// Every source yields entries in internal-key order from its front and in reverse from its
/// back, each end walking the whole range. The front decides user keys in ascending order and
/// the back in descending order; iteration ends when the two meet, so no key is returned twice.
pub struct DbIter {
    sources: Vec<Source>,
    front_heads: Vec<Option<Entry>>,
    back_heads: Vec<Option<Entry>>,
    snapshot: SeqNo,
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    back_pending: Option<Pending>,
    done: bool,
    _pins: Box<dyn Send + Sync>,
}

impl DbIter {
    /// Merges `sources` as of `snapshot`; `pins` keeps what the sources read alive.
    pub(crate) fn new(sources: Vec<Source>, snapshot: SeqNo, pins: Box<dyn Send + Sync>) -> Self {
        let n = sources.len();
        DbIter {
            sources,
            front_heads: (0..n).map(|_| None).collect(),
            back_heads: (0..n).map(|_| None).collect(),
            snapshot,
            front_last: None,
            back_last: None,
            back_pending: None,
            done: false,
            _pins: pins,
        }
    }

    /// Takes the smallest head of the front side, refilling heads as needed.
    fn pop_front_entry(&mut self) -> Result<Option<Entry>> {
        let mut best: Option<usize> = None;
        for i in 0..self.sources.len() {
            if self.front_heads[i].is_none() {
                self.front_heads[i] = self.sources[i].next().transpose()?;
            }
            if let Some((k, _)) = &self.front_heads[i] {
                let better = best
                    .and_then(|b| self.front_heads[b].as_ref())
                    .is_none_or(|(bk, _)| compare_internal(k, bk) == Ordering::Less);
                if better {
                    best = Some(i);
                }
            }
        }
        Ok(best.and_then(|b| self.front_heads[b].take()))
    }

    /// Takes the largest head of the back side, refilling heads as needed.
    fn pop_back_entry(&mut self) -> Result<Option<Entry>> {
        let mut best: Option<usize> = None;
        for i in 0..self.sources.len() {
            if self.back_heads[i].is_none() {
                self.back_heads[i] = self.sources[i].next_back().transpose()?;
            }
            if let Some((k, _)) = &self.back_heads[i] {
                let better = best
                    .and_then(|b| self.back_heads[b].as_ref())
                    .is_none_or(|(bk, _)| compare_internal(k, bk) == Ordering::Greater);
                if better {
                    best = Some(i);
                }
            }
        }
        Ok(best.and_then(|b| self.back_heads[b].take()))
    }

    /// Decodes a visible entry: `None` for versions newer than the snapshot or bad keys.
    fn visible(&self, (ikey, value): Entry) -> Option<Pending> {
        let p = parse_internal_key(&ikey)?;
        (p.seqno <= self.snapshot).then(|| Pending {
            user_key: p.user_key.to_vec(),
            kind: p.kind,
            value,
        })
    }

    fn next_front(&mut self) -> Result<Option<Entry>> {
        while let Some(entry) = self.pop_front_entry()? {
            let Some(v) = self.visible(entry) else {
                continue;
            };
            if self.front_last.as_deref() == Some(&v.user_key[..]) {
                continue; // an older version of a key already decided
            }
            if self.back_last.as_ref().is_some_and(|b| v.user_key >= *b) {
                return Ok(None);
            }
            self.front_last = Some(v.user_key.clone());
            if v.kind == ValueKind::Put {
                return Ok(Some((v.user_key, v.value)));
            }
        }
        Ok(None)
    }

    /// Decides the key held in `back_pending`, if any; `None` when it was a tombstone.
    fn decide_back(&mut self, p: Pending) -> Option<Result<Option<Entry>>> {
        if self.front_last.as_ref().is_some_and(|f| p.user_key <= *f) {
            return Some(Ok(None));
        }
        self.back_last = Some(p.user_key.clone());
        (p.kind == ValueKind::Put).then_some(Ok(Some((p.user_key, p.value))))
    }

    fn next_back_entry(&mut self) -> Result<Option<Entry>> {
        loop {
            let Some(entry) = self.pop_back_entry()? else {
                let Some(p) = self.back_pending.take() else {
                    return Ok(None);
                };
                match self.decide_back(p) {
                    Some(r) => return r,
                    None => continue,
                }
            };
            let Some(v) = self.visible(entry) else {
                continue;
            };
            // Backwards, versions of one key arrive oldest first: keep the newest seen.
            let same = self
                .back_pending
                .as_ref()
                .is_some_and(|p| p.user_key == v.user_key);
            let finished = if same { None } else { self.back_pending.take() };
            self.back_pending = Some(v);
            if let Some(p) = finished {
                if let Some(r) = self.decide_back(p) {
                    return r;
                }
            }
        }
    }

    fn finish(&mut self, r: Result<Option<Entry>>) -> Option<Result<Entry>> {
        match r {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for DbIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_front();
        self.finish(r)
    }
}

impl DoubleEndedIterator for DbIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_back_entry();
        self.finish(r)
    }
}
