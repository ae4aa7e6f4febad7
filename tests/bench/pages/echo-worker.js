// Echoes pings on the BroadcastChannel named in `?ch=`, as a dedicated or a shared worker, and
// on its port(s): the SharedWorker's MessagePorts, or the dedicated worker's own.
const name = new URL(self.location.href).searchParams.get('ch') ?? 'bench-bc';
const bc = new BroadcastChannel(name);
bc.onmessage = (e) => {
  if (e.data && e.data.ping !== undefined) bc.postMessage({ pong: e.data.ping });
};
bc.postMessage({ ready: true });
self.addEventListener('connect', (event) => {
  for (const port of event.ports) {
    port.onmessage = (m) => {
      if (m.data === 'close') return bc.close(), self.close();
      if (m.data && m.data.ping !== undefined) port.postMessage({ pong: m.data.ping });
    };
  }
});
if (typeof SharedWorkerGlobalScope === 'undefined') {
  self.onmessage = (m) => m.data && m.data.ping !== undefined && self.postMessage({ pong: m.data.ping });
}
