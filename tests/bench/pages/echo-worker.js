// Echoes pings on the BroadcastChannel named in `?ch=`, as a dedicated or a shared worker.
const name = new URL(self.location.href).searchParams.get('ch') ?? 'bench-bc';
const bc = new BroadcastChannel(name);
bc.onmessage = (e) => {
  if (e.data && e.data.ping !== undefined) bc.postMessage({ pong: e.data.ping });
};
bc.postMessage({ ready: true });
self.addEventListener('connect', (event) => {
  for (const port of event.ports) port.onmessage = (m) => m.data === 'close' && (bc.close(), self.close());
});
