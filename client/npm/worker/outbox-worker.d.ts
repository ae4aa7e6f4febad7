// Declarations for the worker bootstrap (outbox-worker.js, hand-written JS); the wasm it starts
// is declared by wasm-bindgen in outbox_worker.d.ts.
import type { LeaderHandle } from './outbox_worker.js';
import type {
  HttpEndpoint,
  MutationFn,
  OutboxTransactionRecord,
  RetryPolicy,
} from '../client/outbox_client.js';

export type { LeaderHandle };

/** What `startOutboxWorker` takes: the same `app`, `http` and `mutationFns` as `connect`. */
export interface OutboxWorkerOptions {
  app: string;
  /** The built-in HTTP mutation function, per mutation function name. */
  http?: Record<string, HttpEndpoint>;
  /** The app's own mutation functions, by name. */
  mutationFns?: Record<string, MutationFn>;
  /** Calls running at once; a request to a batching endpoint counts once. Default 8. */
  maxConcurrency?: number;
  /** Transactions per request to a batching endpoint (`http: { name: { batch: true } }`).
   *  Default 100. */
  maxBatch?: number;
  retry?: RetryPolicy;
  /** Called before each retry; `false` discards the transaction instead. */
  beforeRetry?: (transaction: OutboxTransactionRecord) => boolean | void;
  onUnknownMutationFn?: (name: string, transaction: OutboxTransactionRecord) => void;
  /** `true`: wait for the sync to reach a success's server sequence number before
   *  `completed`. A function: the app decides — each success stays `persisted_awaiting_sync`
   *  until what it returns resolves (asked again by a new leader). */
  awaitSync?: boolean | ((transaction: OutboxTransactionRecord) => unknown | Promise<unknown>);
  /** Default 1000. */
  heartbeatMs?: number;
  /** Default 3000: a waiting worker takes over from a leader silent this long. */
  takeoverAfterMs?: number;
  /** Each leader term waits for credentials from a tab before its first call: for every
   *  scope (`true`), or for user scopes only (`'scoped'`). */
  credentials?: boolean | 'scoped';
  /** One change feed for the origin, held by the leader and handed to every tab (collections
   *  with `sync: 'leader'`). From the reference server's endpoints under `baseUrl` (default
   *  '/api'), or from the app's own `source`. Turns `awaitSync` on. */
  sync?: {
    collections: string[];
    baseUrl?: string;
    /** A feed silent this long (no event, no comment) is taken for a dead connection and
     *  reopened from the last applied number. Default 60000; 0: never. */
    feedSilenceMs?: number;
    source?: {
      snapshot(collection: string): SnapshotAnswer | Promise<SnapshotAnswer>;
      changes?(since: number, limit: number): ChangesAnswer | Promise<ChangesAnswer>;
      subscribe(since: number, onEntry: (entry: FeedEntry) => void, onError: (error?: unknown) => void): () => void;
    };
  };
  /** Where the worker's wasm is, if not next to outbox_worker.js. */
  wasmUrl?: string | URL;
}

/** A server change: `seq` follows `prevSeq` exactly; `value` is the whole row. */
export interface FeedEntry {
  seq: number;
  prevSeq: number;
  txId?: string | null;
  changes: { collection: string; key: string; op: 'insert' | 'update' | 'delete'; value?: unknown }[];
}
export interface SnapshotAnswer {
  seq: number;
  rows: { key: string; value: unknown }[];
}
export interface ChangesAnswer {
  seq: number;
  changes: FeedEntry[];
}

/**
 * Starts this worker (SharedWorker or dedicated module worker) for the app: it waits for the
 * Web Lock, then leads. Resolves with its handle once running; rejects with an `OutboxError`
 * (`OUTBOX_INVALID` for bad options, `OUTBOX_STORAGE` without IndexedDB).
 */
export function startOutboxWorker(options: OutboxWorkerOptions): Promise<LeaderHandle>;
