// The package's main entry: the tab client as wasm-bindgen generated it (client/outbox_client.js),
// plus `connect`, which loads the wasm before connecting so that an app needs no `init()` call.
import init, { OutboxClient } from './client/outbox_client.js';

export * from './client/outbox_client.js';
export { init as default, init };

/**
 * Loads the client's wasm (once; bundlers resolve its URL from `import.meta.url`), then
 * connects this tab: `OutboxClient.connect(options)`.
 */
export async function connect(options) {
  await init();
  return OutboxClient.connect(options);
}
