//! The leader's browser glue in a shared worker of headless Chromium.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

mod common;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_shared_worker);

#[wasm_bindgen_test]
fn runs_in_shared_worker() {
    assert_eq!(common::global_kind(), "SharedWorkerGlobalScope");
}

#[wasm_bindgen_test]
async fn broadcast_channel_round_trip() {
    common::broadcast_channel_round_trip().await;
}

#[wasm_bindgen_test]
async fn a_second_request_waits_until_the_first_guard_is_released() {
    common::a_second_request_waits_until_the_first_guard_is_released().await;
}

#[wasm_bindgen_test]
async fn a_withdrawn_request_leaves_the_queue() {
    common::a_withdrawn_request_leaves_the_queue().await;
}

#[wasm_bindgen_test]
async fn a_refused_request_is_a_typed_error() {
    common::a_refused_request_is_a_typed_error().await;
}

#[wasm_bindgen_test]
async fn indexed_db_opens_and_keeps_a_record() {
    common::indexed_db_opens_and_keeps_a_record().await;
}
