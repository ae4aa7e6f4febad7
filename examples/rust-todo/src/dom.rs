//! The few DOM helpers the app needs, its error type, and owned event listeners.

use outbox_client::typed::OutboxError;
use std::fmt;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, Event, EventTarget};

/// What can go wrong: Outbox refused something, or the page is not the one the app expects.
#[derive(Debug)]
pub(crate) enum AppError {
    /// Outbox's own error, with its stable `OUTBOX_*` code.
    Outbox(OutboxError),
    /// A missing element or a failed DOM call, in words.
    Dom(String),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outbox(e) => write!(f, "{} ({})", e.message, e.code),
            Self::Dom(what) => f.write_str(what),
        }
    }
}

impl From<OutboxError> for AppError {
    fn from(e: OutboxError) -> Self {
        Self::Outbox(e)
    }
}

impl AppError {
    /// A DOM call that threw: `what` failed, with the browser's words.
    pub(crate) fn dom(what: &str, thrown: &JsValue) -> Self {
        let words = thrown
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| format!("{thrown:?}"));
        Self::Dom(format!("{what}: {words}"))
    }
}

/// The page's document.
pub(crate) fn document() -> Result<Document, AppError> {
    web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| AppError::Dom("no document (not running in a page?)".into()))
}

/// The element with this id, which index.html must have.
pub(crate) fn by_id(id: &str) -> Result<Element, AppError> {
    document()?
        .get_element_by_id(id)
        .ok_or_else(|| AppError::Dom(format!("the page has no #{id}")))
}

/// A new `<tag>` with these attributes and text.
pub(crate) fn element(tag: &str, attrs: &[(&str, &str)], text: &str) -> Result<Element, AppError> {
    let el = document()?
        .create_element(tag)
        .map_err(|e| AppError::dom(&format!("<{tag}>"), &e))?;
    for (name, value) in attrs {
        el.set_attribute(name, value)
            .map_err(|e| AppError::dom(&format!("<{tag} {name}>"), &e))?;
    }
    if !text.is_empty() {
        el.set_text_content(Some(text));
    }
    Ok(el)
}

/// `Some(name=value)` sets the attribute, `None` removes it.
pub(crate) fn set_attr(el: &Element, name: &str, value: Option<&str>) -> Result<(), AppError> {
    match value {
        Some(v) => el.set_attribute(name, v),
        None => el.remove_attribute(name),
    }
    .map_err(|e| AppError::dom(&format!("the attribute {name}"), &e))
}

/// An event listener; dropping it removes the listener and frees the closure.
pub(crate) struct Listener {
    target: EventTarget,
    kind: &'static str,
    closure: Closure<dyn FnMut(Event)>,
}

impl Listener {
    /// Calls `on_event` for every `kind` event on `target`.
    pub(crate) fn new(
        target: &EventTarget,
        kind: &'static str,
        on_event: impl FnMut(Event) + 'static,
    ) -> Result<Self, AppError> {
        let closure = Closure::<dyn FnMut(Event)>::new(on_event);
        target
            .add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())
            .map_err(|e| AppError::dom(&format!("listening to {kind}"), &e))?;
        Ok(Self {
            target: target.clone(),
            kind,
            closure,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let f = self.closure.as_ref().unchecked_ref();
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, f);
    }
}
