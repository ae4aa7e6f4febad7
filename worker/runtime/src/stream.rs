//! Server-Sent Events over `fetch` (headers included, in a worker as in a page), and plain JSON
//! GETs: what a change feed needs from the network. Parsing is [`outbox_shared::sse`]'s.

use crate::clock::now;
use crate::timer::{call_global, Interval};
use outbox_shared::sse::{SseEvent, SseParser};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server closed it.
    Closed,
    /// It was not opened: the server answered with this status.
    Status(u16),
    /// The network failed (no answer, a dropped connection), with the browser's words.
    Network(String),
}

/// An open stream; dropping it (or [`EventStream::close`]) aborts the request, and then nothing
/// more is delivered.
#[derive(Debug)]
pub struct EventStream {
    abort: web_sys::AbortController,
}

impl EventStream {
    /// Opens `GET url` with `headers` and `Accept: text/event-stream`. `on_open` runs once the
    /// server answered 200, `on_event` for each event in order, `on_end` once, at the end
    /// (never after a close). A stream that brings not a byte (no event, no comment) for
    /// `silence_ms` is taken for a dead connection and ends with [`StreamEnd::Network`]: a
    /// connection whose other end went away without a word (a laptop asleep, a network
    /// changed, a proxy that stalls) otherwise hangs until the operating system gives up on
    /// it, hours later, and nothing more comes meanwhile.
    pub fn open(
        url: &str,
        headers: &BTreeMap<String, String>,
        silence_ms: Option<u32>,
        on_open: impl FnOnce() + 'static,
        mut on_event: impl FnMut(SseEvent) + 'static,
        on_end: impl FnOnce(StreamEnd) + 'static,
    ) -> Result<Self, String> {
        let abort = web_sys::AbortController::new().map_err(|e| describe(&e))?;
        let signal = abort.signal();
        let mut headers = headers.clone();
        headers.insert("accept".into(), "text/event-stream".into());
        let request = get_request(url, &headers, &signal)?;
        // The watchdog: checks a few times per `silence_ms` when the last bytes came, and
        // aborts the request once they are that old (`silent` tells that abort from a close).
        let heard = Rc::new(Cell::new(now()));
        let silent = Rc::new(Cell::new(false));
        let watchdog = silence_ms.filter(|&ms| ms > 0).and_then(|ms| {
            let (heard, silent, abort) = (Rc::clone(&heard), Rc::clone(&silent), abort.clone());
            Interval::new((ms / 4).max(1), move || {
                let closed = abort.signal().aborted();
                if !silent.get() && !closed && now().saturating_sub(heard.get()) >= u64::from(ms) {
                    silent.set(true);
                    abort.abort();
                }
            })
        });
        spawn_local(async move {
            let _watchdog = watchdog;
            let end = async {
                let response = send(&request).await.map_err(StreamEnd::Network)?;
                if response.status() != 200 {
                    return Err(StreamEnd::Status(response.status()));
                }
                let body = response
                    .body()
                    .ok_or_else(|| StreamEnd::Network("the answer has no body".into()))?;
                let reader: web_sys::ReadableStreamDefaultReader = body
                    .get_reader()
                    .dyn_into()
                    .map_err(|e| StreamEnd::Network(describe(&e)))?;
                on_open();
                let mut parser = SseParser::new();
                loop {
                    let chunk = JsFuture::from(reader.read())
                        .await
                        .map_err(|e| StreamEnd::Network(describe(&e)))?;
                    heard.set(now());
                    let done = js_sys::Reflect::get(&chunk, &"done".into())
                        .ok()
                        .and_then(|d| d.as_bool())
                        .unwrap_or(true);
                    if done {
                        return Err(StreamEnd::Closed);
                    }
                    let bytes = js_sys::Reflect::get(&chunk, &"value".into())
                        .ok()
                        .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
                        .map(|a| a.to_vec())
                        .unwrap_or_default();
                    for event in parser.push(&bytes) {
                        if signal.aborted() {
                            return Ok(());
                        }
                        on_event(event);
                    }
                }
            }
            .await;
            if silent.get() {
                let ms = silence_ms.unwrap_or_default();
                on_end(StreamEnd::Network(format!(
                    "the stream brought nothing for {ms} ms (no event, no comment): taken for a dead connection"
                )));
            } else if let Err(end) = end {
                if !signal.aborted() {
                    on_end(end);
                }
            }
        });
        Ok(Self { abort })
    }

    /// Aborts the request; nothing more is delivered.
    pub fn close(&self) {
        self.abort.abort();
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// `GET url` with `headers`: the status and the body's text.
pub async fn get_text(
    url: &str,
    headers: &BTreeMap<String, String>,
    signal: &web_sys::AbortSignal,
) -> Result<(u16, String), String> {
    let request = get_request(url, headers, signal)?;
    let response = send(&request).await?;
    let text = JsFuture::from(response.text().map_err(|e| describe(&e))?)
        .await
        .map_err(|e| describe(&e))?
        .as_string()
        .unwrap_or_default();
    Ok((response.status(), text))
}

fn get_request(
    url: &str,
    headers: &BTreeMap<String, String>,
    signal: &web_sys::AbortSignal,
) -> Result<web_sys::Request, String> {
    let h = web_sys::Headers::new().map_err(|e| describe(&e))?;
    for (k, v) in headers {
        h.append(k, v).map_err(|e| describe(&e))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_headers(&h);
    init.set_signal(Some(signal));
    init.set_cache(web_sys::RequestCache::NoStore);
    web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| describe(&e))
}

async fn send(request: &web_sys::Request) -> Result<web_sys::Response, String> {
    let promise = call_global("fetch", &[request]).map_err(|e| describe(&e))?;
    JsFuture::from(js_sys::Promise::from(promise))
        .await
        .map_err(|e| describe(&e))?
        .dyn_into()
        .map_err(|e: JsValue| describe(&e))
}

fn describe(e: &JsValue) -> String {
    crate::convert::JsErrorInfo::from_js(e).to_string()
}
