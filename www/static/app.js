// The Outbox demo: a todo list shared by every tab of this origin and kept on the server.
//
// Each change is shown at once, written durably to the outbox by the leader worker, and sent to
// the server with retries. The server's change feed brings back what every tab (and every other
// browser) did. No bundler: plain ES modules, and the wasm client loaded as one.
import { credentialsFor, currentUser, DEMO_USERS, reloadAs, signIn, storedToken, switchUser } from '/session.js';

const $ = (id) => document.getElementById(id);
const COLLECTION = 'todos';
const RECENT = 12; // transactions shown in the outbox panel

main().catch((error) => showProblem('The Outbox client did not start', error));

async function main() {
  // Imported here rather than at the top so that a missing or broken build shows on the page.
  const { default: init, OutboxClient } = await import('/pkg/client/outbox_client.js');
  if (typeof OutboxClient !== 'function') throw new Error('/pkg/client/outbox_client.js has no OutboxClient');
  await init();
  // `?worker=dedicated`: one dedicated worker per tab, so that one tab leads and the others
  // follow (close the leader's tab to watch another take over).
  const dedicated = new URLSearchParams(location.search).get('worker') === 'dedicated';
  // A signed-in user gets an outbox of their own; the leader asks this tab for their token.
  const user = currentUser();
  if (user && !storedToken(user)) await signIn(user).catch(() => {}); // offline: asked again later
  const client = await OutboxClient.connect({
    app: 'todos',
    scope: user || undefined,
    getCredentials: user ? credentialsFor(user) : undefined,
    workerUrl: '/worker.js',
    sharedWorker: dedicated ? 'never' : 'auto',
    // Used only when this tab has to send its changes (and follow the feed) itself: online-only.
    http: { todos: { url: '/api/mutations', batch: true } },
    sync: { collections: [COLLECTION] },
  });
  wireUser(client, user);
  const faults = wireFaults(client);
  // The server's rows come from the one change feed the leader follows for every tab.
  // `?conflict=merge`: when someone else changes a todo this tab is still saving, show both
  // titles until the save settles (the app's merge function), instead of keeping this tab's.
  const merge = new URLSearchParams(location.search).get('conflict') === 'merge';
  const todos = client.collection(COLLECTION, { key: 'id', sync: 'leader', ...(merge && { conflict: mergeTitles }) });
  const showFeed = () => ($('feed').textContent = `feed: #${client.feedPosition}`);
  todos.subscribe(showFeed);
  showFeed();
  // For the console and the end-to-end tests.
  window.outboxDemo = { client, todos, user };

  const ui = { client, todos, editing: null, history: null };
  wireForm(ui);
  wireList(ui);

  const render = coalesce(() => renderTodos(ui));
  const renderOutbox = coalesce(() => renderTransactions(ui));
  todos.subscribe(render);
  ui.history = recentlyCompleted(client, renderOutbox);
  client.subscribeTransactions(() => {
    renderOutbox();
    render(); // the "saving" marks follow the transactions
    faults.refresh(); // an armed switch may just have been used up
  });
  const shared = !dedicated && typeof SharedWorker === 'function';
  client.onModeChange(() => renderRole(client, shared));
  client.onLeadershipChange(() => renderRole(client, shared));
  addEventListener('online', () => client.notifyOnline());

  renderRole(client, shared);
  render();
  renderOutbox();
  for (const el of document.querySelectorAll('#add input, #add button')) el.disabled = false;
  $('new-title').focus();
}

// A merge function: the server's row, with both titles when they differ.
function mergeTitles({ server, local }) {
  if (!server || !local || server.title === local.title) return server;
  return { ...server, title: `${local.title} ⇄ ${server.title}` };
}

// ---- the todo list ------------------------------------------------------------------------

function wireForm({ todos }) {
  $('add').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('new-title');
    const title = input.value.trim();
    if (!title) return;
    track(todos.insert({ id: crypto.randomUUID(), title, done: false, createdAt: Date.now() }));
    input.value = '';
  });
}

function wireList(ui) {
  const list = $('list');
  list.addEventListener('change', (event) => {
    const key = event.target.closest('li')?.dataset.key;
    if (key && event.target.matches('.toggle')) track(ui.todos.update(key, { done: event.target.checked }));
  });
  list.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    const key = button?.closest('li')?.dataset.key;
    if (!key) return;
    if (button.matches('.delete')) track(ui.todos.delete(key));
    if (button.matches('.edit')) startEditing(ui, key);
  });
  list.addEventListener('dblclick', (event) => {
    const key = event.target.closest('.title')?.closest('li')?.dataset.key;
    if (key) startEditing(ui, key);
  });
}

function startEditing(ui, key) {
  const li = $('list').querySelector(`li[data-key="${CSS.escape(key)}"]`);
  const row = ui.todos.get(key);
  if (!li || !row || ui.editing === key) return;
  ui.editing = key;
  const input = document.createElement('input');
  input.className = 'edit-input';
  input.value = row.title;
  input.maxLength = 200;
  input.setAttribute('aria-label', `Edit “${row.title}”`);
  let finished = false;
  const finish = (save) => {
    if (finished) return;
    finished = true;
    ui.editing = null;
    const title = input.value.trim();
    const current = ui.todos.get(key);
    if (save && current && title && title !== current.title) track(ui.todos.update(key, { title }));
    input.remove();
    li.classList.remove('editing');
    renderTodos(ui);
    li.querySelector('.edit')?.focus();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== 'Escape') return;
    // Or the key, landing on the Edit button that gets the focus back, would press it.
    e.preventDefault();
    finish(e.key === 'Enter');
  });
  input.addEventListener('blur', () => finish(true));
  li.classList.add('editing');
  li.querySelector('.title').after(input);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function renderTodos({ client, todos, editing }) {
  const rows = [...todos.rows()].sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0));
  const saving = liveKeys(client);
  const list = $('list');
  const items = new Map([...list.children].map((li) => [li.dataset.key, li]));
  let previous = null;
  for (const row of rows) {
    const key = String(row.id);
    let li = items.get(key);
    items.delete(key);
    if (!li) li = todoItem(key);
    if (key !== editing) fillItem(li, row, saving.has(key));
    // Keep DOM order equal to `rows`, moving only what is out of place.
    const want = previous ? previous.nextSibling : list.firstChild;
    if (li !== want) list.insertBefore(li, want);
    previous = li;
  }
  for (const li of items.values()) li.remove();
  const left = rows.filter((r) => !r.done).length;
  $('empty').hidden = rows.length > 0;
  $('count').textContent = rows.length ? `${left} to do · ${rows.length - left} done` : '';
}

function todoItem(key) {
  const li = document.createElement('li');
  li.dataset.key = key;
  li.innerHTML = `
    <input type="checkbox" class="toggle">
    <span class="title"></span>
    <span class="saving" hidden>saving</span>
    <button type="button" class="edit">Edit</button>
    <button type="button" class="delete">Delete</button>`;
  // The title names the checkbox; it is not its <label>, so a double click edits, not toggles.
  const id = `title-${key}`;
  li.querySelector('.title').id = id;
  li.querySelector('.toggle').setAttribute('aria-labelledby', id);
  return li;
}

function fillItem(li, row, saving) {
  const title = String(row.title ?? '');
  li.classList.toggle('done', !!row.done);
  li.querySelector('.toggle').checked = !!row.done;
  li.querySelector('.title').textContent = title;
  li.querySelector('.saving').hidden = !saving;
  li.querySelector('.edit').setAttribute('aria-label', `Edit “${title}”`);
  li.querySelector('.delete').setAttribute('aria-label', `Delete “${title}”`);
}

// Keys touched by a transaction that is not settled yet: shown as "saving".
function liveKeys(client) {
  const keys = new Set();
  for (const tx of client.transactions()) {
    if (tx.state === 'completed' || tx.state === 'failed') continue;
    for (const m of tx.mutations ?? []) keys.add(String(m.key));
  }
  return keys;
}

// A mutator's handle: failures show in the outbox panel, not as unhandled rejections.
function track(handle) {
  handle?.durable?.catch(() => {});
  handle?.completed?.catch(() => {});
  return handle;
}

// ---- the outbox panel and dead letters ----------------------------------------------------

// The client lists the transactions still in play (unsettled, or failed) and lets completed
// ones go; the panel also shows the last few that completed, from the client's state events.
function recentlyCompleted(client, onChange) {
  const live = new Map(); // id → its latest record, while in play
  const done = new Map(); // id → record, the most recent last
  client.subscribeTransactions((list) => {
    for (const tx of list) live.delete(tx.id), live.set(tx.id, tx);
    while (live.size > 500) live.delete(live.keys().next().value);
  });
  client.onEvent((event) => {
    if (event.type !== 'state' || event.state !== 'completed') return;
    const tx = live.get(event.id);
    if (!tx) return;
    live.delete(event.id);
    done.set(event.id, { ...tx, state: 'completed', attempts: event.attempts, error: null });
    while (done.size > RECENT) done.delete(done.keys().next().value);
    onChange();
  });
  return () => [...done.values()].reverse();
}

async function renderTransactions({ client, history }) {
  const all = [...client.transactions()].sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0));
  const failed = all.filter((tx) => tx.state === 'failed');
  const open = all.filter((tx) => tx.state !== 'completed' && tx.state !== 'failed');
  const inPlay = new Set(all.map((tx) => tx.id));
  const done = history().filter((tx) => !inPlay.has(tx.id));
  const shown = [...all, ...done].slice(0, Math.max(RECENT, all.length));

  $('txs').replaceChildren(...shown.map(transactionRow));
  $('txs-empty').hidden = shown.length > 0;
  $('dead').replaceChildren(...failed.map((tx) => deadLetter(client, tx)));
  $('dead').hidden = failed.length === 0;
  $('dead-empty').hidden = failed.length > 0;

  try {
    const s = await client.queueStats();
    $('stats').textContent = s
      ? `${s.size} in the outbox · ${s.inFlight} being sent · ${s.deadLetters} dead · ${formatBytes(s.bytes)}`
      : `${open.length} waiting · ${failed.length} dead`;
  } catch {
    $('stats').textContent = `${open.length} waiting · ${failed.length} dead`;
  }
}

function transactionRow(tx) {
  const tr = document.createElement('tr');
  tr.dataset.id = tx.id;
  tr.dataset.state = tx.state;
  const what = cell('td', describe(tx));
  what.title = tx.id;
  if (tx.error && tx.state !== 'completed') what.append(cell('div', errorText(tx.error), 'error'));
  const state = cell('td');
  state.append(cell('span', stateLabel(tx.state), `pill pill-${tx.state}`));
  tr.append(what, state, cell('td', String(attemptCount(tx)), 'num'));
  return tr;
}

function deadLetter(client, tx) {
  const li = document.createElement('li');
  li.dataset.id = tx.id;
  li.append(cell('div', describe(tx), 'what'), cell('div', errorText(tx.error), 'error'));
  const retry = cell('button', 'Retry');
  const discard = cell('button', 'Discard', 'danger');
  retry.type = discard.type = 'button';
  retry.setAttribute('aria-label', `Retry: ${describe(tx)}`);
  discard.setAttribute('aria-label', `Discard: ${describe(tx)}`);
  retry.onclick = () => act(() => client.retryDeadLetter(tx.id));
  discard.onclick = () => act(() => client.removeFromOutbox(tx.id));
  const buttons = cell('div', '', 'buttons');
  buttons.append(retry, discard);
  li.append(buttons);
  return li;
}

// "add “Milk”", "done “Milk”", "rename “Milk” → “Oat milk”", "delete “Milk”" (+ n more).
function describe(tx) {
  const [m, ...rest] = tx.mutations ?? [];
  if (!m) return tx.id;
  const before = m.original?.title ?? m.modified?.title ?? m.key;
  let text;
  if (m.kind === 'insert') text = `add “${m.modified?.title ?? m.key}”`;
  else if (m.kind === 'delete') text = `delete “${before}”`;
  else if (m.changes && 'title' in m.changes) text = `rename “${before}” → “${m.changes.title}”`;
  else if (m.changes && 'done' in m.changes) text = `mark “${before}” ${m.changes.done ? 'done' : 'not done'}`;
  else text = `update “${before}”`;
  return rest.length ? `${text} (+${rest.length} more)` : text;
}

const STATE_LABELS = {
  pending: 'pending',
  queued: 'queued',
  persisting: 'sending',
  persisted_awaiting_sync: 'awaiting sync',
  completed: 'done',
  failed: 'failed',
};
const stateLabel = (state) => STATE_LABELS[state] ?? String(state);
// A record lists its latest attempts; older ones are counted in `earlierAttempts`.
const attemptCount = (tx) =>
  Array.isArray(tx.attempts) ? tx.attempts.length + (tx.earlierAttempts?.count ?? 0) : Number(tx.attempts ?? 0);
const errorText = (e) => (e ? `${e.code}${e.status ? ` (${e.status})` : ''}: ${e.message}` : '');
const formatBytes = (n) => (n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n ?? 0} B`);

function cell(tag, text = '', className = '') {
  const el = document.createElement(tag);
  if (text) el.textContent = text;
  if (className) el.className = className;
  return el;
}

// ---- who is signed in ----------------------------------------------------------------------

// The user switcher: switching signs the current user out (their unsent changes stay in their
// outbox for their next sign-in) and reloads the tab as the next one. "Sign out, discard" drops
// them. A sign-out in another tab of the same user closes this tab's client: say so.
function wireUser(client, user) {
  const select = $('user');
  for (const name of DEMO_USERS) select.append(new Option(name, name));
  select.value = user;
  let leaving = false;
  const leave = (next, pending) =>
    act(async () => {
      leaving = true;
      select.disabled = $('discard').disabled = true;
      await switchUser(client, user, next, { pending });
    });
  select.addEventListener('change', () => leave(select.value, 'keep'));
  $('discard').hidden = !user;
  $('discard').addEventListener('click', () => leave('', 'discard'));
  client.onEvent((event) => {
    if (event.type !== 'signed_out' || leaving) return;
    const notice = $('signed-out');
    notice.hidden = false;
    notice.querySelector('button').addEventListener('click', () => reloadAs(undefined));
    for (const el of document.querySelectorAll('#add input, #add button, #user')) el.disabled = true;
  });
}

// ---- role badge, problems ------------------------------------------------------------------

const ROLES = {
  leader: ['leader', "This tab's worker runs the outbox: it keeps it in IndexedDB and sends it to the server."],
  follower: ['follower', "Another tab's worker runs the outbox; this tab hands it its changes."],
  shared: ['shared worker', 'A SharedWorker runs the outbox for every tab; this tab hands it its changes.'],
  'online-only': ['online-only', 'No outbox: this tab sends its changes itself, and they are lost if it closes first.'],
};

// The tab's role. With a SharedWorker no tab leads: the shared worker does, for all of them.
function renderRole(client, shared) {
  const role =
    client.mode === 'online-only' ? 'online-only' : client.isLeaderTab ? 'leader' : shared ? 'shared' : 'follower';
  const [label, hint] = ROLES[role];
  const badge = $('role');
  badge.textContent = label;
  badge.className = `badge badge-${role}`;
  badge.title = hint;
  badge.dataset.role = role;
  const d = client.diagnostic; // {code, message} while online-only
  const notice = $('diagnostic');
  notice.hidden = !(role === 'online-only' && d);
  notice.textContent = notice.hidden ? '' : `Online-only: ${d.message ?? plain(d)}${d.code ? ` (${d.code})` : ''}.`;
}

function showProblem(what, error) {
  const p = $('problem');
  p.textContent = `${what}: ${error?.code ? `${error.code}: ` : ''}${error?.message ?? plain(error)}`;
  p.hidden = false;
  console.error(what, error);
}

async function act(fn) {
  try {
    await fn();
  } catch (error) {
    showProblem('That did not work', error);
  }
}

const plain = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

// Runs `fn` once after the current task, however often it is asked for in it. (Not once per
// animation frame: a tab in the background gets few or none, and its list would fall behind.)
function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    setTimeout(() => {
      queued = false;
      fn();
    });
  };
}

// ---- the server's fault switches (only when it runs with --faults) ---------------------------

function wireFaults(client) {
  const show = (f) => {
    $('offline').checked = f.offline;
    $('unavailable').checked = f.unavailable;
    const notes = [];
    if (f.failNext) notes.push(`next ${f.failNext.count} refused with ${f.failNext.status}`);
    if (f.dropReplies) notes.push(`next ${f.dropReplies} replies dropped`);
    if (f.delayMs) notes.push(`answers delayed ${f.delayMs} ms`);
    $('faults-state').textContent = notes.length ? `Armed: ${notes.join(', ')}.` : '';
  };
  const set = (patch) =>
    act(async () => {
      const res = await fetch('/_test/faults', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(patch),
      });
      if (!res.ok) throw new Error(`POST /_test/faults: HTTP ${res.status}`);
      show(await res.json());
      if (patch.offline === false || patch.unavailable === false) client.notifyOnline();
    });
  const refresh = coalesce(async () => {
    try {
      const res = await fetch('/_test/faults', { cache: 'no-store' });
      if (!res.ok) throw new Error(String(res.status));
      show(await res.json());
    } catch {
      $('faults').hidden = true; // a server without --faults
    }
  });

  $('offline').addEventListener('change', (e) => set({ offline: e.target.checked }));
  $('unavailable').addEventListener('change', (e) => set({ unavailable: e.target.checked }));
  $('fail-next').addEventListener('click', () => set({ failNext: { count: 1, status: 422 } }));
  $('drop-reply').addEventListener('click', () => set({ dropReplies: 1 }));
  // Another tab may flip them: look again when this one is shown, and now and then.
  document.addEventListener('visibilitychange', () => document.hidden || refresh());
  setInterval(() => document.hidden || refresh(), 3000);
  refresh();
  return { refresh };
}
