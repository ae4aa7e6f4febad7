//! TypeScript declarations for the plain-data shapes the API takes and returns. The classes
//! and their methods are declared by wasm-bindgen itself; their `JsValue` parameters and
//! results point at the types below through `unchecked_param_type` / `unchecked_return_type`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A row: a plain JSON object. */
export type Row = { [field: string]: unknown };
/** A row's key: the value of the collection's key field. */
export type RowKey = string | number;
export type OutboxMode = 'connecting' | 'offline-enabled' | 'online-only';
export type TransactionState =
  | 'pending' | 'queued' | 'persisting' | 'persisted_awaiting_sync' | 'completed' | 'failed';
export type OutboxErrorCode =
  | 'OUTBOX_QUOTA_EXCEEDED' | 'OUTBOX_UNKNOWN_MUTATION_FN' | 'OUTBOX_NON_RETRIABLE'
  | 'OUTBOX_DEPENDENCY_FAILED' | 'OUTBOX_RETRIES_EXHAUSTED' | 'OUTBOX_RETRIABLE'
  | 'OUTBOX_NETWORK' | 'OUTBOX_LEADER_LOST' | 'OUTBOX_REMOVED' | 'OUTBOX_CORRUPT_RECORD' | 'OUTBOX_FENCED'
  | 'OUTBOX_STORAGE' | 'OUTBOX_INVALID' | 'OUTBOX_SYNC_REJECTED' | 'OUTBOX_UNAUTHORIZED'
  | 'OUTBOX_CLOSED';

/** What every Outbox promise rejects with and every Outbox call throws. */
export interface OutboxError extends Error {
  name: 'OutboxError';
  code: OutboxErrorCode;
  /** For OUTBOX_DEPENDENCY_FAILED: the transaction whose failure caused this one's. */
  causeId?: string;
  /** The HTTP status, when the failure was an HTTP answer. */
  status?: number;
}

export interface OutboxDiagnostic {
  code: 'OUTBOX_NO_WEB_LOCKS' | 'OUTBOX_NO_INDEXEDDB' | 'OUTBOX_NO_BROADCAST_CHANNEL'
    | 'OUTBOX_WORKER_FAILED' | 'OUTBOX_NO_LEADER'
    | 'OUTBOX_ONLINE_EXECUTOR_FAILED';
  message: string;
}

/** A mutation function: resolve on success (optionally `{ seq }`), throw to fail. Throw an
 *  error named `NonRetriableError` (or with `retriable: false`, or a 4xx `status`) to fail
 *  for good, one with `code: 'OUTBOX_NETWORK'` (or without a `status` while offline) for no
 *  answer at all, or with `status` 429, 502, 503 or 504 for a server that says "not now": retried for as
 *  long as it takes, without using up the attempts. */
export type MutationFn = (call: {
  transaction: OutboxTransactionRecord;
  idempotencyKey: string;
  attempt: number;
  epoch: number;
  /** What `epoch` counts in (the leader's outbox: another browser's counts its own); with
   *  `epoch`, what a server fences by. Absent in online-only mode (epoch 0). */
  lineage?: string;
  signal: AbortSignal;
  /** The headers a tab gave as credentials (`{}` when none). */
  credentials: Record<string, string>;
}) => unknown | Promise<unknown>;

export interface HttpEndpoint {
  url: string; headers?: Record<string, string>; batch?: boolean; maxBatchBytes?: number;
  /** A request unanswered this long (default 30000; 0: no limit) is aborted and retried. */
  timeoutMs?: number;
}

export interface RetryPolicy {
  maxRetries?: number; baseDelayMs?: number; maxDelayMs?: number; factor?: number; jitter?: number;
}

export interface ConnectOptions {
  app: string;
  /** The signed-in user's scope: the channel, lock and database become `app:scope`. */
  scope?: string;
  /** The worker script (which calls `startOutboxWorker`). Without it, the tab only looks
   *  for a leader hosted elsewhere. */
  workerUrl?: string;
  sharedWorker?: 'auto' | 'never';
  /** Used in online-only mode, when the tab runs transactions itself. */
  mutationFns?: Record<string, MutationFn>;
  http?: Record<string, HttpEndpoint>;
  onUnknownMutationFn?: (name: string, transaction: OutboxTransactionRecord) => void;
  retry?: RetryPolicy;
  /** Calls running at once in online-only mode (a batch request counts once). Default 8. */
  maxConcurrency?: number;
  /** Transactions per request to a batching endpoint (`http: { name: { batch: true } }`) in
   *  online-only mode. Default 100. */
  maxBatch?: number;
  /** Default 3000. */
  leaderTimeoutMs?: number;
  /** How long `peekOutbox`, `removeFromOutbox`, `retryDeadLetter`, `queueStats` and `signOut`
   *  wait for the leader's answer before rejecting with `OUTBOX_LEADER_LOST`. Default 5000. */
  requestTimeoutMs?: number;
  /** Default 1000. */
  backOffThreshold?: number;
  /** The change feed (as the worker's `sync` option): followed by this tab itself when it is
   *  online-only. */
  sync?: FeedOptions;
  /** Asked for the headers every call carries (kept in the leader's memory only) whenever the
   *  leader needs credentials: at its start, and after a 401. */
  getCredentials?: () => Record<string, string> | Promise<Record<string, string>>;
}

/** One change feed for the origin: `GET {baseUrl}/<collection>` snapshots, the Server-Sent
 *  Events of `GET {baseUrl}/feed?since=N`, ranges from `GET {baseUrl}/changes`. */
export interface FeedOptions {
  collections: string[];
  /** Default '/api'. */
  baseUrl?: string;
  /** A feed silent this long (no event, no comment) is taken for a dead connection and
   *  reopened from the last applied number. Default 60000; 0: never. */
  feedSilenceMs?: number;
  /** The app's own feed instead of the reference server's endpoints (see the worker's
   *  `sync.source`). */
  source?: {
    snapshot(collection: string): unknown;
    changes?(since: number, limit: number): unknown;
    subscribe(since: number, onEntry: (entry: unknown) => void, onError: (error?: unknown) => void): () => void;
  };
}

/** `seq`: the server sequence number the sync has reached with this update, if the source
 *  knows it; completed changes with a later sequence number stay shown until it is reached. */
export type SyncUpdate =
  | { type: 'insert' | 'update'; key?: RowKey; value: Row; seq?: number }
  | { type: 'delete'; key: RowKey; seq?: number }
  | { type: 'snapshot'; rows: Row[]; seq?: number };

export interface SyncSource {
  setup(params: { onUpdate: (update: SyncUpdate | SyncUpdate[]) => void; collection: string }):
    void | (() => void);
}

export interface CollectionOptions {
  /** The field holding each row's key. Default 'id'. */
  key?: string;
  strategy?: 'ordered' | 'parallel';
  /** Default: the collection's name. */
  mutationFn?: string;
  /** 'leader': the origin's change feed, which the leader holds and hands to every tab (a
   *  collection the leader's feed does not follow is reported once, an `onEvent` diagnostic
   *  with code `OUTBOX_INVALID`, and its completed changes are kept as they completed); or
   *  the app's own source (a `setup` that throws makes `collection()` throw `OUTBOX_INVALID`). */
  sync?: 'leader' | SyncSource;
  /** What a server change does to a row with pending changes: 'rebase' (default: they are
   *  laid over the new row), 'server-wins' (the server's row shows), 'hold' (it waits until
   *  the transactions touching the row settle). */
  conflict?: 'rebase' | 'server-wins' | 'hold' | ((change: { collection: string; key: string; server?: Row; local?: Row }) => Row | undefined);
}

export interface TransactionOptions {
  /** Default: the mutation function of the first collection changed. */
  mutationFn?: string;
  strategy?: 'ordered' | 'parallel';
  /** Default true: commit when `mutate` returns. */
  autoCommit?: boolean;
  metadata?: unknown;
}

export interface ActionOptions {
  mutationFn?: string;
  strategy?: 'ordered' | 'parallel';
  onMutate: (vars: any) => void;
}

export interface PendingMutationRecord {
  collection: string;
  key: string;
  kind: 'insert' | 'update' | 'delete';
  original: Row | null;
  modified: Row | null;
  changes: unknown;
  inverse: unknown[];
  metadata?: unknown;
}

export interface TransactionErrorRecord {
  code: OutboxErrorCode; message: string; cause?: string; status?: number;
}

export interface AttemptRecord {
  id: string; number: number; startedAt: number; completedAt?: number;
  error?: TransactionErrorRecord; retryScheduledFor?: number; epoch: number;
}

export interface OutboxTransactionRecord {
  version: number;
  id: string;
  mutationFn: string;
  strategy: 'ordered' | 'parallel';
  state: TransactionState;
  createdAt: number;
  updatedAt: number;
  mutations: PendingMutationRecord[];
  keys: string[];
  /** The most recent attempts (at most 16), oldest first. */
  attempts: AttemptRecord[];
  /** The older attempts, no longer listed: how many, and of those since the retry budget began,
   *  how many counted against it and how many lengthened the backoff. */
  earlierAttempts?: { count: number; counted: number; backedOff: number };
  budgetStart: number;
  queuedBehind?: string;
  error?: TransactionErrorRecord;
  epoch: number;
  seq: number;
  serverSeq?: number;
  metadata?: unknown;
}

export interface QueueStats { size: number; bytes: number; inFlight: number; deadLetters: number }

/** What the outbox held when the user signed out. */
export interface SignOutResult { pending: number; deadLetters: number; discarded: number }

/** Channel messages a tab refused, by reason (see `OutboxClient.messageStats`). */
export interface MessageStats {
  notText: number; tooLarge: number; malformed: number; unsupported: number; foreign: number;
  unknownKind: number; stale: number; forged: number;
}

export type OutboxEvent = { at: number } & (
  | { type: 'submitted'; id: string; mutationFn: string; mutations: number }
  | { type: 'durable'; id: string }
  | { type: 'state'; id: string; state: TransactionState; attempts: number; code?: OutboxErrorCode }
  | { type: 'leader'; epoch: number; isLeaderTab: boolean }
  | { type: 'leader_resigned'; epoch: number }
  | { type: 'credentials_needed'; epoch: number }
  | { type: 'signed_out'; epoch: number }
  | { type: 'synced'; seq: number }
  | { type: 'mode'; mode: OutboxMode; reason?: OutboxDiagnostic['code'] }
  | { type: 'diagnostic'; code: string; message: string }
  | { type: 'worker_ready' }
);

// Calls whose options may be left out. wasm-bindgen declares a parameter with a type of its
// own as required, optional or not; these overloads (merged into the classes) say it may be
// left out: `client.collection('todos')` looks up a collection already defined.
export interface OutboxClient {
  collection(name: string): Collection;
  transaction(): OutboxTransaction;
}
export interface OutboxTestKit {
  failNextPersist(): void;
}
"#;
