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
    ///
    /// The user key is the internal key's own buffer cut short, not a copy: a scan makes one
    /// allocation fewer per entry.
    fn visible(&self, (mut ikey, value): Entry) -> Option<Pending> {
        let p = parse_internal_key(&ikey)?;
        if p.seqno > self.snapshot {
            return None;
        }
        let (kind, user_len) = (p.kind, p.user_key.len());
        ikey.truncate(user_len);
        Some(Pending {
            user_key: ikey,
            kind,
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
            remember(&mut self.front_last, &v.user_key);
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
        remember(&mut self.back_last, &p.user_key);
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

/// Stores `key` in `slot`, reusing the buffer already there (a scan would otherwise allocate
/// a copy of every key it returns, and free the previous one).
fn remember(slot: &mut Option<Vec<u8>>, key: &[u8]) {
    let buf = slot.get_or_insert_with(Vec::new);
    buf.clear();
    buf.extend_from_slice(key);
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
