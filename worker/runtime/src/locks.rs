//! Asking the Web Locks manager which locks are held: how a tab checks a leader's proof lock
//! ([`outbox_shared::leadership::proof_lock_name`]) before it believes the claim.

use js_sys::{Array, Function, Promise, Reflect};
use outbox_shared::leadership::proof_lock_name;
use outbox_shared::model::{ClientId, Epoch};
use std::future::Future;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

/// The names of the locks held in this origin (`navigator.locks.query().held`).
pub async fn held_lock_names() -> Result<Vec<String>, JsValue> {
    let locks = get(&js_sys::global(), "navigator")
        .and_then(|n| get(&n, "locks"))
        .ok_or_else(|| JsValue::from_str("no navigator.locks"))?;
    let query: Function = get(&locks, "query")
        .and_then(|q| q.dyn_into().ok())
        .ok_or_else(|| JsValue::from_str("no navigator.locks.query"))?;
    let promise: Promise = query.call0(&locks)?.dyn_into()?;
    let snapshot = JsFuture::from(promise).await?;
    let held = get(&snapshot, "held")
        .and_then(|h| h.dyn_into::<Array>().ok())
        .unwrap_or_default();
    Ok(held
        .iter()
        .filter_map(|info| get(&info, "name").and_then(|n| n.as_string()))
        .collect())
}

/// Whether the lock `name` is held by anyone in this origin. A failing query counts as held:
/// the platform check has already found Web Locks, so a failure here is no evidence of forgery,
/// and refusing every leader would leave the tab with none.
pub async fn is_held(name: &str) -> bool {
    match held_lock_names().await {
        Ok(names) => names.iter().any(|n| n == name),
        Err(_) => true,
    }
}

/// Whether `leader`'s claim to lead `scope` at `epoch` holds: its proof lock is held. The name
/// is made now, so the future borrows nothing.
pub fn claim_holds(scope: &str, epoch: Epoch, leader: &ClientId) -> impl Future<Output = bool> {
    let name = proof_lock_name(scope, epoch, leader);
    async move { is_held(&name).await }
}
