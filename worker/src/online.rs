//! Online-only mode's executor for a tab, from this wasm: the client, which does not link the
//! executor, imports this module into the page when a tab goes online-only and starts
//! [`start_online_executor`] (see `outbox_runtime::local`). The two speak in encoded envelopes.

use crate::leader::to_js_error;
use outbox_runtime::local::{LocalConfig, LocalExecutor, Say};
use outbox_shared::model::ErrorCode;
use outbox_shared::protocol::{self, Envelope};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A tab's own executor, as the client sees it.
#[wasm_bindgen]
#[derive(Debug)]
pub struct OnlineExecutor {
    local: LocalExecutor,
    scope: String,
}

/// Starts a tab's own executor for channel scope `scope`, with the settings and functions of
/// the tab's `connect` options (`maxConcurrency`, `maxBatch`, `retry`, `mutationFns`, `http`,
/// `sync`). It says every envelope, encoded, to `emit`, starting at once with its claim.
/// Throws `OUTBOX_INVALID` for options it cannot read.
#[wasm_bindgen(js_name = startOnlineExecutor)]
pub fn start_online_executor(
    options: JsValue,
    scope: String,
    emit: js_sys::Function,
) -> Result<OnlineExecutor, JsValue> {
    let parsed =
        crate::options::parse(&options).map_err(|m| to_js_error(ErrorCode::Invalid, &m))?;
    let config = LocalConfig {
        scope: scope.clone(),
        retry: parsed.options.retry,
        max_concurrency: parsed.options.max_concurrency,
        max_batch: parsed.options.max_batch,
        fns: Rc::new(parsed.fns),
        sync: parsed.options.sync,
        sync_source: parsed.sync_source,
    };
    let say: Say = Rc::new(move |env: Envelope| {
        // The client's listener only queues the envelope; an exception there is not ours.
        let _ = emit.call1(&JsValue::NULL, &JsValue::from_str(&protocol::encode(&env)));
    });
    Ok(OnlineExecutor {
        local: LocalExecutor::start(config, say),
        scope,
    })
}

#[wasm_bindgen]
impl OnlineExecutor {
    /// Takes an encoded envelope of the tab; false if it is not one of this scope.
    pub fn deliver(&self, text: &str) -> bool {
        match protocol::decode(text, &self.scope) {
            Ok(env) => {
                self.local.deliver(&env.from, env.body);
                true
            }
            Err(_) => false,
        }
    }

    /// Stops: running calls are aborted, nothing more is said.
    pub fn stop(&self) {
        self.local.stop();
    }
}
