// Who uses this tab: nobody in particular (the app's shared, anonymous outbox) or one of the
// reference server's demo users, alice and bob (password = name). Each user has an outbox scope
// of their own (`connect({ scope })`): their own IndexedDB outbox, leader and channel, so one
// user's pending changes are never shown to, nor sent as, another.
//
// The user is `?user=<name>` when the address names one (tests open tabs of two users side by
// side that way), else the one last chosen in this browser. Tokens are kept per user in
// localStorage — the demo's choice; the outbox itself keeps credentials in the leader's memory
// only and asks the tabs for them through `getCredentials`.
export const DEMO_USERS = ['alice', 'bob'];

const USER_KEY = 'outbox-demo:user';
const tokenKey = (user) => `outbox-demo:token:${user}`;

/** The user of this tab: `'alice'`, `'bob'`, or `''` (anonymous). */
export function currentUser() {
  const named = new URLSearchParams(location.search).get('user');
  const user = named ?? localStorage.getItem(USER_KEY) ?? '';
  return DEMO_USERS.includes(user) ? user : '';
}

/** The stored token of `user`, if any. */
export const storedToken = (user) => (user ? localStorage.getItem(tokenKey(user)) : null);

/** Signs `user` in (`POST /api/login`) and keeps the new token. */
export async function signIn(user) {
  const res = await fetch('/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password: user }),
  });
  if (!res.ok) throw new Error(`POST /api/login: HTTP ${res.status}`);
  const { token } = await res.json();
  localStorage.setItem(tokenKey(user), token);
  return token;
}

/**
 * The `getCredentials` hook for `user`: the stored token while the server still takes it, else a
 * fresh sign-in. The leader asks when a term starts and after a 401; unreachable, the stored
 * token is the best answer there is.
 */
export function credentialsFor(user) {
  return async () => {
    let token = storedToken(user);
    if (token && (await refused(token))) token = null;
    token ??= await signIn(user);
    return { authorization: `Bearer ${token}` };
  };
}

async function refused(token) {
  try {
    const res = await fetch('/api/session', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
    return res.status === 401;
  } catch {
    return false;
  }
}

/**
 * Signs the tab's user out and switches to `next` (`''`: anonymous). The outbox keeps what is
 * pending for the user's next sign-in, or discards it; every tab of that user closes its client
 * (`signed_out`) and reloads. Resolves with the outbox's counts.
 */
export async function switchUser(client, user, next, { pending = 'keep' } = {}) {
  let result = null;
  if (user) {
    result = await client.signOut({ pending });
    const token = storedToken(user);
    localStorage.removeItem(tokenKey(user));
    if (token) {
      await fetch('/api/logout', { method: 'POST', headers: { authorization: `Bearer ${token}` } }).catch(() => {});
    }
  }
  localStorage.setItem(USER_KEY, next);
  reloadAs(next);
  return result;
}

/** Reloads the tab as `user` (the address stops naming a user; the choice is in localStorage). */
export function reloadAs(user) {
  const url = new URL(location.href);
  url.searchParams.delete('user');
  if (user !== undefined) localStorage.setItem(USER_KEY, user);
  location.assign(url);
}
