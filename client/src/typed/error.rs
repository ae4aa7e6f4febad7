//! [`OutboxError`]: what every typed call returns on failure.

use outbox_runtime::convert::{ConvertError, JsErrorInfo, ERROR_NAME};
use outbox_shared::model::ErrorCode;
use std::fmt;
use wasm_bindgen::JsValue;

/// An error from Outbox: the stable `OUTBOX_*` code to match on, and plain words.
///
/// Built from the JS `Error` objects the client throws and rejects with (they carry `code`,
/// `message`, and sometimes `status` and `causeId`). Bad arguments — a row without its key
/// field, an unknown key, a value that does not fit the collection's row type — are
/// `OUTBOX_INVALID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxError {
    /// The stable code, e.g. `OUTBOX_INVALID` or `OUTBOX_NON_RETRIABLE` (see [`ErrorCode`]).
    /// For an error that did not come from Outbox (none should), the JS error's `name`.
    pub code: String,
    /// Plain words for a log. Never parse it: match on `code`.
    pub message: String,
    /// The HTTP status, when the failure came from an HTTP answer.
    pub status: Option<u16>,
    /// For `OUTBOX_DEPENDENCY_FAILED`: the id of the transaction whose failure caused this one.
    pub cause_id: Option<String>,
}

impl OutboxError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
            status: None,
            cause_id: None,
        }
    }

    /// An error with a code of the app's own (say, to end a [`Batch::mutate`](super::Batch::mutate)
    /// with a reason the caller matches on).
    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status: None,
            cause_id: None,
        }
    }

    /// An `OUTBOX_INVALID` error: a bad argument.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }

    /// Reads whatever the client threw or rejected with. Never fails.
    pub fn from_js(value: &JsValue) -> Self {
        let info = JsErrorInfo::from_js(value);
        let field = |key: &str| {
            if value.is_object() {
                js_sys::Reflect::get(value, &JsValue::from_str(key)).ok()
            } else {
                None
            }
        };
        let code = field("code")
            .and_then(|c| c.as_string())
            .filter(|c| !c.is_empty())
            .unwrap_or(info.name);
        let status = field("status")
            .and_then(|s| s.as_f64())
            .filter(|s| s.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(s))
            .map(|s| s as u16);
        let cause_id = field("causeId").and_then(|c| c.as_string());
        Self {
            code,
            message: info.message,
            status,
            cause_id,
        }
    }

    /// The code as an [`ErrorCode`], when it is one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        serde_json::from_value(serde_json::Value::String(self.code.clone())).ok()
    }

    /// Whether the code is `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == code.as_str()
    }
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        Ok(())
    }
}

impl std::error::Error for OutboxError {}

impl From<ConvertError> for OutboxError {
    fn from(e: ConvertError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// The error as a JS `Error` named `OutboxError` with the same `code` (and `status`,
/// `causeId`), as the client itself throws.
impl From<OutboxError> for JsValue {
    fn from(e: OutboxError) -> Self {
        let error = js_sys::Error::new(&e.message);
        error.set_name(ERROR_NAME);
        let set = |key: &str, value: JsValue| {
            // Setting a data property on a fresh Error cannot fail.
            let _ = js_sys::Reflect::set(&error, &JsValue::from_str(key), &value);
        };
        set("code", JsValue::from_str(&e.code));
        if let Some(status) = e.status {
            set("status", JsValue::from(status));
        }
        if let Some(cause) = &e.cause_id {
            set("causeId", JsValue::from_str(cause));
        }
        error.into()
    }
}

/// `Err(js)` of a client call, as an [`OutboxError`].
pub(crate) fn js_err(e: JsValue) -> OutboxError {
    OutboxError::from_js(&e)
}
