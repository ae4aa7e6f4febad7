//! The leader in a shared worker of headless Chromium (bodies in `leader_cases`).
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

mod leader_cases;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_shared_worker);

#[wasm_bindgen_test]
async fn the_store_bumps_the_epoch_and_keeps_records_across_openings() {
    leader_cases::the_store_bumps_the_epoch_and_keeps_records_across_openings().await;
}

#[wasm_bindgen_test]
async fn the_store_keeps_whether_the_server_was_reachable_for_the_next_leader() {
    leader_cases::the_store_keeps_whether_the_server_was_reachable_for_the_next_leader().await;
}

#[wasm_bindgen_test]
async fn a_completed_record_becomes_its_tombstone_and_old_tombstones_still_count() {
    leader_cases::a_completed_record_becomes_its_tombstone_and_old_tombstones_still_count().await;
}

#[wasm_bindgen_test]
async fn a_long_leadership_deletes_expired_marks_from_the_log_in_one_range() {
    leader_cases::a_long_leadership_deletes_expired_marks_from_the_log_in_one_range().await;
}

#[wasm_bindgen_test]
async fn a_leader_that_resigns_inside_before_retry_makes_no_call_after() {
    leader_cases::a_leader_that_resigns_inside_before_retry_makes_no_call_after().await;
}

#[wasm_bindgen_test]
async fn a_takeover_commits_its_first_writes_with_the_epoch() {
    leader_cases::a_takeover_commits_its_first_writes_with_the_epoch().await;
}

#[wasm_bindgen_test]
async fn a_rehearsed_takeover_reads_the_outbox_and_writes_nothing() {
    leader_cases::a_rehearsed_takeover_reads_the_outbox_and_writes_nothing().await;
}

#[wasm_bindgen_test]
async fn a_rehearsal_on_an_empty_outbox_takes_its_stand_ins_over_and_writes_nothing() {
    leader_cases::a_rehearsal_on_an_empty_outbox_takes_its_stand_ins_over_and_writes_nothing()
        .await;
}

#[wasm_bindgen_test]
async fn a_write_is_one_log_entry_for_its_records_and_one_for_its_marks() {
    leader_cases::a_write_is_one_log_entry_for_its_records_and_one_for_its_marks().await;
}

#[wasm_bindgen_test]
async fn a_removal_is_remembered_for_the_next_leader_and_a_value_it_did_not_write_is_none() {
    leader_cases::a_removal_is_remembered_for_the_next_leader_and_a_value_it_did_not_write_is_none(
    )
    .await;
}

#[wasm_bindgen_test]
async fn a_collection_with_a_stored_row_that_does_not_read_is_loaded_again_whole() {
    leader_cases::a_collection_with_a_stored_row_that_does_not_read_is_loaded_again_whole().await;
}

#[wasm_bindgen_test]
async fn a_schema_3_database_is_upgraded_and_its_packs_become_slots() {
    leader_cases::a_schema_3_database_is_upgraded_and_its_packs_become_slots().await;
}

#[wasm_bindgen_test]
async fn a_stale_leaders_write_is_fenced_out_and_rolled_back_whole() {
    leader_cases::a_stale_leaders_write_is_fenced_out_and_rolled_back_whole().await;
}

#[wasm_bindgen_test]
fn quota_exhaustion_is_recognised_by_its_dom_exception_name() {
    leader_cases::quota_exhaustion_is_recognised_by_its_dom_exception_name();
}

#[wasm_bindgen_test]
async fn a_submit_is_durable_then_completed_through_the_mutation_function() {
    leader_cases::a_submit_is_durable_then_completed_through_the_mutation_function().await;
}

#[wasm_bindgen_test]
async fn submits_that_arrive_together_are_committed_together() {
    leader_cases::submits_that_arrive_together_are_committed_together().await;
}

#[wasm_bindgen_test]
async fn a_new_leader_retries_what_a_dead_one_left_persisting_with_the_same_key() {
    leader_cases::a_new_leader_retries_what_a_dead_one_left_persisting_with_the_same_key().await;
}

#[wasm_bindgen_test]
async fn a_corrupt_record_is_quarantined_and_reported_and_the_rest_goes_on() {
    leader_cases::a_corrupt_record_is_quarantined_and_reported_and_the_rest_goes_on().await;
}

#[wasm_bindgen_test]
async fn of_two_workers_exactly_one_leads_and_the_other_takes_over_when_it_resigns() {
    leader_cases::of_two_workers_exactly_one_leads_and_the_other_takes_over_when_it_resigns().await;
}

#[wasm_bindgen_test]
async fn before_retry_decides_a_retry_and_may_read_the_leaders_stats_meanwhile() {
    leader_cases::before_retry_decides_a_retry_and_may_read_the_leaders_stats_meanwhile().await;
}

#[wasm_bindgen_test]
async fn a_server_that_is_down_for_longer_than_the_retry_budget_loses_nothing() {
    leader_cases::a_server_that_is_down_for_longer_than_the_retry_budget_loses_nothing().await;
}

#[wasm_bindgen_test]
async fn an_outbox_keeps_one_lineage_for_its_leaders_and_their_calls_name_it() {
    leader_cases::an_outbox_keeps_one_lineage_for_its_leaders_and_their_calls_name_it().await;
}

#[wasm_bindgen_test]
async fn timer_options_a_timer_cannot_take_are_refused_by_name() {
    leader_cases::timer_options_a_timer_cannot_take_are_refused_by_name().await;
}

#[wasm_bindgen_test]
async fn an_unknown_mutation_function_fails_the_transaction_with_a_clear_code() {
    leader_cases::an_unknown_mutation_function_fails_the_transaction_with_a_clear_code().await;
}

#[wasm_bindgen_test]
async fn the_built_in_http_function_posts_to_a_real_server_and_classifies_its_answer() {
    leader_cases::the_built_in_http_function_posts_to_a_real_server_and_classifies_its_answer()
        .await;
}

#[wasm_bindgen_test]
async fn a_worker_can_steal_leadership_from_one_that_no_longer_answers() {
    leader_cases::a_worker_can_steal_leadership_from_one_that_no_longer_answers().await;
}

#[wasm_bindgen_test]
async fn a_database_from_a_newer_schema_is_refused_with_a_clear_error() {
    leader_cases::a_database_from_a_newer_schema_is_refused_with_a_clear_error().await;
}

#[wasm_bindgen_test]
async fn a_leader_holds_its_proof_lock_exactly_while_it_leads() {
    leader_cases::a_leader_holds_its_proof_lock_exactly_while_it_leads().await;
}

#[wasm_bindgen_test]
async fn a_waiting_worker_takes_over_from_a_leader_gone_silent() {
    leader_cases::a_waiting_worker_takes_over_from_a_leader_gone_silent().await;
}

#[wasm_bindgen_test]
async fn a_waiting_worker_takes_over_on_time_though_the_wall_clock_went_back() {
    leader_cases::a_waiting_worker_takes_over_on_time_though_the_wall_clock_went_back().await;
}

#[wasm_bindgen_test]
async fn a_leader_that_keeps_its_heartbeat_is_not_taken_over() {
    leader_cases::a_leader_that_keeps_its_heartbeat_is_not_taken_over().await;
}
