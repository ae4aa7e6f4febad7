//! Web Locks (`navigator.locks`) as a future: wait until an exclusive lock is held, hold it
//! until the guard goes.
//!
//! [`request_lock`] asks for the lock at once and returns a [`LockRequest`] future that resolves
//! when the browser has *granted* it, to a [`LockGuard`]. The lock is held until the guard is
//! dropped or [`LockGuard::release`]d. There is no probing: a request for a held lock waits in
//! the browser's queue for as long as it takes, which is what lets a waiting worker take over the
//! moment the holder dies (DESIGN.md, "Leadership, done right").
//!
//! Dropping a [`LockRequest`] before it resolves withdraws it (through an `AbortSignal`), and
//! releases the lock should the browser have granted it in the meantime.
//!
//! How it maps onto the API: `navigator.locks.request(name, {signal}, callback)` calls `callback`
//! when the lock is granted and holds the lock until the promise `callback` returns settles. Our
//! callback signals "granted" and returns a promise that only [`LockGuard`] resolves. The
//! promise `request` itself returned settles after the release, or rejects if the request fails
//! (a reserved name, an abort, a steal).

use futures_channel::oneshot;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, LockManager, LockOptions, WorkerGlobalScope};

/// Why a lock could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// This context has no `navigator.locks` (an old browser, or not a secure context).
    #[error("Web Locks (navigator.locks) are not available in this context")]
    Unavailable,
    /// The browser refused or ended the request; `error_name` is the JS error's name
    /// (`NotSupportedError` for a reserved name, `AbortError` for an aborted or stolen lock).
    #[error("lock {lock:?}: {error_name}: {message}")]
    Request {
        /// The lock's name.
        lock: String,
        /// The JS error's `name`.
        error_name: String,
        /// The JS error's `message`.
        message: String,
    },
    /// A `LockRequest` was polled again after it had completed.
    #[error("the lock request was polled after it completed")]
    Finished,
}

impl LockError {
    fn from_js(lock: &str, error: &JsValue) -> Self {
        let field = |key: &str| {
            js_sys::Reflect::get(error, &JsValue::from_str(key))
                .ok()
                .and_then(|v| v.as_string())
        };
        Self::Request {
            lock: lock.to_owned(),
            error_name: field("name").unwrap_or_else(|| "Error".to_owned()),
            message: field("message")
                .or_else(|| error.as_string())
                .unwrap_or_default(),
        }
    }
}

/// Asks for the exclusive Web Lock `name` in this context (a page or any worker).
///
/// The request goes out at once; the returned future resolves when the lock is held.
pub fn request_lock(name: &str) -> LockRequest {
    start_request(name, false)
}

/// Takes the exclusive Web Lock `name` from whoever holds it (`steal: true`): for replacing a
/// holder that no longer answers. The previous holder's lock is released by the browser and its
/// [`LockGuard::lost`] resolves.
pub fn steal_lock(name: &str) -> LockRequest {
    start_request(name, true)
}

fn start_request(name: &str, steal: bool) -> LockRequest {
    let state = match Pending::start(name, steal) {
        Ok(pending) => State::Waiting(Box::new(pending)),
        Err(e) => State::Failed(e),
    };
    LockRequest { state }
}

/// A lock asked for and not yet held. Resolves to the [`LockGuard`] once the browser grants it.
/// Dropping it withdraws the request.
#[derive(Debug)]
#[must_use = "the request is withdrawn when this is dropped"]
pub struct LockRequest {
    state: State,
}

#[derive(Debug)]
enum State {
    Waiting(Box<Pending>),
    Failed(LockError),
    Done,
}

/// Everything a request in flight owns.
struct Pending {
    name: String,
    /// Fires when the browser calls the callback, i.e. the lock is held.
    granted: oneshot::Receiver<()>,
    /// The promise `locks.request` returned: settles after the release, rejects on failure.
    settled: JsFuture,
    /// Resolves the promise the callback returned; the browser releases the lock when it settles.
    release: js_sys::Function,
    abort: AbortController,
    /// Called by the browser when the lock is granted. Owned here and then by the guard.
    _callback: Closure<dyn FnMut(JsValue) -> js_sys::Promise>,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Pending {
    fn start(name: &str, steal: bool) -> Result<Self, LockError> {
        let locks = lock_manager()?;
        let fail = |e: JsValue| LockError::from_js(name, &e);

        // The executor runs synchronously inside `new Promise`, so `release` is set on return.
        let mut release = None;
        let held_until = js_sys::Promise::new(&mut |resolve, _reject| release = Some(resolve));
        let release = release.ok_or(LockError::Unavailable)?;

        let (granted_tx, granted) = oneshot::channel();
        let mut granted_tx = Some(granted_tx);
        let callback = Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(move |_lock| {
            if let Some(tx) = granted_tx.take() {
                // The request may have been dropped meanwhile; `release` has then already been
                // called, so the promise returned below lets the lock go at once.
                let _ = tx.send(());
            }
            held_until.clone()
        });

        let abort = AbortController::new().map_err(fail)?;
        let options = LockOptions::new();
        if steal {
            // The API refuses a signal together with `steal`: a steal is granted at once anyway.
            options.set_steal(true);
        } else {
            options.set_signal(&abort.signal());
        }
        // web-sys types the callback as a typed `js_sys::Function<…>`; the closure is one.
        let settled = locks.request_with_options(name, &options, callback.as_ref().unchecked_ref());
        Ok(Self {
            name: name.to_owned(),
            granted,
            settled: JsFuture::from(settled),
            release,
            abort,
            _callback: callback,
        })
    }
}

impl Future for LockRequest {
    type Output = Result<LockGuard, LockError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let pending = match &mut self.state {
            State::Waiting(pending) => pending,
            State::Failed(_) | State::Done => {
                return match std::mem::replace(&mut self.state, State::Done) {
                    State::Failed(e) => Poll::Ready(Err(e)),
                    _ => Poll::Ready(Err(LockError::Finished)),
                }
            }
        };
        let outcome = match Pin::new(&mut pending.granted).poll(cx) {
            Poll::Ready(Ok(())) => Ok(()),
            // The sender lives in the callback, which `pending` owns: it cannot be dropped first.
            Poll::Ready(Err(oneshot::Canceled)) => Err(LockError::Finished),
            Poll::Pending => match Pin::new(&mut pending.settled).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => Err(LockError::from_js(&pending.name, &e)),
                // Settling without the callback having run cannot happen; report it, not hang.
                Poll::Ready(Ok(_)) => Err(LockError::Request {
                    lock: pending.name.clone(),
                    error_name: "Error".to_owned(),
                    message: "the request settled without granting the lock".to_owned(),
                }),
            },
        };
        let State::Waiting(pending) = std::mem::replace(&mut self.state, State::Done) else {
            return Poll::Ready(Err(LockError::Finished));
        };
        Poll::Ready(outcome.map(|()| LockGuard {
            pending: Some(*pending),
        }))
    }
}

impl Drop for LockRequest {
    fn drop(&mut self) {
        if let State::Waiting(pending) = &self.state {
            // Withdraw the request if it still waits; if the browser granted it in the meantime,
            // let the lock go as soon as the callback runs.
            pending.abort.abort();
            let _ = pending.release.call0(&JsValue::UNDEFINED);
        }
    }
}

/// An exclusive Web Lock, held until this is dropped or [`released`](LockGuard::release).
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    pending: Option<Pending>,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        self.pending.as_ref().map_or("", |p| p.name.as_str())
    }

    /// Resolves if the lock is taken away while held (another context stole it). Never resolves
    /// while the lock is held normally.
    pub async fn lost(&mut self) {
        match self.pending.as_mut() {
            Some(pending) => {
                let _ = (&mut pending.settled).await;
                // Nothing is left to release: let the request's state go.
                self.pending = None;
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Releases the lock and waits until the browser has let it go (so a request made after
    /// this returns queues behind whoever was waiting, not behind us).
    pub async fn release(mut self) -> Result<(), LockError> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let _ = pending.release.call0(&JsValue::UNDEFINED);
        // `pending` (and with it the callback) lives until the browser has let the lock go.
        let result = pending.settled.await;
        result
            .map(|_| ())
            .map_err(|e| LockError::from_js(&pending.name, &e))
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(pending) = &self.pending {
            // Resolving the promise the lock callback returned is what releases the lock.
            // Calling a resolve function cannot throw.
            let _ = pending.release.call0(&JsValue::UNDEFINED);
        }
    }
}

/// `navigator.locks` of this context: a window, or any kind of worker.
fn lock_manager() -> Result<LockManager, LockError> {
    let global = js_sys::global();
    let locks = if let Some(worker) = global.dyn_ref::<WorkerGlobalScope>() {
        worker.navigator().locks()
    } else if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.navigator().locks()
    } else {
        return Err(LockError::Unavailable);
    };
    if locks.is_undefined() || locks.is_null() {
        return Err(LockError::Unavailable);
    }
    Ok(locks)
}
