// The bench's options, from arguments (`--quick`, `--reps 5`, `--reps=5`) or the environment
// (BENCH_QUICK=1, BENCH_REPS=5, …). Arguments win.

export const USAGE = `usage: npm run bench -- [options]     (from tests/)

  --quick                  a fast smoke run (BENCH_QUICK=1): fewer reps and samples, 1,000 pending
                           for the replay; its figures are not representative
  --reps N                 repetitions of the interleaved measurements (BENCH_REPS, default 5; quick 1)
  --failover-trials N      failover trials (BENCH_FAILOVER_TRIALS, default 20; quick 2)
  --tanstack-trials N      leader-tab-close trials for TanStack (BENCH_TANSTACK_TRIALS, default 2; quick 1)
  --replay-reps N          restart-replay repetitions (BENCH_REPLAY_REPS, default 3; quick 1)
  --replay-count N         pending transactions for Outbox's replay (BENCH_REPLAY_COUNT, default 10000; quick 1000)
  --peer-replay-count N    pending transactions for the side-by-side replay of both libraries
                           (BENCH_PEER_REPLAY_COUNT, default 1000; quick 300): TanStack's enqueue
                           and replay grow quadratically (10,000 took minutes here)
  --replay-timeout-s N     how long a reloaded tab may take to show its pending rows
                           (BENCH_REPLAY_TIMEOUT_S, default 20)
  --acked-count N          transactions for the server-acknowledged throughput (BENCH_ACKED_COUNT, default 500)
  --no-tanstack            skip @tanstack/offline-transactions (BENCH_NO_TANSTACK=1)
  --out FILE               where to write the JSON (BENCH_OUT, default tests/bench/results.json)
  --help                   this text
`;

const NUMERIC = {
  reps: 'BENCH_REPS',
  'failover-trials': 'BENCH_FAILOVER_TRIALS',
  'tanstack-trials': 'BENCH_TANSTACK_TRIALS',
  'replay-reps': 'BENCH_REPLAY_REPS',
  'replay-count': 'BENCH_REPLAY_COUNT',
  'peer-replay-count': 'BENCH_PEER_REPLAY_COUNT',
  'replay-timeout-s': 'BENCH_REPLAY_TIMEOUT_S',
  'acked-count': 'BENCH_ACKED_COUNT',
};

export class UsageError extends Error {}

/** Reads the options; throws UsageError for anything it does not understand. */
export function parseOptions(argv, env) {
  const given = {};
  const flags = new Set();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument: ${arg}`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (name === 'quick' || name === 'no-tanstack' || name === 'help') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
    } else if (name === 'out' || name in NUMERIC) {
      const value = inline ?? argv[++i];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      given[name] = value;
    } else {
      throw new UsageError(`unknown option: --${name}`);
    }
  }
  const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
  const quick = flags.has('quick') || truthy(env.BENCH_QUICK);
  const defaults = quick
    ? { reps: 1, 'failover-trials': 2, 'tanstack-trials': 1, 'replay-reps': 1, 'replay-count': 1000, 'peer-replay-count': 300, 'replay-timeout-s': 20, 'acked-count': 200 }
    : { reps: 5, 'failover-trials': 20, 'tanstack-trials': 2, 'replay-reps': 3, 'replay-count': 10_000, 'peer-replay-count': 1000, 'replay-timeout-s': 20, 'acked-count': 500 };
  const num = (name) => {
    const raw = given[name] ?? env[NUMERIC[name]];
    if (raw === undefined || raw === '') return defaults[name];
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) {
      throw new UsageError(`--${name} (${NUMERIC[name]}) must be a whole number from 1 to 1000000, not ${JSON.stringify(raw)}`);
    }
    return n;
  };
  return {
    help: flags.has('help'),
    quick,
    reps: num('reps'),
    failoverTrials: num('failover-trials'),
    tanstackTrials: num('tanstack-trials'),
    replayReps: num('replay-reps'),
    replayCount: num('replay-count'),
    peerReplayCount: num('peer-replay-count'),
    replayTimeoutMs: num('replay-timeout-s') * 1000,
    ackedCount: num('acked-count'),
    tanstack: !(flags.has('no-tanstack') || truthy(env.BENCH_NO_TANSTACK)),
    out: given.out ?? env.BENCH_OUT ?? null,
    // Per-measurement sizes.
    // The view grows to samples × perSample rows during an insert → view run.
    insertView: quick ? { samples: 10, perSample: 25 } : { samples: 20, perSample: 25 },
    durableLatencyN: quick ? 50 : 200,
    durableThroughput: quick ? { 1: 50, 10: 200, 100: 500 } : { 1: 200, 10: 1000, 100: 2000 },
    // Each durable tx/s count runs this many first, uncounted (the page's first, cold ones).
    durableColdWarmup: 200,
    // With 100 in flight, the same page then runs this many more before a second, warm count
    // of durableThroughput[100] (both engines tier their hot code up over the first thousands).
    durableWarmup: quick ? 500 : 1000,
    idbN: quick ? 50 : 200,
    bcN: quick ? 50 : 200,
    tanstackWatchMs: quick ? 3000 : 5000,
  };
}
