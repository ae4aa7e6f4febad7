// The server's rows and change feed as a collection's sync source:
//
//   client.collection('todos', { key: 'id', sync: feedSync('todos', { onStatus, token }) })
//
// It loads `GET /api/<collection>` (`{seq, rows: [{key, value, seq}]}`) as a snapshot, then
// follows the Server-Sent Events of `/api/feed?since=<seq>` (entries `{seq, prevSeq, txId,
// changes: [{collection, key, op, value}]}`), handing each change to the client's `onUpdate`.
// After an error it reopens the feed from the last sequence number seen, with backoff; when the
// feed skips a number it loads the rows again. `onStatus(text)` hears how it goes; `token()`,
// when it returns one, is the signed-in user's bearer token (sent as `?access_token=` to the
// feed: an EventSource cannot send headers).
export function feedSync(collection, { onStatus = () => {}, token = () => null } = {}) {
  let onUpdate = null;
  let seq = 0;
  let loaded = false;
  let source = null;
  let timer = null;
  let delay = 500;
  let stopped = false;

  async function load() {
    const t = token();
    const headers = t ? { authorization: `Bearer ${t}` } : {};
    const res = await fetch(`/api/${collection}`, { cache: 'no-store', headers });
    if (!res.ok) throw new Error(`GET /api/${collection}: HTTP ${res.status}`);
    const body = await res.json();
    onUpdate({ type: 'snapshot', rows: body.rows.map((r) => r.value), seq: body.seq });
    seq = body.seq;
    loaded = true;
  }

  function listen() {
    const t = token();
    source = new EventSource(`/api/feed?since=${seq}${t ? `&access_token=${encodeURIComponent(t)}` : ''}`);
    source.addEventListener('open', () => {
      delay = 500;
      onStatus(`live · #${seq}`);
    });
    source.addEventListener('change', (event) => {
      const entry = JSON.parse(event.data);
      if (entry.seq <= seq) return;
      if (entry.prevSeq !== seq) return restart(true); // a gap: reload the rows
      seq = entry.seq;
      onStatus(`live · #${seq}`);
      const changes = entry.changes
        .filter((c) => c.collection === collection)
        .map((c) => ({ type: c.op, key: c.key, value: c.value ?? undefined, seq: entry.seq }));
      if (changes.length) onUpdate(changes);
    });
    // EventSource gives up for good on an HTTP error (503): reconnect ourselves, from `seq`.
    source.addEventListener('error', () => restart(false));
  }

  function restart(reload) {
    source?.close();
    source = null;
    if (reload) loaded = false;
    if (stopped || timer) return;
    onStatus('reconnecting…');
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 5000);
  }

  async function connect() {
    timer = null;
    try {
      if (!loaded) await load();
      if (!stopped) listen();
    } catch {
      restart(false);
    }
  }

  return {
    setup({ onUpdate: callback }) {
      onUpdate = callback;
      connect();
      return () => {
        stopped = true;
        clearTimeout(timer);
        source?.close();
      };
    },
  };
}
