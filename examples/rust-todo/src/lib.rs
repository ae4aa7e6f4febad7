//! A todo list in Rust on Outbox's typed client (`outbox_client::typed`), with plain `web-sys`
//! DOM code and no JS of its own: index.html only loads the wasm-bindgen output.
//!
//! It connects like the JS demo (the demo's worker script `/worker.js`, the app `todos`), so
//! its tabs and the demo's share one leader, one outbox and one change feed. Every change
//! shows at once, is written durably by the leader and sent to the server; the server's rows
//! come back through the feed the leader follows. The list re-renders on every change of the
//! collection (this tab's, other tabs', the feed's, rollbacks).
//!
//! Built by `bash scripts/dev rust-example`; tested by `tests/rust-example.test.mjs`.
#![cfg(target_arch = "wasm32")]

mod dom;

use dom::{by_id, element, set_attr, AppError, Listener};
use outbox_client::typed::{
    CollectionOptions, Config, HttpEndpoint, Mode, Outbox, Subscription, Tx, TypedCollection,
};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, Event, HtmlInputElement};

/// The app's name: it names the leader's database, its lock and the channel.
const APP: &str = "todos";
/// The collection, as the reference server and the demo know it.
const TODOS: &str = "todos";

/// A row of `todos`, in the demo's shape (fields the app does not know are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Todo {
    id: String,
    title: String,
    #[serde(default)]
    done: bool,
    /// When it was added, in ms since the Unix epoch: the list is oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<f64>,
}

/// What the page keeps alive while it is open: the connection, the collection's and the
/// status's subscriptions, and the form's and list's listeners.
struct App {
    _outbox: Outbox,
    _subscriptions: Vec<Subscription>,
    _listeners: Vec<Listener>,
}

thread_local! {
    /// The running app, for the life of the page.
    static RUNNING: RefCell<Option<App>> = const { RefCell::new(None) };
}

/// Starts the app once the wasm is loaded; a failure shows on the page.
#[wasm_bindgen(start)]
pub fn start() {
    spawn_local(async {
        match run().await {
            Ok(app) => RUNNING.with(|running| *running.borrow_mut() = Some(app)),
            Err(e) => show_problem(&e),
        }
    });
}

async fn run() -> Result<App, AppError> {
    let endpoint = HttpEndpoint {
        url: "/api/mutations".into(),
        headers: Default::default(),
        batch: true,
        max_batch_bytes: None,
        timeout_ms: None,
    };
    // `http` and `sync` serve only when this tab must send its changes and follow the feed
    // itself (online-only); otherwise the leader in /worker.js does both.
    let config = Config::new(APP)
        .worker_url("/worker.js")
        .http(TODOS, endpoint)
        .sync([TODOS]);
    let outbox = Outbox::connect(config).await?;
    let options = CollectionOptions {
        key: Some("id".into()),
        sync_leader: true, // rows come from the change feed the leader follows
        ..CollectionOptions::default()
    };
    let todos = outbox.collection_with::<Todo>(TODOS, options)?;

    let list = by_id("todos")?;
    let render_list = {
        let (todos, list) = (todos.clone(), list.clone());
        move || report(render_todos(&list, &todos))
    };
    render_list();
    let status = by_id("status")?;
    // The status listeners below hold a handle to the connection: both live as long as the page.
    let render_status = {
        let outbox = outbox.clone();
        move || report(render_status(&status, &outbox))
    };
    render_status();
    let subscriptions = vec![
        todos.subscribe(render_list),
        outbox.on_mode_change({
            let render_status = render_status.clone();
            move |_, _| render_status()
        }),
        outbox.on_leadership_change(move |_| render_status()),
    ];

    let form = by_id("new-todo")?;
    let listeners = vec![
        Listener::new(&form, "submit", {
            let todos = todos.clone();
            move |event: Event| {
                event.prevent_default();
                report(add_todo(&todos));
            }
        })?,
        // One listener each for the whole list: the row is the `<li data-id>` around the target.
        Listener::new(&list, "change", {
            let todos = todos.clone();
            move |event: Event| report(on_list_event(&todos, &event, "toggle"))
        })?,
        Listener::new(&list, "click", {
            let todos = todos.clone();
            move |event: Event| report(on_list_event(&todos, &event, "delete"))
        })?,
    ];
    for id in ["title", "add"] {
        set_attr(&by_id(id)?, "disabled", None)?;
    }
    Ok(App {
        _outbox: outbox,
        _subscriptions: subscriptions,
        _listeners: listeners,
    })
}

/// Adds the todo typed in the form, and clears it.
fn add_todo(todos: &TypedCollection<Todo>) -> Result<(), AppError> {
    let input: HtmlInputElement = by_id("title")?
        .dyn_into()
        .map_err(|_| AppError::Dom("#title is not an <input>".into()))?;
    let title = input.value().trim().to_owned();
    if title.is_empty() {
        return Ok(());
    }
    let crypto = web_sys::window()
        .map(|w| w.crypto())
        .transpose()
        .map_err(|e| AppError::dom("window.crypto", &e))?
        .ok_or_else(|| AppError::Dom("no window".into()))?;
    let todo = Todo {
        id: crypto.random_uuid(),
        title,
        done: false,
        created_at: Some(js_sys::Date::now()),
    };
    follow(todos.insert(&todo)?);
    input.set_value("");
    Ok(())
}

/// A change of a row's checkbox (`toggle`) or a click on its delete button (`delete`).
fn on_list_event(
    todos: &TypedCollection<Todo>,
    event: &Event,
    action: &str,
) -> Result<(), AppError> {
    let Some(target) = event.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
        return Ok(());
    };
    if !target.matches(&format!(".{action}")).unwrap_or(false) {
        return Ok(());
    }
    let row = target
        .closest("li[data-id]")
        .map_err(|e| AppError::dom("closest", &e))?;
    let Some(id) = row.and_then(|li| li.get_attribute("data-id")) else {
        return Ok(());
    };
    let tx = match action {
        "toggle" => {
            let done = target
                .dyn_ref::<HtmlInputElement>()
                .is_some_and(|i| i.checked());
            todos.update_with(id.as_str(), |todo| todo.done = done)?
        }
        _ => todos.delete(id.as_str())?,
    };
    follow(tx);
    Ok(())
}

/// Shows a change's failure when the server refuses it for good (the change has already been
/// rolled back in every tab by then).
fn follow(tx: Tx) {
    let completed = tx.completed();
    spawn_local(async move {
        if let Err(e) = completed.await {
            show_problem(&AppError::Outbox(e));
        }
    });
}

/// The list as the collection has it now, oldest first.
fn render_todos(list: &Element, todos: &TypedCollection<Todo>) -> Result<(), AppError> {
    let mut rows = todos.rows()?;
    rows.sort_by(|a, b| {
        a.created_at
            .unwrap_or(0.0)
            .total_cmp(&b.created_at.unwrap_or(0.0))
            .then(a.id.cmp(&b.id))
    });
    list.set_text_content(None);
    for todo in rows {
        let li = element("li", &[("data-id", &todo.id)], "")?;
        let mut checkbox = vec![("type", "checkbox"), ("class", "toggle")];
        if todo.done {
            checkbox.push(("checked", ""));
            li.set_class_name("done");
        }
        let label = format!("Delete {}", todo.title);
        for child in [
            element("input", &checkbox, "")?,
            element("span", &[("class", "title")], &todo.title)?,
            element(
                "button",
                &[("class", "delete"), ("aria-label", &label)],
                "✕",
            )?,
        ] {
            li.append_child(&child)
                .map_err(|e| AppError::dom("<li>", &e))?;
        }
        list.append_child(&li)
            .map_err(|e| AppError::dom("<ul>", &e))?;
    }
    Ok(())
}

/// The mode (offline-enabled while a leader serves this tab, else online-only and why) and
/// whether this tab's own worker leads; also as `data-mode` and `data-leader` for tests.
fn render_status(status: &Element, outbox: &Outbox) -> Result<(), AppError> {
    let mode = outbox.mode();
    let leads = outbox.is_leader_tab();
    let text = match (mode, outbox.diagnostic()) {
        (Mode::OfflineEnabled, _) if leads => "offline-enabled · this tab leads".to_owned(),
        (Mode::OfflineEnabled, _) => {
            "offline-enabled · another tab or a shared worker leads".into()
        }
        (Mode::OnlineOnly, Some(why)) => format!("online-only · {}", why.message),
        (mode, _) => mode.as_str().to_owned(),
    };
    status.set_text_content(Some(&text));
    set_attr(status, "data-mode", Some(mode.as_str()))?;
    set_attr(
        status,
        "data-leader",
        Some(if leads { "true" } else { "false" }),
    )
}

/// Shows a failure on the page (and in the console).
fn report(result: Result<(), AppError>) {
    if let Err(e) = result {
        show_problem(&e);
    }
}

fn show_problem(e: &AppError) {
    let text = e.to_string();
    web_sys::console::error_1(&text.as_str().into());
    if let Ok(problem) = by_id("problem") {
        problem.set_text_content(Some(&text));
        let _ = problem.remove_attribute("hidden");
    }
}
