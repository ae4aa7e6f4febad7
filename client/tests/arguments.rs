//! Bad arguments fail at the call, synchronously, with `OUTBOX_INVALID` on a real `Error`, and
//! nothing is half-applied: no row changes, no transaction is made.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

mod support;

use js_sys::{Array, Function};
use outbox_client::OutboxClient;
use support::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Asserts `result` is an `OUTBOX_INVALID` Error whose message contains `words`.
fn refused<T: std::fmt::Debug>(result: Result<T, JsValue>, words: &str) {
    let error = result.expect_err("should have thrown");
    assert!(
        error.is_instance_of::<js_sys::Error>(),
        "{error:?} is not an Error"
    );
    assert_eq!(code(&error), "OUTBOX_INVALID", "{error:?}");
    let message = text(&error, "message").unwrap_or_default();
    assert!(
        message.contains(words),
        "{message:?} does not say {words:?}"
    );
}

#[wasm_bindgen_test]
async fn bad_rows_and_keys_throw_at_the_call_and_change_nothing() {
    let scope = unique_scope("arguments");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    settle(todos.insert(todo("1", "kept")).unwrap().completed())
        .await
        .unwrap();

    refused(todos.insert(json(r#"{"title": "no id"}"#)), "has no \"id\"");
    refused(
        todos.insert(json(r#"{"id": true}"#)),
        "must be a string or a number",
    );
    refused(
        todos.insert(todo("1", "again")),
        "already a row with key \"1\"",
    );
    refused(todos.insert(JsValue::from_str("text")), "must be an object");
    let with_fn = todo("2", "x");
    js_sys::Reflect::set(&with_fn, &"render".into(), &Function::new_no_args("")).unwrap();
    refused(todos.insert(with_fn), "row.render is a function");
    let cyclic = todo("3", "x");
    js_sys::Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    refused(todos.insert(cyclic), "(is there a cycle?)");
    let dated = todo("4", "x");
    js_sys::Reflect::set(&dated, &"due".into(), &js_sys::Date::new_0()).unwrap();
    refused(todos.insert(dated), "row.due is a Date");
    let nan = todo("5", "x");
    js_sys::Reflect::set(&nan, &"n".into(), &JsValue::from(f64::NAN)).unwrap();
    refused(todos.insert(nan), "JSON cannot hold");
    let batch: Array = [todo("6", "fine"), json(r#"{"title": "no id"}"#)]
        .iter()
        .collect();
    refused(todos.insert(batch.into()), "has no \"id\"");
    assert!(
        !has(&todos, "6"),
        "a bad row in a batch stops the whole batch"
    );

    refused(
        todos.update("9".into(), json(r#"{"title": "x"}"#)),
        "no row with key \"9\"",
    );
    refused(todos.delete("9".into()), "no row with key \"9\"");
    refused(
        todos.update("1".into(), json(r#"{"id": "2"}"#)),
        "cannot change",
    );
    refused(
        todos.update("1".into(), JsValue::from(3)),
        "changes must be an object",
    );
    let drop_title = js_fn("", "return (draft) => { delete draft.title; }", &[]);
    refused(
        todos.update("1".into(), drop_title.into()),
        "set it to null instead",
    );
    refused(
        todos.get(JsValue::TRUE),
        "a key must be a string or a finite number",
    );

    refused(
        client.collection("nope".into(), None),
        "unknown collection \"nope\"",
    );
    refused(
        client.collection("other".into(), Some(obj(&[("strategy", "fastest".into())]))),
        "strategy must be",
    );
    refused(
        client.collection("todos".into(), Some(obj(&[("key", "uuid".into())]))),
        "already defined with other options",
    );
    // Defined again asking for a feed or a conflict strategy it was not defined with: refused,
    // where it returned the first definition (no feed) without a word. Left out, they are the
    // first definition's; given the same, fine.
    let with = |pairs: &[(&str, JsValue)]| client.collection("todos".into(), Some(obj(pairs)));
    refused(
        with(&[("sync", "leader".into())]),
        "already defined with other options",
    );
    refused(
        with(&[("conflict", "hold".into())]),
        "already defined with other options",
    );
    let merge: JsValue = js_fn("", "return (a, b) => b;", &[]).into();
    client
        .collection(
            "notes".into(),
            Some(obj(&[
                ("conflict", merge.clone()),
                ("sync", "leader".into()),
            ])),
        )
        .unwrap();
    let notes_with =
        |pairs: &[(&str, JsValue)]| client.collection("notes".into(), Some(obj(pairs)));
    notes_with(&[("conflict", merge.clone()), ("sync", "leader".into())]).unwrap();
    notes_with(&[]).unwrap();
    // A `key`, `strategy` or `mutationFn` left out is the first definition's too (it was taken
    // for the default, and refused against a first `{ key: 'uuid' }`); given, it must agree.
    client
        .collection(
            "people".into(),
            Some(obj(&[
                ("key", "uuid".into()),
                ("strategy", "parallel".into()),
                ("mutationFn", "users".into()),
            ])),
        )
        .unwrap();
    let people_with =
        |pairs: &[(&str, JsValue)]| client.collection("people".into(), Some(obj(pairs)));
    people_with(&[]).unwrap();
    people_with(&[("key", "uuid".into())]).unwrap();
    people_with(&[("strategy", "parallel".into())]).unwrap();
    refused(
        people_with(&[("key", "id".into())]),
        "already defined with other options",
    );
    refused(
        people_with(&[("strategy", "ordered".into())]),
        "already defined with other options",
    );
    refused(
        people_with(&[("mutationFn", "people".into())]),
        "already defined with other options",
    );
    let another: JsValue = js_fn("", "return (a, b) => a;", &[]).into();
    refused(
        notes_with(&[("conflict", another)]),
        "already defined with other options",
    );
    refused(
        notes_with(&[("sync", "other".into())]),
        "already defined with other options",
    );

    assert_eq!(todos.rows().length(), 1);
    assert_eq!(
        text(&todos.get("1".into()).unwrap(), "title").as_deref(),
        Some("kept")
    );
    assert_eq!(client.transactions().length(), 0, "no transaction was made");
    assert_eq!(log.length(), 1);
}

#[wasm_bindgen_test]
async fn a_mutate_callback_that_throws_rolls_back_everything_it_staged() {
    let scope = unique_scope("mutate-throws");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let todos_js: JsValue = todos.clone().into();

    let tx = client.transaction(None).unwrap();
    let throws = js_fn(
        "todos",
        "return () => { todos.insert({ id: 'a' }); todos.insert({ id: 'b' }); \
         throw new RangeError('app bug'); }",
        &[&todos_js],
    );
    let thrown = tx.mutate(throws).unwrap_err();
    assert!(
        thrown.is_instance_of::<js_sys::RangeError>(),
        "the app's own error, rethrown"
    );
    assert_eq!(todos.rows().length(), 0, "nothing staged is left");
    assert_eq!(code(&rejection(&tx.handle()).await), "OUTBOX_REMOVED");
    refused(tx.commit(), "already committed or rolled back");

    let tx = client.transaction(None).unwrap();
    let asynchronous = js_fn(
        "todos",
        "return async () => { todos.insert({ id: 'c' }); }",
        &[&todos_js],
    );
    refused(tx.mutate(asynchronous), "must be synchronous");
    assert_eq!(todos.rows().length(), 0);

    let outer = client.transaction(None).unwrap();
    let inner_tx: JsValue = client.transaction(None).unwrap().into();
    let nests = js_fn(
        "inner, todos",
        "return () => { todos.insert({ id: 'd' }); inner.mutate(() => {}); }",
        &[&inner_tx, &todos_js],
    );
    let error = outer.mutate(nests).unwrap_err();
    assert_eq!(code(&error), "OUTBOX_INVALID");
    assert_eq!(
        todos.rows().length(),
        0,
        "the outer transaction rolled back too"
    );
    assert_eq!(client.transactions().length(), 0);
    assert_eq!(log.length(), 0);
}

#[wasm_bindgen_test]
async fn a_rollback_inside_mutate_ends_the_transaction_there_and_nothing_after_it_stays() {
    let scope = unique_scope("mutate-rollback");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let (client_js, todos_js): (JsValue, JsValue) = (client.clone().into(), todos.clone().into());
    // Runs `body` (which may call `t.rollback()`) in `t.mutate()` of a new transaction:
    // what mutate threw (null if nothing), and the promise of the code `completed` rejects with.
    let run = |body: &str| {
        js_call(
            "client, todos",
            &format!(
                "const t = client.transaction(); let threw = null; \
                 try {{ t.mutate(() => {{ {body} }}); }} catch (e) {{ threw = e; }} \
                 return {{ threw, code: t.handle.completed.then(() => 'ok', (e) => e.code) }};"
            ),
            &[&client_js, &todos_js],
        )
    };

    // The app changes its mind half way: mutate returns, nothing is committed or shown.
    let r = run("todos.insert({ id: 'a' }); t.rollback();");
    assert!(prop(&r, "threw").is_null(), "{:?}", prop(&r, "threw"));
    assert_eq!(todos.rows().length(), 0);
    let rejected = settle(prop(&r, "code").into()).await.unwrap();
    assert_eq!(rejected.as_string().as_deref(), Some("OUTBOX_REMOVED"));

    // A change after the rollback is refused: it would show for good, never sent.
    let r = run("t.rollback(); todos.insert({ id: 'b' });");
    let threw = prop(&r, "threw");
    assert_eq!(code(&threw), "OUTBOX_INVALID");
    assert!(
        text(&threw, "message").is_some_and(|m| m.contains("already rolled back")),
        "{threw:?}"
    );
    assert_eq!(todos.rows().length(), 0, "no row b");
    settle(todos.insert(todo("b", "now it goes")).unwrap().completed())
        .await
        .unwrap();

    // The app's own error after its rollback is what the app gets.
    let r = run("t.rollback(); throw new RangeError('validation');");
    assert!(prop(&r, "threw").is_instance_of::<js_sys::RangeError>());
    assert_eq!(log.length(), 1, "only b was sent");
}

#[wasm_bindgen_test]
async fn bad_options_reject_connect() {
    let no_app = OutboxClient::connect(obj(&[])).await;
    refused(no_app, "options.app");
    let bad_fn = OutboxClient::connect(obj(&[
        ("app", "x".into()),
        ("mutationFns", json(r#"{"todos": 3}"#)),
    ]))
    .await;
    refused(bad_fn, "mutationFns.todos is not a function");
    let bad_choice = OutboxClient::connect(obj(&[
        ("app", "x".into()),
        ("sharedWorker", "always".into()),
    ]))
    .await;
    refused(bad_choice, "sharedWorker");
    let not_object = OutboxClient::connect(JsValue::from_str("todos")).await;
    refused(not_object, "options object");
}

#[wasm_bindgen_test]
async fn rows_hands_out_the_same_frozen_object_while_a_row_is_unchanged() {
    let scope = unique_scope("rowcache");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    for (key, title) in [("1", "milk"), ("2", "eggs")] {
        settle(todos.insert(todo(key, title)).unwrap().completed())
            .await
            .unwrap();
    }
    let first = todos.rows();
    let again = todos.rows();
    assert_eq!(first.length(), 2);
    assert!(
        !js_sys::Object::is(&first, &again),
        "each call gets its own array"
    );
    assert!(js_sys::Object::is(&first.get(0), &again.get(0)));
    assert!(js_sys::Object::is_frozen(&first.get(0).into()));

    let changes = js_sys::Object::new();
    js_sys::Reflect::set(&changes, &"title".into(), &"brown eggs".into()).unwrap();
    settle(
        todos
            .update("2".into(), changes.into())
            .unwrap()
            .completed(),
    )
    .await
    .unwrap();
    let after = todos.rows();
    assert!(
        js_sys::Object::is(&first.get(0), &after.get(0)),
        "row 1 is unchanged"
    );
    assert!(
        !js_sys::Object::is(&first.get(1), &after.get(1)),
        "row 2 is new"
    );
    assert_eq!(text(&after.get(1), "title").as_deref(), Some("brown eggs"));

    settle(todos.delete("1".into()).unwrap().completed())
        .await
        .unwrap();
    let last = todos.rows();
    assert_eq!(last.length(), 1);
    assert!(js_sys::Object::is(&after.get(1), &last.get(0)));

    // A row after every other (appended in one go), then one before them (spliced in).
    settle(todos.insert(todo("3", "jam")).unwrap().completed())
        .await
        .unwrap();
    let appended = todos.rows();
    assert_eq!(appended.length(), 2);
    assert!(js_sys::Object::is(&last.get(0), &appended.get(0)));
    settle(todos.insert(todo("10", "tea")).unwrap().completed())
        .await
        .unwrap();
    let grown = todos.rows();
    let titles: Vec<_> = grown.iter().map(|r| text(&r, "title")).collect();
    assert_eq!(
        titles,
        ["tea", "brown eggs", "jam"].map(|t| Some(t.to_owned())),
        "in key order"
    );
    assert!(
        js_sys::Object::is(&last.get(0), &grown.get(1)),
        "row 2 is still unchanged"
    );
    assert!(grown.iter().all(|r| js_sys::Object::is_frozen(&r.into())));
    client.close();
}

#[wasm_bindgen_test]
async fn many_changes_between_two_reads_of_rows_are_laid_in_in_key_order() {
    use std::collections::BTreeMap;
    let scope = unique_scope("rowmerge");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let first: Array = (0..30)
        .map(|i| {
            let key = format!("k{i:02}");
            expected.insert(key.clone(), format!("first {i}"));
            todo(&key, &format!("first {i}"))
        })
        .collect();
    todos.insert(first.into()).unwrap();
    let before = todos.rows();
    assert_eq!(before.length(), 30);

    // More than a handful of changes before the next read, in no order: new rows between,
    // before and after the old ones, old rows changed and deleted.
    for key in [
        "k05a", "k29z", "a", "k17b", "k00a", "zz", "k10a", "k11a", "k12a", "b",
    ] {
        todos.insert(todo(key, &format!("new {key}"))).unwrap();
        expected.insert(key.to_owned(), format!("new {key}"));
    }
    for i in [3, 9, 21] {
        let key = format!("k{i:02}");
        let changes = js_sys::Object::new();
        js_sys::Reflect::set(&changes, &"title".into(), &"changed".into()).unwrap();
        todos.update(key.as_str().into(), changes.into()).unwrap();
        expected.insert(key, "changed".to_owned());
    }
    for key in ["k00", "k15", "k29", "k05a"] {
        todos.delete(key.into()).unwrap();
        expected.remove(key);
    }
    let after = todos.rows();
    let got: Vec<(Option<String>, Option<String>)> = after
        .iter()
        .map(|r| (text(&r, "id"), text(&r, "title")))
        .collect();
    let want: Vec<(Option<String>, Option<String>)> = expected
        .iter()
        .map(|(k, t)| (Some(k.clone()), Some(t.clone())))
        .collect();
    assert_eq!(got, want);
    assert!(after.iter().all(|r| js_sys::Object::is_frozen(&r.into())));
    // A row no change touched is the object it was.
    let index = |rows: &Array, key: &str| {
        rows.iter()
            .position(|r| text(&r, "id").as_deref() == Some(key))
            .unwrap() as u32
    };
    assert!(js_sys::Object::is(
        &before.get(index(&before, "k01")),
        &after.get(index(&after, "k01"))
    ));
    assert!(!js_sys::Object::is(
        &before.get(index(&before, "k03")),
        &after.get(index(&after, "k03"))
    ));
    // And the rows after that, read again with nothing changed, are the same.
    let again = todos.rows();
    assert_eq!(again.length(), after.length());
    assert!(after
        .iter()
        .zip(again.iter())
        .all(|(a, b)| js_sys::Object::is(&a, &b)));
    client.close();
}

#[wasm_bindgen_test]
async fn more_changes_between_two_reads_than_there_are_rows_read_the_rows_again_whole() {
    let scope = unique_scope("rowsagain");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    todos.insert(todo("kept", "kept")).unwrap();
    let before = todos.rows();
    assert_eq!(before.length(), 1);
    // 200 rows come and 195 go without a read: more keys changed than the view keeps a list
    // of, so the next read copies the rows whole.
    for i in 0..200 {
        todos.insert(todo(&format!("k{i:03}"), "new")).unwrap();
    }
    for i in 5..200 {
        todos.delete(format!("k{i:03}").as_str().into()).unwrap();
    }
    let after = todos.rows();
    let ids: Vec<Option<String>> = after.iter().map(|r| text(&r, "id")).collect();
    let want: Vec<Option<String>> = ["k000", "k001", "k002", "k003", "k004", "kept"]
        .iter()
        .map(|k| Some((*k).to_owned()))
        .collect();
    assert_eq!(ids, want);
    assert!(after.iter().all(|r| js_sys::Object::is_frozen(&r.into())));
    // And from there on change by change again.
    todos.delete("k000".into()).unwrap();
    let last = todos.rows();
    assert_eq!(last.length(), 5);
    assert!(
        js_sys::Object::is(&last.get(4), &after.get(5)),
        "kept is the same object"
    );
    client.close();
}

#[wasm_bindgen_test]
async fn every_kind_of_json_data_reads_back_as_given_and_anything_else_is_named() {
    let scope = unique_scope("rowdata");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let row = js_call(
        "",
        "const bare = Object.create(null); bare.k = [1, -2.5, 'ü€😀', null, {deep: [[true]]}]; \
         return {id: 'a', n: 0.1, big: 2 ** 60, neg: -0, s: 'line\\n\"q\"', bare, gone: undefined};",
        &[],
    );
    settle(todos.insert(row).unwrap().durable()).await.unwrap();
    let back = js_sys::JSON::stringify(&todos.get("a".into()).unwrap()).unwrap();
    assert_eq!(
        String::from(back.clone()),
        r#"{"bare":{"k":[1,-2.5,"ü€😀",null,{"deep":[[true]]}]},"big":1152921504606847000,"id":"a","n":0.1,"neg":0,"s":"line\n\"q\""}"#,
        "keys in order, undefined left out"
    );
    let listed = js_sys::JSON::stringify(&todos.rows().get(0)).unwrap();
    assert_eq!(listed, back, "rows() reads the same");
    // Many rows changed at once cross in one JSON text: they read the same as one by one.
    for i in 0..20 {
        let copy = js_call(
            "row, id",
            "return {...row, id};",
            &[&todos.get("a".into()).unwrap(), &format!("a{i:02}").into()],
        );
        todos.insert(copy).unwrap();
    }
    let rows = todos.rows();
    assert_eq!(rows.length(), 21);
    for row in rows.iter() {
        let key = text(&row, "id").unwrap_or_default();
        let one = js_sys::JSON::stringify(&todos.get(key.clone().into()).unwrap()).unwrap();
        assert_eq!(js_sys::JSON::stringify(&row).unwrap(), one, "row {key}");
        assert!(js_sys::Object::is_frozen(&row.into()));
    }
    for (body, words) in [
        (
            "return {id: 'b', list: [1, () => 2]};",
            "row.list[1] is a function",
        ),
        (
            "return {id: 'b', list: [1, , 3]};",
            "row.list[1] is undefined",
        ),
        (
            "return {id: 'b', at: [new Date(0)]};",
            "row.at[0] is a Date",
        ),
        (
            "return {id: 'b', m: {inner: new Map()}};",
            "row.m.inner is a Map",
        ),
        ("return {id: 'b', n: 10n};", "row.n is a BigInt"),
        ("return {id: 'b', n: Infinity};", "JSON cannot hold"),
        (
            "return {id: 'b', toJSON() { return {id: 'b'}; }};",
            "row.toJSON is a function",
        ),
    ] {
        refused(todos.insert(js_call("", body, &[])), words);
    }
    let mut deep = String::from("1");
    for _ in 0..70 {
        deep = format!("[{deep}]");
    }
    refused(
        todos.insert(json(&format!(r#"{{"id": "c", "deep": {deep}}}"#))),
        "nested more than 64 levels",
    );
    assert!(!has(&todos, "b") && !has(&todos, "c"));
}
