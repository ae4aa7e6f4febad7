// Declarations for react.js (hand-written JS over the generated client types).
import type {
  Collection,
  OutboxClient,
  OutboxDiagnostic,
  OutboxMode,
  OutboxTransactionRecord,
  QueueStats,
  Row,
  RowKey,
  TransactionHandle,
} from './client/outbox_client.js';

export interface UseCollection<T extends Row = Row> {
  /** Every row, optimistic: every tab's pending changes included. The same array until a
   *  change (the snapshot React compares): read-only, copy it to sort. */
  rows: readonly T[];
  insert(rowOrRows: T | T[]): TransactionHandle;
  update(key: RowKey, changes: Partial<T> | ((draft: T) => void)): TransactionHandle;
  delete(key: RowKey): TransactionHandle;
}

/** A collection's rows and mutators; re-renders when a row changes. */
export function useCollection<T extends Row = Row>(collection: Collection): UseCollection<T>;

/** Every transaction the tab knows of, unsettled or failed, with state and attempts. */
export function useTransactions(client: OutboxClient): readonly OutboxTransactionRecord[];

export interface OutboxStatus {
  mode: OutboxMode;
  diagnostic: OutboxDiagnostic | null;
  isLeaderTab: boolean;
  leaderEpoch: number | null;
  /** `null` unless asked for with `{ queueStats: true }`, and until the leader answers. */
  queueStats: QueueStats | null;
}

/** The client's mode and leadership (and, if asked for, the leader's queue statistics). */
export function useOutboxStatus(client: OutboxClient, options?: { queueStats?: boolean }): OutboxStatus;
