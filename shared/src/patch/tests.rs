use serde_json::{json, Value};

use super::*;

fn p(ops: Value) -> Patch {
    parse(&ops).unwrap()
}

/// Applies `ops` to `doc`, checks the result is `expected`, and that the inverse takes it back.
/// Returns the inverse as JSON.
fn round_trip(doc: Value, ops: Value, expected: Value) -> Value {
    let patch = p(ops);
    let undo = inverse(&doc, &patch).unwrap();
    let mut d = doc.clone();
    let undo_too = apply_with_inverse(&mut d, &patch).unwrap();
    assert_eq!(d, expected);
    assert_eq!(undo, undo_too);
    apply(&mut d, &undo).unwrap();
    assert_eq!(d, doc);
    serde_json::to_value(&undo).unwrap()
}

fn failure(doc: Value, ops: Value) -> (usize, String, Failure) {
    let patch = p(ops);
    let mut d = doc.clone();
    let err = apply(&mut d, &patch).unwrap_err();
    assert_eq!(d, doc, "doc changed by a failed patch");
    assert_eq!(inverse(&doc, &patch).unwrap_err(), err);
    match err {
        PatchError::Failed {
            op,
            pointer,
            failure,
        } => (op, pointer, failure),
        PatchError::Malformed { reason } => panic!("unexpected malformed: {reason}"),
    }
}

#[test]
fn add_with_dash_is_undone_at_the_concrete_index() {
    let undo = round_trip(
        json!({"a": [1, 2]}),
        json!([{"op": "add", "path": "/a/-", "value": 3}]),
        json!({"a": [1, 2, 3]}),
    );
    assert_eq!(undo, json!([{"op": "remove", "path": "/a/2"}]));
}

#[test]
fn add_over_an_existing_member_is_undone_by_replace() {
    let undo = round_trip(
        json!({"a": {"b": 1}}),
        json!([{"op": "add", "path": "/a", "value": 2}]),
        json!({"a": 2}),
    );
    assert_eq!(
        undo,
        json!([{"op": "replace", "path": "/a", "value": {"b": 1}}])
    );
}

#[test]
fn add_and_replace_at_root_are_undone_by_replacing_root() {
    let undo = round_trip(
        json!({"a": 1}),
        json!([{"op": "add", "path": "", "value": [1]}]),
        json!([1]),
    );
    assert_eq!(
        undo,
        json!([{"op": "replace", "path": "", "value": {"a": 1}}])
    );
    round_trip(
        json!("x"),
        json!([{"op": "replace", "path": "", "value": null}]),
        json!(null),
    );
}

#[test]
fn escaped_tokens_round_trip() {
    let undo = round_trip(
        json!({"a/b": {"~c": 1}}),
        json!([
            {"op": "move", "from": "/a~1b/~0c", "path": "/~01"},
            {"op": "copy", "from": "/~01", "path": "/a~1b/~1"},
        ]),
        json!({"a/b": {"/": 1}, "~1": 1}),
    );
    assert_eq!(
        undo,
        json!([
            {"op": "remove", "path": "/a~1b/~1"},
            {"op": "remove", "path": "/~01"},
            {"op": "add", "path": "/a~1b/~0c", "value": 1},
        ])
    );
}

#[test]
fn move_within_an_array_and_to_an_ancestor_round_trip() {
    round_trip(
        json!({"foo": ["all", "grass", "cows", "eat"]}),
        json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
        json!({"foo": ["all", "cows", "eat", "grass"]}),
    );
    round_trip(
        json!({"a": {"b": {"c": 1}}}),
        json!([{"op": "move", "from": "/a/b", "path": "/a"}]),
        json!({"a": {"c": 1}}),
    );
    round_trip(
        json!([[1, 2], 3]),
        json!([{"op": "move", "from": "/0/1", "path": "/0"}]),
        json!([2, [1], 3]),
    );
}

#[test]
fn move_to_the_same_location_changes_nothing() {
    let undo = round_trip(
        json!({"a": [1]}),
        json!([
            {"op": "move", "from": "/a", "path": "/a"},
            {"op": "move", "from": "", "path": ""},
        ]),
        json!({"a": [1]}),
    );
    assert_eq!(undo, json!([]));
    let (op, _, f) = failure(
        json!({}),
        json!([{"op": "move", "from": "/a", "path": "/a"}]),
    );
    assert_eq!((op, f), (0, no_member("a")));
}

#[test]
fn failure_after_a_move_onto_an_ancestor_leaves_the_doc_unchanged() {
    // json_patch::patch panics on this (its own rollback tries to move /a into /a/b).
    let (op, pointer, f) = failure(
        json!({"a": {"b": 1}}),
        json!([
            {"op": "move", "from": "/a/b", "path": "/a"},
            {"op": "test", "path": "/zzz", "value": 1},
        ]),
    );
    assert_eq!((op, pointer.as_str(), f), (1, "/zzz", no_member("zzz")));
}

#[test]
fn failure_after_many_steps_leaves_the_doc_unchanged() {
    let (op, _, f) = failure(
        json!({"a": [1, 2, 3], "b": {"c": null}}),
        json!([
            {"op": "add", "path": "/a/-", "value": 4},
            {"op": "remove", "path": "/a/0"},
            {"op": "add", "path": "", "value": {"x": {"a": [1, 2, 3]}}},
            {"op": "copy", "from": "/x", "path": "/x/y"},
            {"op": "move", "from": "/x/a", "path": "/z"},
            {"op": "replace", "path": "/z/0", "value": "r"},
            {"op": "remove", "path": "/z/3"},
        ]),
    );
    assert_eq!((op, f), (6, Failure::OutOfBounds { index: 3, len: 3 }));
}

#[test]
fn array_indices_follow_rfc_6901() {
    let doc = json!({"a": [1, 2]});
    let cases = [
        (
            json!({"op": "test", "path": "/a/01", "value": 2}),
            invalid("01"),
        ),
        (
            json!({"op": "add", "path": "/a/00", "value": 2}),
            invalid("00"),
        ),
        (json!({"op": "remove", "path": "/a/+1"}), invalid("+1")),
        (
            json!({"op": "replace", "path": "/a/1e0", "value": 0}),
            invalid("1e0"),
        ),
        (json!({"op": "remove", "path": "/a/-"}), Failure::EndOfArray),
        (
            json!({"op": "replace", "path": "/a/-", "value": 0}),
            Failure::EndOfArray,
        ),
        (
            json!({"op": "test", "path": "/a/-", "value": 0}),
            Failure::EndOfArray,
        ),
        (
            json!({"op": "copy", "from": "/a/-", "path": "/b"}),
            Failure::EndOfArray,
        ),
        (
            json!({"op": "add", "path": "/a/-/x", "value": 0}),
            Failure::EndOfArray,
        ),
        (
            json!({"op": "add", "path": "/a/3", "value": 0}),
            Failure::OutOfBounds { index: 3, len: 2 },
        ),
        (
            json!({"op": "remove", "path": "/a/2"}),
            Failure::OutOfBounds { index: 2, len: 2 },
        ),
        (
            json!({"op": "add", "path": "/a/99999999999999999999999", "value": 0}),
            invalid("99999999999999999999999"),
        ),
    ];
    for (op, expected) in cases {
        let (_, _, f) = failure(doc.clone(), json!([op.clone()]));
        assert_eq!(f, expected, "{op}");
    }
}

#[test]
fn structural_failures_are_classified() {
    let doc = json!({"a": {"b": 1}, "s": "str"});
    let cases = [
        (json!({"op": "remove", "path": ""}), Failure::RemoveRoot),
        (
            json!({"op": "move", "from": "", "path": "/x"}),
            Failure::MoveIntoChild,
        ),
        (
            json!({"op": "move", "from": "/a", "path": "/a/b"}),
            Failure::MoveIntoChild,
        ),
        (
            json!({"op": "add", "path": "/s/x", "value": 0}),
            Failure::NotAContainer,
        ),
        (
            json!({"op": "add", "path": "/q/x", "value": 0}),
            no_member("q"),
        ),
        (
            json!({"op": "test", "path": "/a/b", "value": "1"}),
            Failure::TestFailed,
        ),
    ];
    for (op, expected) in cases {
        let (_, _, f) = failure(doc.clone(), json!([op.clone()]));
        assert_eq!(f, expected, "{op}");
    }
}

#[test]
fn move_into_a_sibling_with_a_common_prefix_is_allowed() {
    round_trip(
        json!({"a": 1, "ab": {}}),
        json!([{"op": "move", "from": "/a", "path": "/ab/a"}]),
        json!({"ab": {"a": 1}}),
    );
}

#[test]
fn test_compares_numbers_by_value() {
    round_trip(
        json!({"n": [1, 2.5]}),
        json!([{"op": "test", "path": "/n", "value": [1.0, 2.5]}]),
        json!({"n": [1, 2.5]}),
    );
}

#[test]
fn malformed_patches_are_rejected_by_parse() {
    for bad in [
        json!({"op": "add", "path": "/a", "value": 1}),
        json!([{"op": "spam", "path": "/a"}]),
        json!([{"op": "add", "path": "a", "value": 1}]),
        json!([{"op": "add", "path": "/a~2", "value": 1}]),
        json!([{"op": "add", "path": "/a"}]),
        json!([{"op": "copy", "path": "/a"}]),
    ] {
        assert!(
            matches!(parse(&bad), Err(PatchError::Malformed { .. })),
            "{bad}"
        );
    }
}

#[test]
fn helpers_build_escaped_pointers() {
    assert_eq!(pointer(&[]), "");
    assert_eq!(pointer(&["a/b", "~c", ""]), "/a~1b/~0c/");
    assert_eq!(
        serde_json::to_value(single_remove(&["k/1"])).unwrap(),
        json!([{"op": "remove", "path": "/k~11"}])
    );
    assert_eq!(
        serde_json::to_value(single_add(&["~"], json!({"x": 1}))).unwrap(),
        json!([{"op": "add", "path": "/~0", "value": {"x": 1}}])
    );
    let mut doc = json!({"~": 1});
    apply(&mut doc, &single_remove(&["~"])).unwrap();
    apply(&mut doc, &single_add(&["a/b"], json!(2))).unwrap();
    assert_eq!(doc, json!({"a/b": 2}));
}

#[test]
fn inverse_of_diff_turns_modified_back_into_original() {
    let original = json!({"title": "a", "tags": ["x", "y", "z"], "meta": {"n": 1}});
    let modified = json!({"title": "b", "tags": ["x"], "meta": {"n": 1, "m": 2}, "new": true});
    let key = "row/~1";
    let mut doc = json!({"other": 1});
    doc[key] = modified.clone();
    apply(&mut doc, &inverse_of_diff(key, &original, &modified)).unwrap();
    assert_eq!(doc, json!({"other": 1, "row/~1": original}));
}

fn invalid(token: &str) -> Failure {
    Failure::InvalidIndex {
        token: token.to_owned(),
    }
}

fn no_member(member: &str) -> Failure {
    Failure::NoSuchMember {
        member: member.to_owned(),
    }
}
