//! The one writer: a dedicated thread owning the write connection. Requests queue jobs; the
//! thread takes every job waiting and applies them in one SQLite transaction (group commit),
//! each transaction inside its own savepoint, then publishes the new feed entries and answers.

use crate::apply::{apply_tx, Outcome};
use crate::db::{max_seq, DbError};
use crate::error::ApiError;
use crate::faults::Faults;
use crate::feed::FeedItem;
use crate::wire::TxIn;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{broadcast, mpsc, oneshot};

/// How many jobs may wait before senders are made to wait.
const QUEUE: usize = 1024;
/// The most transactions applied in one SQLite transaction.
const GROUP_LIMIT: usize = 4096;

enum Msg {
    Job {
        txs: Vec<TxIn>,
        reply: oneshot::Sender<Vec<Outcome>>,
    },
    Stop,
}

/// A handle to the writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Job { txs, .. } => write!(f, "Job({} txs)", txs.len()),
            Msg::Stop => f.write_str("Stop"),
        }
    }
}

impl Writer {
    /// Starts the writer thread on `conn`. Applied entries go to `feed`; applications are
    /// counted in `stats` when the fault switches are on.
    pub(crate) fn start(
        conn: Connection,
        feed: broadcast::Sender<Arc<FeedItem>>,
        stats: Option<Arc<Faults>>,
    ) -> Result<Self, DbError> {
        let last_seq = max_seq(&conn)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || {
                Loop {
                    conn,
                    last_seq,
                    feed,
                    stats,
                }
                .run(rx);
            })
            .map_err(|e| DbError::Task(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            jobs: tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Applies `txs` in order, each with its own idempotency and answer.
    pub(crate) async fn submit(&self, txs: Vec<TxIn>) -> Result<Vec<Outcome>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::Job { txs, reply })
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))
    }

    /// Asks the thread to finish the queued jobs and close the database; returns the thread
    /// to join (once).
    pub(crate) async fn stop(&self) -> Option<JoinHandle<()>> {
        // A full queue or a stopped thread both end in the thread exiting; ignore either.
        let _ = self.jobs.send(Msg::Stop).await;
        self.thread.lock().ok().and_then(|mut t| t.take())
    }
}

struct Loop {
    conn: Connection,
    last_seq: u64,
    feed: broadcast::Sender<Arc<FeedItem>>,
    stats: Option<Arc<Faults>>,
}

impl Loop {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = Vec::new();
            let mut count = 0;
            let mut stop = false;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Job { txs, reply } => {
                        count += txs.len();
                        jobs.push((txs, reply));
                    }
                    Msg::Stop => {
                        stop = true;
                        break;
                    }
                }
                if count < GROUP_LIMIT {
                    next = rx.try_recv().ok();
                }
            }
            if !jobs.is_empty() {
                self.run_group(jobs);
            }
            if stop {
                break;
            }
        }
    }

    fn run_group(&mut self, jobs: Vec<(Vec<TxIn>, oneshot::Sender<Vec<Outcome>>)>) {
        let start_seq = self.last_seq;
        let mut answers: Vec<(Vec<Outcome>, oneshot::Sender<Vec<Outcome>>)> =
            Vec::with_capacity(jobs.len());
        let began = self.conn.execute_batch("BEGIN IMMEDIATE");
        for (txs, reply) in jobs {
            let outcomes = txs
                .iter()
                .map(|tx| match &began {
                    Ok(()) => self.apply_one(tx),
                    Err(e) => Outcome::Refused(ApiError::internal(format!("database: {e}"))),
                })
                .collect();
            answers.push((outcomes, reply));
        }
        if began.is_ok() {
            if let Err(e) = self.conn.execute_batch("COMMIT") {
                eprintln!("outbox-server: commit failed: {e}");
                // Best effort: the transaction may already be rolled back.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.last_seq = max_seq(&self.conn).unwrap_or(start_seq);
                for (outcomes, _) in &mut answers {
                    for o in outcomes.iter_mut() {
                        if matches!(o, Outcome::Applied { .. }) {
                            *o = Outcome::Refused(ApiError::internal(format!("commit: {e}")));
                        }
                    }
                }
            }
        }
        for (outcomes, reply) in answers {
            for o in &outcomes {
                if let Outcome::Applied {
                    seq,
                    entry,
                    row_keys,
                    tx_id,
                    ..
                } = o
                {
                    // No subscriber is fine: the feed re-reads the database when it lags.
                    let _ = self.feed.send(Arc::new(FeedItem {
                        seq: *seq,
                        json: entry.clone(),
                    }));
                    if let Some(stats) = &self.stats {
                        stats.record_applied(tx_id, row_keys);
                    }
                }
            }
            // The requester may have gone away; the change stays applied either way.
            let _ = reply.send(outcomes);
        }
    }

    fn apply_one(&mut self, tx: &TxIn) -> Outcome {
        if let Err(e) = self.conn.execute_batch("SAVEPOINT tx") {
            return Outcome::Refused(ApiError::from(e));
        }
        let outcome = apply_tx(&self.conn, tx, self.last_seq + 1).unwrap_or_else(Outcome::Refused);
        let end = if matches!(outcome, Outcome::Applied { .. }) {
            self.last_seq += 1;
            self.conn.execute_batch("RELEASE tx")
        } else {
            self.conn.execute_batch("ROLLBACK TO tx; RELEASE tx")
        };
        match end {
            Ok(()) => outcome,
            Err(e) => Outcome::Refused(ApiError::from(e)),
        }
    }
}
