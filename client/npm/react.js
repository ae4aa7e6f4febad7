// React bindings: hooks over the client's own subscriptions, built on useSyncExternalStore so
// that every component reads the same snapshot in a render (no tearing). They hold nothing but
// the last snapshot a subscription delivered, which stays the same object until the next
// change, as useSyncExternalStore requires.
//
//   const { rows, insert, update, delete: remove } = useCollection(todos);
//   const transactions = useTransactions(client);
//   const { mode, isLeaderTab, leaderEpoch, queueStats } = useOutboxStatus(client, { queueStats: true });
import { useMemo, useSyncExternalStore } from 'react';

/** Whether two snapshots hold the same things: the same object, or arrays of the same objects. */
function sameSnapshot(a, b) {
  if (Object.is(a, b)) return true;
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

/**
 * A store for useSyncExternalStore: `listen(changed)` subscribes to the source and returns its
 * unsubscribe function; `changed(value?)` takes `value` as the new snapshot (else `read()`).
 * Subscribing reads afresh, since the source may have changed between render and subscribe,
 * and keeps the snapshot rendered if nothing in it did: `rows()` is a new array at every call
 * (of the same row objects), and taking it for a change rendered every component once more
 * on mount, and looped (React's "Maximum update depth exceeded") for a component that looks
 * its collection up as it renders.
 */
function store(read, listen) {
  let snapshot;
  let fresh = false;
  return {
    subscribe(onChange) {
      const off = listen((value) => {
        snapshot = value === undefined ? read() : value;
        fresh = true;
        onChange();
      });
      const now = read();
      if (!fresh || !sameSnapshot(snapshot, now)) snapshot = now;
      fresh = true;
      return off;
    },
    getSnapshot() {
      if (!fresh) {
        snapshot = read();
        fresh = true;
      }
      return snapshot;
    },
  };
}

/**
 * A collection's rows (optimistic: every tab's pending changes included) and its mutators.
 * Re-renders when any row changes.
 */
export function useCollection(collection) {
  const rowStore = useMemo(
    () => store(() => collection.rows(), (changed) => collection.subscribe((rows) => changed(rows))),
    [collection],
  );
  const rows = useSyncExternalStore(rowStore.subscribe, rowStore.getSnapshot);
  const mutators = useMemo(
    () => ({
      insert: (rowOrRows) => collection.insert(rowOrRows),
      update: (key, changes) => collection.update(key, changes),
      delete: (key) => collection.delete(key),
    }),
    [collection],
  );
  return { rows, ...mutators };
}

/**
 * Every transaction the tab knows of (its own and other tabs'; unsettled or failed), with its
 * state and attempts. Re-renders when one changes.
 */
export function useTransactions(client) {
  const txStore = useMemo(
    () => store(() => client.transactions(), (changed) => client.subscribeTransactions((txs) => changed(txs))),
    [client],
  );
  return useSyncExternalStore(txStore.subscribe, txStore.getSnapshot);
}

/**
 * `{ mode, diagnostic, isLeaderTab, leaderEpoch, queueStats }`. `queueStats` is `null` unless
 * asked for with `{ queueStats: true }`: then it is the leader's last answer to
 * `client.queueStats()`, asked again whenever a transaction changes (one question at a time).
 */
export function useOutboxStatus(client, { queueStats = false } = {}) {
  const roleStore = useMemo(() => {
    let last = null;
    // The same object while nothing it holds has changed. `client.diagnostic` is a new object
    // at every read: the last one is kept while it says the same (compared by identity, it
    // rendered a status component again at every event of an online-only tab).
    const sameDiagnostic = (prev, next) =>
      prev && next && prev.code === next.code && prev.message === next.message ? prev : next;
    const read = () => {
      const next = {
        mode: client.mode,
        diagnostic: sameDiagnostic(last && last.diagnostic, client.diagnostic ?? null),
        isLeaderTab: client.isLeaderTab,
        leaderEpoch: client.leaderEpoch ?? null,
      };
      const same = last && Object.keys(next).every((k) => Object.is(next[k], last[k]));
      return same ? last : (last = next);
    };
    const listen = (changed) => {
      const offs = [
        client.onModeChange(() => changed()),
        client.onLeadershipChange(() => changed()),
        client.onEvent(() => changed()),
      ];
      return () => offs.forEach((off) => off());
    };
    return store(read, listen);
  }, [client]);
  const statsStore = useMemo(() => (queueStats ? queueStatsStore(client) : NO_STATS), [client, queueStats]);
  const role = useSyncExternalStore(roleStore.subscribe, roleStore.getSnapshot);
  const stats = useSyncExternalStore(statsStore.subscribe, statsStore.getSnapshot);
  return useMemo(() => ({ ...role, queueStats: stats }), [role, stats]);
}

const NO_STATS = { subscribe: () => () => {}, getSnapshot: () => null };

/** The leader's queue statistics, asked again after each transaction change. */
function queueStatsStore(client) {
  let stats = null;
  return {
    subscribe(onChange) {
      let live = true;
      let asking = false;
      let again = false;
      const ask = () => {
        if (asking) return void (again = true);
        asking = true;
        client
          .queueStats()
          .then((answer) => {
            if (live) (stats = answer), onChange();
          })
          .catch(() => {}) // no leader to ask (online-only, or between leaders): keep the last
          .finally(() => {
            asking = false;
            if (again && live) (again = false), ask();
          });
      };
      const off = client.subscribeTransactions(ask);
      ask();
      return () => {
        live = false;
        off();
      };
    },
    getSnapshot: () => stats,
  };
}
