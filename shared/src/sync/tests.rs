//! Property tests: random server histories delivered badly (duplicates, reorderings, drops,
//! snapshot resets) converge to the server's rows, in order and once; and tabs with pending
//! transactions converge for every conflict strategy.

use super::*;
use crate::model::{ClientId, Epoch, PendingMutation, Strategy, Transaction, TransactionState};
use crate::protocol::{Envelope, Message};
use crate::retry::SplitMix64;
use crate::tab::{ConflictStrategy, TabCore};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const COLLECTIONS: [&str; 2] = ["a", "b"];
const KEYS: u64 = 4;

type Rows = BTreeMap<(String, String), Value>;

/// A server's history: its entries, and its rows after each number of entries.
struct History {
    entries: Vec<FeedEntry>,
    after: Vec<Rows>,
}

impl History {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            after: vec![Rows::new()],
        }
    }

    fn last(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Appends an entry of these changes (each computed on the rows so far); returns its seq.
    fn push(&mut self, changes: Vec<RowChange>, tx_id: Option<String>) -> u64 {
        let seq = self.last() + 1;
        let mut rows = self.after.last().cloned().unwrap_or_default();
        for c in &changes {
            let k = (c.collection.clone(), c.key.clone());
            match c.row() {
                Some(v) => rows.insert(k, v.clone()),
                None => rows.remove(&k),
            };
        }
        self.entries.push(FeedEntry {
            seq,
            prev_seq: seq - 1,
            tx_id,
            changes,
        });
        self.after.push(rows);
        seq
    }

    fn random_change(&self, rng: &mut SplitMix64) -> RowChange {
        let collection = COLLECTIONS[rng.below(2) as usize].to_owned();
        let key = rng.below(KEYS).to_string();
        let exists = self
            .after
            .last()
            .is_some_and(|r| r.contains_key(&(collection.clone(), key.clone())));
        let (op, value) = match (exists, rng.below(3)) {
            (true, 0) => (ChangeOp::Delete, None),
            (true, _) => (
                ChangeOp::Update,
                Some(json!({"v": self.last() + 1, "by": "server"})),
            ),
            (false, _) => (ChangeOp::Insert, Some(json!({"v": self.last() + 1}))),
        };
        RowChange {
            collection,
            key,
            op,
            value,
        }
    }

    fn random(n: usize, rng: &mut SplitMix64) -> Self {
        let mut h = Self::new();
        for _ in 0..n {
            let changes = (0..=rng.below(2)).map(|_| h.random_change(rng)).collect();
            h.push(changes, None);
        }
        h
    }

    fn snapshot(&self, collection: &str, seq: u64) -> CollectionSnapshot {
        let rows = self.after[seq as usize]
            .iter()
            .filter(|((c, _), _)| c == collection)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        CollectionSnapshot {
            collection: collection.to_owned(),
            seq,
            rows,
        }
    }

    fn range(&self, after: u64, limit: u64) -> Vec<FeedEntry> {
        self.entries
            .iter()
            .skip(after as usize)
            .take(limit as usize)
            .cloned()
            .collect()
    }

    fn final_rows(&self) -> &Rows {
        &self.after[self.entries.len()]
    }
}

/// Entries as a careless transport delivers them: shuffled a little, some twice, some lost.
fn deliver_badly(entries: &[FeedEntry], rng: &mut SplitMix64) -> Vec<FeedEntry> {
    let mut out: Vec<FeedEntry> = Vec::new();
    for e in entries {
        if rng.chance(0.15) {
            continue;
        }
        out.push(e.clone());
        if rng.chance(0.15) {
            out.push(e.clone());
        }
    }
    for i in 0..out.len() {
        if rng.chance(0.2) {
            let j = (i + 1 + rng.below(3) as usize).min(out.len() - 1);
            out.swap(i, j);
        }
    }
    out
}

fn rows_of(rows: &SyncedRows) -> Rows {
    COLLECTIONS
        .iter()
        .flat_map(|c| {
            rows.rows(c)
                .map(|(k, v)| (((*c).to_owned(), k.clone()), v.clone()))
        })
        .collect()
}

/// Applies what a cursor made ready, checking each follows on from the last.
fn apply_ready(ready: Vec<FeedEntry>, applied: &mut u64, rows: &mut SyncedRows) {
    for e in ready {
        assert!(
            e.prev_seq <= *applied && e.seq > *applied,
            "entry {} (prev {}) after {}",
            e.seq,
            e.prev_seq,
            applied
        );
        *applied = e.seq;
        rows.apply(&e);
        rows.advance(e.seq);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A cursor and rows fed duplicates, reorderings, drops (answered by refetching the
    /// reported gap) and snapshot resets end with the server's rows, having applied every
    /// entry in order and none twice.
    #[test]
    fn cursor_and_rows_converge_to_the_server(seed in any::<u64>(), n in 0usize..40, cap in 1usize..20) {
        let rng = &mut SplitMix64::new(seed);
        let h = History::random(n, rng);
        let mut cursor = FeedCursor::with_capacity(0, cap);
        let mut rows = SyncedRows::new();
        let mut applied = 0u64;
        let mut gaps: Vec<Gap> = Vec::new();
        let reset = |cursor: &mut FeedCursor, rows: &mut SyncedRows, applied: &mut u64, rng: &mut SplitMix64| {
            // Snapshots of the server as it is now (at or after what was applied), one per
            // collection, maybe at different numbers.
            for c in COLLECTIONS {
                let seq = *applied + rng.below(h.last() - *applied + 1);
                rows.load(h.snapshot(c, seq));
            }
            let base = rows.min_seq().unwrap_or(0);
            *applied = base;
            let intake = cursor.reset(base);
            apply_ready(intake.ready, applied, rows);
            intake.fetch
        };
        for e in deliver_badly(&h.entries, rng) {
            let intake = cursor.offer(e);
            apply_ready(intake.ready, &mut applied, &mut rows);
            gaps.extend(intake.fetch);
            if intake.snapshot || rng.chance(0.03) {
                gaps.extend(reset(&mut cursor, &mut rows, &mut applied, rng));
            }
            if rng.chance(0.3) {
                if let Some(gap) = gaps.pop() {
                    if rng.chance(0.2) {
                        gaps.extend(cursor.refetch_failed());
                    } else {
                        let intake = cursor.offer_all(h.range(gap.after, u64::from(gap.len())));
                        apply_ready(intake.ready, &mut applied, &mut rows);
                        gaps.extend(intake.fetch);
                    }
                }
            }
        }
        // The transport recovers: refetch what is still missing, from where the cursor is.
        let mut rounds = 0;
        while cursor.applied() < h.last() {
            rounds += 1;
            prop_assert!(rounds < 100, "no progress");
            let intake = cursor.offer_all(h.range(cursor.applied(), 5));
            apply_ready(intake.ready, &mut applied, &mut rows);
        }
        prop_assert_eq!(cursor.applied(), h.last());
        prop_assert_eq!(&rows_of(&rows), h.final_rows());
    }
}

/// What happens, in a tab's life, in the tab property test.
#[derive(Debug, Clone)]
enum Event {
    /// The leader broadcasts these entries (1-based seqs, as delivered).
    Entries(Vec<FeedEntry>),
    /// The leader says transaction `i` is persisting.
    Persisting(usize),
    /// The leader says transaction `i` settled (completed at its server seq, or failed).
    Settled(usize),
}

fn leader_env(body: Message) -> Envelope {
    Envelope::broadcast("app", &ClientId("leader".into()), body)
}

/// Feeds a message to the tab, and answers its `sync_from` asks the way a leader does: with
/// the entries after the tab's position up to `leader_at`, or with every collection's rows
/// there.
fn hear(t: &mut TabCore, h: &History, leader_at: u64, body: Message, rng: &mut SplitMix64) {
    let mut queue = vec![body];
    let mut rounds = 0;
    while let Some(body) = queue.pop() {
        rounds += 1;
        assert!(rounds < 1000, "the tab keeps asking");
        for o in t.receive(1, &leader_env(body)) {
            let crate::tab::TabOutput::Send(Message::SyncFrom { applied }) = o else {
                continue;
            };
            if applied >= leader_at {
                continue;
            }
            if rng.chance(0.5) {
                queue.push(Message::SyncEntries {
                    epoch: Epoch(1),
                    entries: h.range(applied, leader_at - applied),
                });
            } else {
                for c in COLLECTIONS {
                    let snap = h.snapshot(c, leader_at);
                    queue.push(Message::SyncRows {
                        epoch: Epoch(1),
                        collection: c.into(),
                        seq: leader_at,
                        rows: snap.rows,
                        more: false,
                    });
                }
            }
        }
    }
}

fn tx_state(tx: &Transaction, state: TransactionState, server_seq: Option<u64>) -> Message {
    let mut tx = tx.clone();
    tx.state = state;
    tx.seq = 1;
    tx.server_seq = server_seq;
    Message::State {
        epoch: Epoch(1),
        txs: vec![tx],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A tab with pending transactions, some confirmed (their change shows in the feed at their
    /// server seq) and some rejected, fed the leader's entries with duplicates, reorderings and
    /// drops (answered when it asks), ends showing exactly the server's rows with nothing
    /// pending, whatever its conflict strategy.
    #[test]
    fn a_tab_with_pending_transactions_converges_to_the_server(
        seed in any::<u64>(),
        n in 0usize..25,
        m in 0usize..5,
        strategy in 0usize..3,
    ) {
        let rng = &mut SplitMix64::new(seed);
        let strategy = [ConflictStrategy::Rebase, ConflictStrategy::ServerWins, ConflictStrategy::Hold][strategy];
        let mut t = TabCore::new(ClientId("me".into()), "app");
        t.follow_leader_feed(&COLLECTIONS);
        for c in COLLECTIONS {
            t.set_conflict(c, strategy);
        }
        t.receive(0, &leader_env(Message::Leader { epoch: Epoch(1) }));
        t.leader_verified(0, Epoch(1), ClientId("leader".into()));
        for c in COLLECTIONS {
            t.receive(0, &leader_env(Message::SyncRows {
                epoch: Epoch(1), collection: c.into(), seq: 0, rows: Vec::new(), more: false,
            }));
        }

        // The tab's transactions, each one change, made on an empty view.
        let txs: Vec<Transaction> = (0..m)
            .map(|i| {
                let c = COLLECTIONS[rng.below(2) as usize];
                let k = rng.below(KEYS).to_string();
                let mutation = match rng.below(3) {
                    0 => PendingMutation::insert(c, &k, json!({"v": format!("mine{i}")})),
                    1 => PendingMutation::update(c, &k, json!({}), json!({"mine": i})),
                    _ => PendingMutation::delete(c, &k, json!({})),
                };
                Transaction::new(format!("t{i}").as_str().into(), "f", Strategy::Ordered, vec![mutation], 0)
            })
            .collect();
        for tx in &txs {
            t.submit(tx.clone());
        }
        let confirmed: Vec<bool> = txs.iter().map(|_| rng.chance(0.6)).collect();

        // The server's history: other writers' changes, and each confirmed transaction's.
        let mut h = History::new();
        let mut server_seq: Vec<Option<u64>> = vec![None; m];
        let mut to_confirm: Vec<usize> = (0..m).filter(|i| confirmed[*i]).collect();
        while h.entries.len() < n || !to_confirm.is_empty() {
            if !to_confirm.is_empty() && (h.entries.len() >= n || rng.chance(0.3)) {
                let i = to_confirm.remove(0);
                let mu = &txs[i].mutations[0];
                let now = h.final_rows().get(&(mu.collection.clone(), mu.key.clone()));
                let value = mu.apply_to(now);
                let change = RowChange {
                    collection: mu.collection.clone(),
                    key: mu.key.clone(),
                    op: if value.is_some() { ChangeOp::Update } else { ChangeOp::Delete },
                    value,
                };
                server_seq[i] = Some(h.push(vec![change], Some(txs[i].id.to_string())));
            } else {
                let change = h.random_change(rng);
                h.push(vec![change], None);
            }
        }

        // The tab's events, interleaved: entries in batches, delivered badly, and each
        // transaction's persisting and settling, in that order.
        let delivered = deliver_badly(&h.entries, rng);
        let mut events: Vec<Event> = delivered
            .chunks(1 + rng.below(3) as usize)
            .map(|c| Event::Entries(c.to_vec()))
            .collect();
        for i in 0..m {
            let p = rng.below(events.len() as u64 + 1) as usize;
            events.insert(p, Event::Persisting(i));
            let s = p + 1 + rng.below((events.len() - p) as u64) as usize;
            events.insert(s, Event::Settled(i));
        }
        let mut leader_at = 0;
        for ev in events {
            let body = match ev {
                Event::Entries(es) => {
                    leader_at = es.iter().map(|e| e.seq).fold(leader_at, u64::max);
                    Message::SyncEntries { epoch: Epoch(1), entries: es }
                }
                Event::Persisting(i) => tx_state(&txs[i], TransactionState::Persisting, None),
                Event::Settled(i) if confirmed[i] => tx_state(&txs[i], TransactionState::Completed, server_seq[i]),
                Event::Settled(i) => tx_state(&txs[i], TransactionState::Failed, None),
            };
            hear(&mut t, &h, leader_at, body, rng);
        }
        // The leader's feed goes on to the end.
        let rest = h.range(t.feed_applied(), h.last());
        hear(&mut t, &h, h.last(), Message::SyncEntries { epoch: Epoch(1), entries: rest }, rng);

        prop_assert_eq!(t.feed_applied(), h.last());
        prop_assert_eq!(t.view().pending_ids().count(), 0);
        for c in COLLECTIONS {
            let shown: Rows = t.view().rows(c).map(|(k, v)| ((c.to_owned(), k.clone()), v.clone())).collect();
            let want: Rows = h.final_rows().iter().filter(|((col, _), _)| col == c).map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(shown, want, "collection {}", c);
        }
        for (i, tx) in txs.iter().enumerate() {
            let want = if confirmed[i] { TransactionState::Completed } else { TransactionState::Failed };
            prop_assert_eq!(t.get(&tx.id).map(|x| x.state).unwrap_or(TransactionState::Completed), want);
        }
    }
}
