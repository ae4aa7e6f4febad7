//! The page's events the outbox cares about:
//! - the page becomes visible, or the browser says it is `online`: retry triggers, sent to the
//!   leader as `visible` / `notify_online`;
//! - the page is hidden for good or frozen (`pagehide`, `freeze`): the tab's own dedicated
//!   worker resigns leadership so another tab's worker takes over at once; `pageshow` (back
//!   from the back-forward cache) and `resume` let it wait for the lock again.
//!
//! In a context without a window (a worker), there is nothing to listen to.

use crate::inner::Inner;
use crate::listen::Listener;
use outbox_shared::protocol::Message;
use std::rc::{Rc, Weak};
use wasm_bindgen::{JsCast, JsValue};

/// The page listeners of one client, removed when it goes.
#[derive(Debug)]
pub(crate) struct PageListeners {
    _listeners: Vec<Listener>,
}

impl PageListeners {
    /// Listens, if this is a window.
    pub fn attach(inner: &Rc<Inner>) -> Option<Self> {
        let window = js_sys::global().dyn_into::<web_sys::Window>().ok()?;
        let document = window.document();
        let weak = Rc::downgrade(inner);
        let on = |f: fn(&Rc<Inner>, &JsValue)| {
            let weak: Weak<Inner> = weak.clone();
            move |event: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    if !inner.closed.get() {
                        f(&inner, &event);
                    }
                }
            }
        };
        let mut listeners = vec![
            Listener::new(
                window.unchecked_ref(),
                "online",
                on(|i, _| {
                    Inner::send(i, Message::NotifyOnline);
                }),
            ),
            Listener::new(
                window.unchecked_ref(),
                "pagehide",
                on(|i, _| control(i, "resign")),
            ),
            Listener::new(
                window.unchecked_ref(),
                "pageshow",
                on(|i, e| {
                    let persisted = js_sys::Reflect::get(e, &"persisted".into())
                        .ok()
                        .and_then(|p| p.as_bool())
                        .unwrap_or(false);
                    if persisted {
                        control(i, "resume");
                    }
                }),
            ),
        ];
        if let Some(document) = document {
            let doc = document.clone();
            let weak = weak.clone();
            listeners.push(Listener::new(
                document.unchecked_ref(),
                "visibilitychange",
                move |_| {
                    let Some(inner) = weak.upgrade() else { return };
                    if !inner.closed.get()
                        && doc.visibility_state() == web_sys::VisibilityState::Visible
                    {
                        Inner::send(&inner, Message::Visible);
                    }
                },
            ));
            listeners.push(Listener::new(
                document.unchecked_ref(),
                "freeze",
                on(|i, _| control(i, "resign")),
            ));
            listeners.push(Listener::new(
                document.unchecked_ref(),
                "resume",
                on(|i, _| control(i, "resume")),
            ));
        }
        Some(Self {
            _listeners: listeners.into_iter().flatten().collect(),
        })
    }
}

fn control(inner: &Rc<Inner>, what: &str) {
    if let Some(worker) = inner.worker.borrow().as_ref() {
        worker.control(what);
    }
}
