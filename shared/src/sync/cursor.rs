//! Ordered intake of feed entries: duplicates ignored, gaps noticed, nothing applied out of
//! order or twice.

use super::FeedEntry;
use std::collections::BTreeMap;

/// Entries a cursor buffers behind a gap, by default; past that it asks for a snapshot.
pub const DEFAULT_MAX_BUFFERED: usize = 10_000;

/// Entries missing between what was applied and what was buffered: sequence numbers in
/// `(after, upto]`. Fetch them with `GET /api/changes?since={after}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The last sequence number applied (exclusive lower bound).
    pub after: u64,
    /// The previous sequence number of the first buffered entry (inclusive upper bound).
    pub upto: u64,
}

impl Gap {
    /// How many sequence numbers are missing (at most `u32::MAX`).
    pub fn len(&self) -> u32 {
        u32::try_from(self.upto.saturating_sub(self.after)).unwrap_or(u32::MAX)
    }

    /// Whether nothing is missing (never so for a gap a cursor reports).
    pub fn is_empty(&self) -> bool {
        self.upto <= self.after
    }
}

/// What one offer to a [`FeedCursor`] came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intake {
    /// Entries to apply now, in order.
    pub ready: Vec<FeedEntry>,
    /// A gap to refetch (reported once per gap; again after [`FeedCursor::refetch_failed`]).
    pub fetch: Option<Gap>,
    /// The buffer is full: the cursor cannot wait for the gap any longer; load snapshots and
    /// [`FeedCursor::reset`] (reported once until the reset).
    pub snapshot: bool,
}

/// Ordered intake with gap detection. It knows the last sequence number applied:
///
/// - an entry with `seq <= applied` is a duplicate: ignored and counted;
/// - an entry with `prev_seq <= applied < seq` follows on: it is ready, together with any
///   buffered entries that now follow on too, in order (`prev_seq < applied` happens only after
///   a [`reset`](Self::reset) to a number between two entries);
/// - anything else is buffered (at most `max_buffered` entries; more, and the cursor asks for
///   a snapshot), and the missing range is reported to be refetched.
#[derive(Debug, Clone)]
pub struct FeedCursor {
    applied: u64,
    /// Entries waiting behind a gap, by sequence number.
    buffered: BTreeMap<u64, FeedEntry>,
    max_buffered: usize,
    /// The `applied` at which the current gap was reported, so it is reported once.
    reported_at: Option<u64>,
    snapshot_asked: bool,
    duplicates: u64,
    overflowed: u64,
}

impl FeedCursor {
    /// A cursor that has applied everything up to `applied`.
    pub fn new(applied: u64) -> Self {
        Self::with_capacity(applied, DEFAULT_MAX_BUFFERED)
    }

    /// A cursor that buffers at most `max_buffered` entries behind a gap.
    pub fn with_capacity(applied: u64, max_buffered: usize) -> Self {
        Self {
            applied,
            buffered: BTreeMap::new(),
            max_buffered: max_buffered.max(1),
            reported_at: None,
            snapshot_asked: false,
            duplicates: 0,
            overflowed: 0,
        }
    }

    /// The last sequence number applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Entries waiting behind a gap.
    pub fn buffered(&self) -> usize {
        self.buffered.len()
    }

    /// Duplicates ignored (count).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Entries dropped because the buffer was full (count).
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// The gap the cursor is waiting on, if any.
    pub fn gap(&self) -> Option<Gap> {
        let first = self.buffered.values().next()?;
        (first.prev_seq > self.applied).then_some(Gap {
            after: self.applied,
            upto: first.prev_seq,
        })
    }

    /// Takes in one entry. See the type's rules.
    pub fn offer(&mut self, entry: FeedEntry) -> Intake {
        self.offer_all(std::iter::once(entry))
    }

    /// Takes in several entries (a refetched range, a broadcast batch) and reports a gap at
    /// most once, after all of them.
    pub fn offer_all(&mut self, entries: impl IntoIterator<Item = FeedEntry>) -> Intake {
        let mut out = Intake::default();
        for e in entries {
            if e.seq <= self.applied || self.buffered.contains_key(&e.seq) {
                self.duplicates += 1;
            } else if self.buffered.len() >= self.max_buffered && e.prev_seq > self.applied {
                self.overflowed += 1;
                if !self.snapshot_asked {
                    self.snapshot_asked = true;
                    out.snapshot = true;
                }
            } else {
                self.buffered.insert(e.seq, e);
                self.drain(&mut out.ready);
            }
        }
        out.fetch = self.report_gap();
        out
    }

    /// A refetch of the reported gap failed: the gap is reported again (returned now).
    pub fn refetch_failed(&mut self) -> Option<Gap> {
        self.reported_at = None;
        self.report_gap()
    }

    /// Snapshots put everything up to `seq` in place: buffered entries up to `seq` are
    /// dropped, and those that now follow on are returned, in order. `seq` may be below
    /// [`applied`](Self::applied) (snapshots older than the feed): later entries then come
    /// again and the caller's per-collection sequence numbers (see
    /// [`super::SyncedRows::apply`]) keep them from applying twice.
    pub fn reset(&mut self, seq: u64) -> Intake {
        self.applied = seq;
        self.buffered.retain(|s, _| *s > seq);
        self.reported_at = None;
        self.snapshot_asked = false;
        let mut out = Intake::default();
        self.drain(&mut out.ready);
        out.fetch = self.report_gap();
        out
    }

    fn drain(&mut self, ready: &mut Vec<FeedEntry>) {
        while let Some(first) = self.buffered.first_entry() {
            if first.get().prev_seq > self.applied {
                break;
            }
            let e = first.remove();
            self.applied = e.seq;
            ready.push(e);
        }
    }

    fn report_gap(&mut self) -> Option<Gap> {
        let gap = self.gap()?;
        if self.reported_at == Some(self.applied) {
            return None;
        }
        self.reported_at = Some(self.applied);
        Some(gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(seq: u64) -> FeedEntry {
        FeedEntry {
            seq,
            prev_seq: seq - 1,
            tx_id: None,
            changes: Vec::new(),
        }
    }

    fn seqs(i: &Intake) -> Vec<u64> {
        i.ready.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn entries_in_order_apply_and_duplicates_are_counted() {
        let mut c = FeedCursor::new(0);
        assert_eq!(seqs(&c.offer(e(1))), [1]);
        assert_eq!(seqs(&c.offer(e(2))), [2]);
        assert!(c.offer(e(2)).ready.is_empty());
        assert!(c.offer(e(1)).ready.is_empty());
        assert_eq!((c.applied(), c.duplicates()), (2, 2));
    }

    #[test]
    fn a_gap_is_reported_once_and_filled_in_order() {
        let mut c = FeedCursor::new(2);
        let i = c.offer(e(5));
        assert!(i.ready.is_empty());
        assert_eq!(i.fetch, Some(Gap { after: 2, upto: 4 }));
        assert_eq!(i.fetch.unwrap().len(), 2);
        assert_eq!(c.offer(e(6)).fetch, None, "same gap, not again");
        assert_eq!(c.offer(e(5)).fetch, None, "a duplicate in the buffer");
        assert_eq!(c.duplicates(), 1);
        let i = c.offer_all([e(3), e(4)]);
        assert_eq!(seqs(&i), [3, 4, 5, 6]);
        assert_eq!((i.fetch, c.buffered(), c.applied()), (None, 0, 6));
    }

    #[test]
    fn a_failed_refetch_reports_the_gap_again_and_a_partial_one_reports_the_rest() {
        let mut c = FeedCursor::new(0);
        assert!(c.offer(e(10)).fetch.is_some());
        assert_eq!(c.refetch_failed(), Some(Gap { after: 0, upto: 9 }));
        let i = c.offer_all([e(1), e(2)]);
        assert_eq!(seqs(&i), [1, 2]);
        assert_eq!(i.fetch, Some(Gap { after: 2, upto: 9 }));
    }

    #[test]
    fn a_full_buffer_asks_for_a_snapshot_once_and_a_reset_resumes() {
        let mut c = FeedCursor::with_capacity(0, 2);
        c.offer(e(5));
        c.offer(e(6));
        assert!(c.offer(e(7)).snapshot);
        assert!(!c.offer(e(8)).snapshot);
        assert_eq!(c.overflowed(), 2);
        let i = c.reset(4);
        assert_eq!(seqs(&i), [5, 6]);
        assert_eq!(i.fetch, None, "7 and 8 were dropped: nothing buffered");
        let i = c.offer(e(8));
        assert_eq!(i.fetch, Some(Gap { after: 6, upto: 7 }));
    }

    #[test]
    fn a_reset_between_entries_drops_what_it_covers_and_applies_what_follows() {
        let mut c = FeedCursor::new(0);
        c.offer(FeedEntry {
            seq: 20,
            prev_seq: 10,
            tx_id: None,
            changes: Vec::new(),
        });
        c.offer(e(8));
        let i = c.reset(15);
        assert_eq!(seqs(&i), [20], "prev 10 <= 15 < 20 follows on");
        assert_eq!(c.buffered(), 0);
    }
}
