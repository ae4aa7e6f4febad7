//! Requests to the leader (`peekOutbox`, `removeFromOutbox`, `retryDeadLetter`, `queueStats`):
//! a `request` message out, a Promise settled by the matching `response`, or rejected with
//! `OUTBOX_LEADER_LOST` when no answer comes within `requestTimeoutMs` (the leader went, or none
//! serves the tab now: the request is not the app's mistake).

use crate::errors::invalid;
use crate::inner::Inner;
use crate::notify::Later;
use js_sys::{Function, Promise};
use outbox_runtime::convert::{js_error, to_js, ToJsError};
use outbox_runtime::timer::Timer;
use outbox_shared::model::TransactionId;
use outbox_shared::protocol::{Message, Request, Response};
use outbox_shared::ErrorCode;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// One request waiting for its answer.
struct Waiting {
    resolve: Function,
    reject: Function,
    /// For a removal: the transaction to forget once it is done.
    removes: Option<TransactionId>,
    /// Rejects the request when it fires; cleared when the answer comes.
    _timeout: Timer,
}

/// The requests waiting for answers.
#[derive(Default)]
pub(crate) struct Requests {
    next: u64,
    waiting: HashMap<u64, Waiting>,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests")
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

impl Requests {
    /// The answer to `req`: the settlement to run, and for a removal the transaction removed.
    pub fn answer(&mut self, req: u64, result: Response) -> Option<(Later, Option<TransactionId>)> {
        let w = self.waiting.remove(&req)?;
        let (ok, value) = match result {
            Response::Outbox { transactions } => (true, to_js(&transactions)),
            Response::Stats { stats } => (true, to_js(&stats)),
            Response::Done => (true, Ok(JsValue::UNDEFINED)),
            Response::SignedOut {
                pending,
                dead_letters,
                discarded,
            } => {
                let o = js_sys::Object::new();
                for (k, n) in [
                    ("pending", pending),
                    ("deadLetters", dead_letters),
                    ("discarded", discarded),
                ] {
                    let _ = js_sys::Reflect::set(&o, &k.into(), &JsValue::from(n));
                }
                (true, Ok(o.into()))
            }
            Response::Error { error } => (false, Ok(error.to_js_error().into())),
        };
        let removes = if ok { w.removes } else { None };
        let work: Later = Box::new(move || {
            let _ = match value {
                Ok(v) if ok => w.resolve.call1(&JsValue::NULL, &v),
                Ok(v) => w.reject.call1(&JsValue::NULL, &v),
                Err(e) => w.reject.call1(&JsValue::NULL, &JsValue::from(e)),
            };
        });
        Some((work, removes))
    }

    /// Rejects every waiting request (the client is closing).
    pub fn reject_all(&mut self, why: &str) -> Vec<Later> {
        self.waiting
            .drain()
            .map(|(_, w)| {
                let error = invalid(why);
                Box::new(move || {
                    let _ = w.reject.call1(&JsValue::NULL, &error);
                }) as Later
            })
            .collect()
    }

    fn timed_out(&mut self, req: u64, what: &str, ms: u32) -> Option<Later> {
        let w = self.waiting.remove(&req)?;
        let error: JsValue = js_error(
            ErrorCode::LeaderLost,
            &format!("{what}: no answer from the leader within {ms} ms (is a leader running?)"),
        )
        .into();
        Some(Box::new(move || {
            let _ = w.reject.call1(&JsValue::NULL, &error);
        }))
    }
}

impl Inner {
    /// Sends `op` to whoever serves the tab; the promise settles with the answer.
    pub fn request(this: &Rc<Self>, what: &'static str, op: Request) -> Promise {
        if this.closed.get() {
            return Promise::reject(&invalid("this OutboxClient was closed"));
        }
        let mut slots = None;
        let promise = Promise::new(&mut |resolve, reject| slots = Some((resolve, reject)));
        let Some((resolve, reject)) = slots else {
            return promise;
        };
        let removes = match &op {
            Request::Remove { id } => Some(id.clone()),
            _ => None,
        };
        let req = {
            let mut r = this.requests.borrow_mut();
            r.next += 1;
            r.next
        };
        let ms = this.options.request_timeout_ms;
        let weak = Rc::downgrade(this);
        let mut timeout = Timer::default();
        timeout.set(u64::from(ms), move || {
            let Some(inner) = weak.upgrade() else { return };
            let work = inner.requests.borrow_mut().timed_out(req, what, ms);
            inner.later(work);
            Inner::pump(&inner);
        });
        this.requests.borrow_mut().waiting.insert(
            req,
            Waiting {
                resolve,
                reject,
                removes,
                _timeout: timeout,
            },
        );
        Self::send(this, Message::Request { req, op });
        promise
    }
}
