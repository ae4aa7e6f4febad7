// Holds (`?mode=hold`) or waits for (`?mode=wait`) the Web Lock named in `?lock=`, and tells its
// page: {type: 'held'} | {type: 'waiting'}, then {type: 'got', at} with the wall-clock time.
const params = new URL(self.location.href).searchParams;
const name = params.get('lock') ?? 'bench-lock';
const mode = params.get('mode') ?? 'hold';
const wallNow = () => performance.timeOrigin + performance.now();
navigator.locks.request(name, () => {
  if (mode === 'hold') self.postMessage({ type: 'held' });
  else self.postMessage({ type: 'got', at: wallNow() });
  return new Promise(() => {});
});
if (mode === 'wait') {
  navigator.locks.query().then((q) => {
    if (q.pending.some((l) => l.name === name)) self.postMessage({ type: 'waiting' });
    else self.postMessage({ type: 'waiting', note: 'not pending yet' });
  });
}
