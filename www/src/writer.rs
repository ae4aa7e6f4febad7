//! The one writer: a dedicated thread owning the write connection. Requests queue jobs; the
//! thread takes every job waiting and applies them in one SQLite transaction (group commit),
//! each transaction inside its own savepoint, then publishes the new feed entries and answers.
//! A job carrying a leader epoch is checked against, and recorded in, the same SQLite
//! transaction (see [`crate::fence`]). Other writes (issuing and revoking tokens) run on the
//! same thread between groups, in order with the jobs.

use crate::apply::{apply_tx, Outcome};
use crate::db::{max_seq, DbError};
use crate::error::ApiError;
use crate::faults::Faults;
use crate::feed::FeedItem;
use crate::fence::Fence;
use crate::wire::TxIn;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{broadcast, mpsc, oneshot};

/// How many jobs may wait before senders are made to wait.
const QUEUE: usize = 1024;
/// The most transactions applied in one SQLite transaction.
const GROUP_LIMIT: usize = 4096;

/// One request's transactions, in order, or the whole request refused.
type JobAnswer = Result<Vec<Outcome>, ApiError>;

/// A write run on the writer's connection, outside any group, that sends its own answer.
type Exec = Box<dyn FnOnce(&Connection) + Send>;

enum Msg {
    Job(Job),
    Exec(Exec),
    Stop,
}

/// One request's transactions, applied for `user` (`""` = anonymous).
struct Job {
    txs: Vec<TxIn>,
    user: String,
    fence: Option<Fence>,
    reply: oneshot::Sender<JobAnswer>,
}

/// A job run inside the group's SQLite transaction, waiting for the commit.
struct Done {
    answer: JobAnswer,
    /// Whether the group had written (a change or an epoch) by the end of the job: then its
    /// answers, replays and refusals included, may rest on that write and stand only if the
    /// commit does.
    after_write: bool,
    reply: oneshot::Sender<JobAnswer>,
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
            Msg::Job(job) => write!(f, "Job({} txs)", job.txs.len()),
            Msg::Exec(_) => f.write_str("Exec"),
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

    /// Applies `txs` in order for `user`, each with its own idempotency and answer. With a
    /// `fence`, the whole job is first refused with `409 STALE_EPOCH` when its epoch is below
    /// the highest accepted for its user's scope (replays included, and even when `txs` is
    /// empty); otherwise the epoch is recorded as the highest if any transaction is applied or
    /// replayed.
    pub(crate) async fn submit(
        &self,
        txs: Vec<TxIn>,
        user: &str,
        fence: Option<Fence>,
    ) -> Result<Vec<Outcome>, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            txs,
            user: user.to_owned(),
            fence,
            reply,
        };
        self.jobs
            .send(Msg::Job(job))
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?
    }

    /// Runs `f` on the write connection, after the jobs queued before it, in its own
    /// (autocommit) statements.
    pub(crate) async fn exec<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let exec: Exec = Box::new(move |conn| {
            // The requester may have gone away; the write stands either way.
            let _ = reply.send(f(conn));
        });
        self.jobs
            .send(Msg::Exec(exec))
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?
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
                    Msg::Job(job) => {
                        count += job.txs.len().max(1);
                        jobs.push(job);
                    }
                    Msg::Exec(exec) => {
                        // Keep the order: what was queued before it commits first.
                        if !jobs.is_empty() {
                            self.run_group(std::mem::take(&mut jobs));
                            count = 0;
                        }
                        exec(&self.conn);
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

    fn run_group(&mut self, jobs: Vec<Job>) {
        let start_seq = self.last_seq;
        let mut done: Vec<Done> = Vec::with_capacity(jobs.len());
        let began = self.conn.execute_batch("BEGIN IMMEDIATE");
        let mut recorded_any = false;
        for Job {
            txs,
            user,
            fence,
            reply,
        } in jobs
        {
            let (answer, recorded) = match &began {
                Ok(()) => self.run_job(&txs, &user, fence.as_ref()),
                Err(e) => {
                    let e = ApiError::internal(format!("database: {e}"));
                    let answer = match fence {
                        // The epoch cannot be checked: the request is refused whole.
                        Some(_) => Err(e),
                        None => Ok(txs.iter().map(|_| Outcome::Refused(e.clone())).collect()),
                    };
                    (answer, false)
                }
            };
            recorded_any |= recorded;
            done.push(Done {
                answer,
                after_write: recorded_any || self.last_seq > start_seq,
                reply,
            });
        }
        if began.is_ok() {
            if let Err(e) = self.conn.execute_batch("COMMIT") {
                eprintln!("outbox-server: commit failed: {e}");
                // Best effort: the transaction may already be rolled back.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.last_seq = max_seq(&self.conn).unwrap_or(start_seq);
                let e = ApiError::internal(format!("commit: {e}"));
                for d in done.iter_mut().filter(|d| d.after_write) {
                    d.answer = match &d.answer {
                        Ok(outcomes) => Ok(outcomes
                            .iter()
                            .map(|_| Outcome::Refused(e.clone()))
                            .collect()),
                        Err(_) => Err(e.clone()),
                    };
                }
            }
        }
        for Done { answer, reply, .. } in done {
            for o in answer.iter().flatten() {
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
            let _ = reply.send(answer);
        }
    }

    /// Runs one request's transactions; with a fence, checks the epoch first and records it
    /// when any transaction is accepted (applied or replayed). Answers whether it recorded.
    fn run_job(&mut self, txs: &[TxIn], user: &str, fence: Option<&Fence>) -> (JobAnswer, bool) {
        let Some(fence) = fence else {
            return (
                Ok(txs.iter().map(|tx| self.apply_one(tx, user)).collect()),
                false,
            );
        };
        if let Err(e) = fence.check(&self.conn) {
            return (Err(e), false);
        }
        let start_seq = self.last_seq;
        if let Err(e) = self.conn.execute_batch("SAVEPOINT job") {
            return (Err(ApiError::from(e)), false);
        }
        let outcomes: Vec<Outcome> = txs.iter().map(|tx| self.apply_one(tx, user)).collect();
        let accepted = outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Applied { .. } | Outcome::Replayed { .. }));
        let recorded = if accepted {
            fence.record(&self.conn)
        } else {
            Ok(())
        };
        let end = recorded.and_then(|()| Ok(self.conn.execute_batch("RELEASE job")?));
        match end {
            Ok(()) => (Ok(outcomes), accepted),
            Err(e) => {
                // Undo the job's transactions: its epoch could not be recorded with them.
                let _ = self.conn.execute_batch("ROLLBACK TO job; RELEASE job");
                self.last_seq = start_seq;
                (Err(e), false)
            }
        }
    }

    fn apply_one(&mut self, tx: &TxIn, user: &str) -> Outcome {
        if let Err(e) = self.conn.execute_batch("SAVEPOINT tx") {
            return Outcome::Refused(ApiError::from(e));
        }
        let outcome =
            apply_tx(&self.conn, tx, self.last_seq + 1, user).unwrap_or_else(Outcome::Refused);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::wire::MutationIn;
    use outbox_shared::MutationKind;

    /// Makes every COMMIT after an applied change fail: a temporary trigger breaks a deferred
    /// foreign key, which SQLite checks only at COMMIT (and then keeps the transaction open).
    fn commits_fail_after_a_change(conn: &Connection) {
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TEMP TABLE orphan (
                 parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
             );
             CREATE TEMP TRIGGER orphan_per_change AFTER INSERT ON main.changes
             BEGIN INSERT INTO orphan VALUES (1); END;",
        )
        .unwrap();
    }

    fn job(id: &str) -> (Job, oneshot::Receiver<JobAnswer>) {
        let (reply, answer) = oneshot::channel();
        let tx = TxIn {
            id: id.into(),
            mutations: vec![MutationIn {
                collection: "todos".into(),
                key: "a".into(),
                kind: MutationKind::Insert,
                modified: Some(serde_json::json!({"title": "x"})),
                changes: serde_json::Value::Null,
            }],
        };
        let job = Job {
            txs: vec![tx],
            user: String::new(),
            fence: None,
            reply,
        };
        (job, answer)
    }

    #[test]
    fn a_replay_of_a_change_whose_commit_failed_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_writer(&dir.path().join("db.sqlite3")).unwrap();
        commits_fail_after_a_change(&conn);
        let mut writer = Loop {
            conn,
            last_seq: 0,
            feed: broadcast::channel(4).0,
            stats: None,
        };
        // An online-only tab's retry after a dropped connection: the same unfenced transaction
        // twice in one group, the second read as a replay of the first.
        let (first, first_answer) = job("t1");
        let (retry, retry_answer) = job("t1");
        writer.run_group(vec![first, retry]);
        for answer in [first_answer, retry_answer] {
            let outcomes = answer.blocking_recv().unwrap().unwrap();
            assert!(
                matches!(&outcomes[..], [Outcome::Refused(e)] if e.code == ErrorCode::Internal),
                "{outcomes:?}"
            );
        }
        let stored: i64 = writer
            .conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM idempotency) + (SELECT COUNT(*) FROM rows)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0, "the failed commit stored nothing");
    }
}
