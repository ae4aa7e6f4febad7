//! `outbox_shared::patch` against the community JSON Patch test suite (json-patch/json-patch-tests)
//! and property tests: every patch that applies is undone exactly by its inverse, and no input
//! makes `apply` panic or leave a half-applied document.

use std::path::PathBuf;

use outbox_shared::patch::{self, Patch, PatchError};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Value};

/// The suite lives in `shared/testdata/json-patch` beside the repository checkout.
const SUITE_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/json-patch"
);
const SUITE_FILES: [&str; 2] = ["tests.json", "spec_tests.json"];
/// Records in the two files as vendored; a change here means the suite was updated (or cut).
const SUITE_RECORDS: usize = 112;

fn load_suite(file: &str) -> Vec<Value> {
    let path = PathBuf::from(SUITE_DIR).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "JSON Patch test suite file {} is missing ({e}); it is expected in \
             shared/testdata/json-patch beside the repository",
            path.display()
        )
    });
    match serde_json::from_str(&text) {
        Ok(Value::Array(records)) => records,
        other => panic!(
            "{} is not a JSON array of records: {other:?}",
            path.display()
        ),
    }
}

/// Applies `patch` to `doc`, then its inverse, and checks the original comes back.
fn assert_inverse_round_trips(doc: &Value, patch: &Patch, what: &str) -> Value {
    let undo = patch::inverse(doc, patch).unwrap_or_else(|e| panic!("{what}: inverse: {e}"));
    let mut d = doc.clone();
    patch::apply(&mut d, patch).unwrap_or_else(|e| panic!("{what}: apply: {e}"));
    let patched = d.clone();
    patch::apply(&mut d, &undo).unwrap_or_else(|e| panic!("{what}: apply inverse {undo}: {e}"));
    assert_eq!(
        &d, doc,
        "{what}: inverse {undo} did not restore the document"
    );
    patched
}

#[derive(Debug, Default)]
struct Tally {
    records: usize,
    disabled: usize,
    comment_only: usize,
    expected: usize,
    applies: usize,
    rejected_at_parse: usize,
    rejected_at_apply: usize,
    inverses: usize,
}

#[test]
fn community_suite_applies_rejects_and_inverts() {
    let mut t = Tally::default();
    for file in SUITE_FILES {
        for (i, record) in load_suite(file).iter().enumerate() {
            t.records += 1;
            let what = format!("{file}#{i} {}", record["comment"]);
            if record.get("disabled").and_then(Value::as_bool) == Some(true) {
                t.disabled += 1;
                continue;
            }
            let Some(raw_patch) = record.get("patch") else {
                t.comment_only += 1;
                continue;
            };
            let doc = record.get("doc").cloned().unwrap_or(Value::Null);
            if let Some(reason) = record.get("error") {
                let patch = match patch::parse(raw_patch) {
                    Err(PatchError::Malformed { .. }) => {
                        t.rejected_at_parse += 1;
                        continue;
                    }
                    Err(e) => panic!("{what}: parse gave a non-Malformed error {e:?}"),
                    Ok(patch) => patch,
                };
                let mut d = doc.clone();
                let err = patch::apply(&mut d, &patch)
                    .expect_err(&format!("{what}: should be rejected ({reason})"));
                assert_eq!(d, doc, "{what}: a rejected patch changed the document");
                assert_eq!(patch::inverse(&doc, &patch), Err(err), "{what}");
                t.rejected_at_apply += 1;
                continue;
            }
            let patch = patch::parse(raw_patch).unwrap_or_else(|e| panic!("{what}: {e}"));
            let patched = assert_inverse_round_trips(&doc, &patch, &what);
            t.inverses += 1;
            match record.get("expected") {
                Some(expected) => {
                    assert_eq!(&patched, expected, "{what}");
                    t.expected += 1;
                }
                None => t.applies += 1,
            }
        }
    }
    eprintln!(
        "json-patch suite: {} records; {} run ({} expected, {} apply-only, {} rejected: {} at \
         parse, {} at apply), {} comment-only, {} disabled skipped; {} inverses round-tripped",
        t.records,
        t.records - t.disabled - t.comment_only,
        t.expected,
        t.applies,
        t.rejected_at_parse + t.rejected_at_apply,
        t.rejected_at_parse,
        t.rejected_at_apply,
        t.comment_only,
        t.disabled,
        t.inverses,
    );
    assert_eq!(
        t.records, SUITE_RECORDS,
        "the suite in {SUITE_DIR} has changed size"
    );
    let checked = t.expected + t.applies + t.rejected_at_parse + t.rejected_at_apply;
    assert_eq!(
        checked + t.disabled + t.comment_only,
        t.records,
        "every record is checked, skipped as disabled, or comment-only"
    );
    assert!(
        checked > t.records / 2,
        "most records must be checked: {t:?}"
    );
}

// ---- generators ----------------------------------------------------------------------------

/// Member names chosen to collide with pointer syntax: escapes, `-`, index-like names.
const KEYS: [&str; 12] = [
    "a", "b", "c", "", "~", "/", "~1", "-", "0", "01", "a/b", "m~n",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned)
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec![0.5, -1.0, 2.0, 1e300]).prop_map(Value::from),
        arb_key().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Randomness for one operation; [`valid_op`] turns it into an op that applies to a document.
#[derive(Debug, Clone)]
struct OpSeed {
    kind: u8,
    a: usize,
    b: usize,
    key: String,
    value: Value,
}

fn arb_seed() -> impl Strategy<Value = OpSeed> {
    (
        0u8..6,
        any::<usize>(),
        any::<usize>(),
        arb_key(),
        arb_json(),
    )
        .prop_map(|(kind, a, b, key, value)| OpSeed {
            kind,
            a,
            b,
            key,
            value,
        })
}

/// Every location in `doc` as unescaped tokens, the root (`[]`) first.
fn locations(doc: &Value) -> Vec<Vec<String>> {
    fn walk(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        let children: Vec<(String, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => Vec::new(),
        };
        for (token, child) in children {
            at.push(token);
            walk(child, at, out);
            at.pop();
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

fn ptr(tokens: &[String]) -> String {
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    patch::pointer(&refs)
}

fn value_at<'v>(doc: &'v Value, tokens: &[String]) -> &'v Value {
    doc.pointer(&ptr(tokens)).unwrap_or(&Value::Null)
}

/// A location where `add` succeeds on `doc`: a new or existing member of an object, an index
/// `0..=len` or `-` of an array, or now and then the root.
fn add_target(doc: &Value, seed: &OpSeed) -> String {
    let containers: Vec<Vec<String>> = locations(doc)
        .into_iter()
        .filter(|l| value_at(doc, l).is_object() || value_at(doc, l).is_array())
        .collect();
    if containers.is_empty() || seed.a % 13 == 0 {
        return String::new();
    }
    let mut at = containers[seed.a % containers.len()].clone();
    match value_at(doc, &at) {
        Value::Array(items) => match seed.b % (items.len() + 2) {
            i if i == items.len() + 1 => return format!("{}/-", ptr(&at)),
            i => at.push(i.to_string()),
        },
        _ => at.push(seed.key.clone()),
    }
    ptr(&at)
}

/// `v` with integers written as floats (equal under RFC 6902 §4.6, unequal under `==`).
fn floatify(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_i64() => n.as_f64().map_or(Value::Null, Value::from),
        Value::Array(a) => a.iter().map(floatify).collect(),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), floatify(v))).collect())
        }
        other => other.clone(),
    }
}

fn valid_op(doc: &Value, seed: &OpSeed) -> Value {
    let all = locations(doc);
    let inner: Vec<&Vec<String>> = all.iter().filter(|l| !l.is_empty()).collect();
    let pick = |n: usize| &all[n % all.len()];
    match (seed.kind, inner.is_empty()) {
        (1, false) => json!({"op": "remove", "path": ptr(inner[seed.a % inner.len()])}),
        (2, _) => json!({"op": "replace", "path": ptr(pick(seed.a)), "value": seed.value}),
        (3, false) => {
            let from = inner[seed.a % inner.len()];
            let mut after = doc.clone();
            let remove = patch::single_remove(&from.iter().map(String::as_str).collect::<Vec<_>>());
            patch::apply(&mut after, &remove).unwrap_or_else(|e| panic!("generator: {e}"));
            let mut path = add_target(&after, seed);
            // RFC 6902 §4.4: `from` must not be a proper prefix of `path`.
            if path.starts_with(&format!("{}/", ptr(from))) {
                path = ptr(from);
            }
            json!({"op": "move", "from": ptr(from), "path": path})
        }
        (4, _) => json!({"op": "copy", "from": ptr(pick(seed.a)), "path": add_target(doc, seed)}),
        (5, _) => {
            let at = pick(seed.a);
            let mut value = value_at(doc, at).clone();
            if seed.b % 2 == 0 {
                value = floatify(&value);
            }
            json!({"op": "test", "path": ptr(at), "value": value})
        }
        _ => json!({"op": "add", "path": add_target(doc, seed), "value": seed.value}),
    }
}

/// A patch each of whose operations applies to `doc` as the ones before it left it.
fn valid_patch(doc: &Value, seeds: &[OpSeed]) -> Patch {
    let mut current = doc.clone();
    let mut ops = Vec::new();
    for seed in seeds {
        let op = valid_op(&current, seed);
        let one = patch::parse(&json!([op])).unwrap_or_else(|e| panic!("generator: {op}: {e}"));
        patch::apply(&mut current, &one)
            .unwrap_or_else(|e| panic!("generated op {op} on {current} was rejected: {e}"));
        ops.push(op);
    }
    patch::parse(&Value::Array(ops)).unwrap_or_else(|e| panic!("generator: {e}"))
}

/// Pointers from tokens that are often wrong: missing members, bad or out-of-range indices.
fn arb_pointer() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        arb_key().prop_map(|k| k.replace('~', "~0").replace('/', "~1")),
        prop::sample::select(vec!["0", "1", "2", "3", "-", "00", "01", "1e0", "+1", "-1"])
            .prop_map(str::to_owned),
    ];
    prop::collection::vec(token, 0..4).prop_map(|ts| ts.iter().map(|t| format!("/{t}")).collect())
}

fn arb_any_op() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test"]),
        arb_pointer(),
        arb_pointer(),
        arb_json(),
    )
        .prop_map(
            |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
        )
}

/// One operation of a mixed patch: valid where it stands, or random (and likely failing).
#[derive(Debug, Clone)]
enum Step {
    Valid(OpSeed),
    Random(Value),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => arb_seed().prop_map(Step::Valid),
        1 => arb_any_op().prop_map(Step::Random),
    ]
}

/// Valid operations interleaved with random ones, so that failures come after real changes.
fn mixed_ops(doc: &Value, steps: &[Step]) -> Vec<Value> {
    let mut current = doc.clone();
    let mut ops = Vec::new();
    for step in steps {
        let op = match step {
            Step::Valid(seed) => valid_op(&current, seed),
            Step::Random(op) => op.clone(),
        };
        if let Ok(one) = patch::parse(&json!([op])) {
            // A failing op leaves `current` as it was; the ops after it are never reached.
            let _ = patch::apply(&mut current, &one);
        }
        ops.push(op);
    }
    ops
}

// ---- properties ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // Shrunk failures are kept beside this file as `json_patch_suite.proptest-regressions`.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn inverse_of_a_valid_patch_restores_the_document(
        doc in arb_json(),
        seeds in prop::collection::vec(arb_seed(), 0..10),
    ) {
        let p = valid_patch(&doc, &seeds);
        assert_inverse_round_trips(&doc, &p, "generated patch");
        let mut d = doc.clone();
        let undo = patch::apply_with_inverse(&mut d, &p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(Ok(undo), patch::inverse(&doc, &p));
    }

    #[test]
    fn a_failure_after_valid_steps_leaves_the_document_unchanged(
        doc in arb_json(),
        seeds in prop::collection::vec(arb_seed(), 1..10),
    ) {
        let mut p = valid_patch(&doc, &seeds);
        let fail = patch::parse(&json!([{"op": "test", "path": "", "value": "no document is this"}]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        p.0.extend(fail.0);
        let mut d = doc.clone();
        let err = patch::apply(&mut d, &p).err();
        prop_assert_eq!(err.and_then(|e| e.op()), Some(seeds.len()));
        prop_assert_eq!(d, doc);
    }

    #[test]
    fn random_patches_never_panic_and_fail_cleanly(
        doc in arb_json(),
        steps in prop::collection::vec(arb_step(), 0..8),
    ) {
        let ops = mixed_ops(&doc, &steps);
        let p = match patch::parse(&Value::Array(ops)) {
            Ok(p) => p,
            Err(PatchError::Malformed { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("parse: {e}"))),
        };
        let mut d = doc.clone();
        match patch::apply(&mut d, &p) {
            Err(e) => {
                prop_assert_eq!(&d, &doc);
                prop_assert_eq!(patch::inverse(&doc, &p), Err(e));
                // Never stricter than the crate alone.
                prop_assert!(json_patch::patch_unsafe(&mut d, &p).is_err());
            }
            Ok(()) => {
                assert_inverse_round_trips(&doc, &p, "random patch");
                // Where the crate alone succeeds, same result. The crate is stricter only for
                // `test` (`1` vs `1.0`) and for moving the root onto itself.
                let mut reference = doc.clone();
                if json_patch::patch_unsafe(&mut reference, &p).is_ok() {
                    prop_assert_eq!(&d, &reference);
                }
            }
        }
    }
}
