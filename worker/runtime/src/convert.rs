//! The one conversion module of this crate: Rust data ↔ JS values, and errors in both directions.
//!
//! - Data objects cross through serde-wasm-bindgen with the `json_compatible()` serializer, so JS
//!   sees plain objects and arrays (never `Map`s) with the camelCase names the model's serde
//!   attributes give them, and numbers rather than `BigInt`s.
//! - Errors going out are real JS `Error` objects (`instanceof Error`, with a stack) whose `name`
//!   is `OutboxError` and whose `code` is the stable [`ErrorCode`] string, e.g. `OUTBOX_INVALID`.
//!   Apps match on `code`, never on `message`.
//! - Errors coming in from JS are read as `{name, message}` ([`JsErrorInfo`]).

use outbox_shared::protocol::ProtocolError;
use outbox_shared::{ErrorCode, TxError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use wasm_bindgen::{JsCast, JsValue};

/// The `name` of every error this crate hands to JS.
pub const ERROR_NAME: &str = "OutboxError";

/// A value that could not cross the boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A Rust value JS cannot represent (for example an integer above 2^53).
    #[error("cannot convert to a JS value: {0}")]
    ToJs(String),
    /// A JS value that is not of the expected shape.
    #[error("invalid value from JS: {0}")]
    FromJs(String),
}

impl ConvertError {
    /// The stable code reported for this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Invalid
    }
}

/// `value` as a plain JS value (objects, arrays, numbers, strings, `null`). A whole number
/// past 2^53 (a server's 64-bit id in a reply, say), which the direct conversion refuses, is
/// the nearest double, as `JSON.parse` reads it anywhere in JS: the value is not lost for one
/// number (callers would put `null` in its place).
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, ConvertError> {
    to_js_exact(value).or_else(|_| {
        let text = serde_json::to_string(value).map_err(|e| ConvertError::ToJs(e.to_string()))?;
        js_sys::JSON::parse(&text)
            .map_err(|e| ConvertError::ToJs(JsErrorInfo::from_js(&e).to_string()))
    })
}

/// `value` as a plain JS value, exactly: a whole number JS cannot hold (past 2^53) is an
/// error, for values the app hands in (a row must read back as it was given).
pub fn to_js_exact<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, ConvertError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| ConvertError::ToJs(e.to_string()))
}

/// Below this many values, [`to_js_array`] converts them one by one.
const ONE_BY_ONE: usize = 16;

/// Many values as one JS array of plain values, as [`to_js`] would make each. Many are
/// serialised to one JSON text that the engine's `JSON.parse` reads: one crossing instead of
/// one per value, key and string (converting a view's 10,000 rows one by one took ~5 µs a
/// row). A few go one by one: for a single row the JSON round trip cost more (insert → view
/// with a subscriber, 0.040 ms one by one, 0.048 through JSON).
pub fn to_js_array<'a, T, I>(values: I) -> Result<js_sys::Array, ConvertError>
where
    T: Serialize + ?Sized + 'a,
    I: IntoIterator<Item = &'a T>,
{
    let values: Vec<&T> = values.into_iter().collect();
    if values.len() < ONE_BY_ONE {
        return values.into_iter().map(to_js).collect();
    }
    let mut text = Vec::with_capacity(256);
    text.push(b'[');
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        serde_json::to_writer(&mut text, value).map_err(|e| ConvertError::ToJs(e.to_string()))?;
    }
    text.push(b']');
    // serde_json writes UTF-8 only.
    let text = String::from_utf8(text).map_err(|e| ConvertError::ToJs(e.to_string()))?;
    js_sys::JSON::parse(&text)
        .map_err(|e| ConvertError::ToJs(JsErrorInfo::from_js(&e).to_string()))?
        .dyn_into::<js_sys::Array>()
        .map_err(|_| ConvertError::ToJs("JSON.parse did not make an array".into()))
}

/// A JSON value (a row) as a plain JS value, as `JSON.parse` of its text would make it: whole
/// numbers beyond 2^53 become the nearest JS number, and a `__proto__` field is an own property.
///
/// Faster than [`to_js`] for rows: field names are kept as JS strings the first time they are
/// seen ([`field_name`]), so a row of a known shape decodes only its string values, not its
/// field names too (each string from wasm is a `TextDecoder` call, the larger part of turning
/// a small row into JS).
pub fn json_to_js(value: &serde_json::Value) -> JsValue {
    use serde_json::Value;
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Number(n) => JsValue::from_f64(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => JsValue::from_str(s),
        Value::Array(items) => items
            .iter()
            .map(json_to_js)
            .collect::<js_sys::Array>()
            .into(),
        Value::Object(fields) => {
            let object = js_sys::Object::new();
            for (name, field) in fields {
                let field = json_to_js(field);
                if name == "__proto__" {
                    own_property(&object, name, &field);
                } else {
                    js::set_field(&object, &field_name(name), &field);
                }
            }
            object.into()
        }
    }
}

/// Field names longer than this are not kept by [`field_name`].
const FIELD_NAME_MAX: usize = 64;
/// How many field names [`field_name`] keeps at most.
const FIELD_NAMES_KEPT: usize = 4096;

thread_local! {
    static FIELD_NAMES: std::cell::RefCell<std::collections::HashMap<Box<str>, JsValue>> =
        Default::default();
}

/// `name` as a JS string, made once per name (up to [`FIELD_NAMES_KEPT`] short names).
fn field_name(name: &str) -> JsValue {
    if name.len() > FIELD_NAME_MAX {
        return JsValue::from_str(name);
    }
    FIELD_NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(js) = names.get(name) {
            return js.clone();
        }
        let js = JsValue::from_str(name);
        if names.len() < FIELD_NAMES_KEPT {
            names.insert(name.into(), js.clone());
        }
        js
    })
}

/// Defines `name` as an own, enumerable, writable data property (as `JSON.parse` does; plain
/// assignment of `__proto__` would set the prototype instead).
fn own_property(object: &js_sys::Object, name: &str, value: &JsValue) {
    let descriptor = js_sys::Object::new();
    for (key, v) in [
        ("value", value.clone()),
        ("enumerable", JsValue::TRUE),
        ("writable", JsValue::TRUE),
        ("configurable", JsValue::TRUE),
    ] {
        js::set_field(&descriptor, &JsValue::from_str(key), &v);
    }
    js_sys::Object::define_property(object, &JsValue::from_str(name), &descriptor);
}

mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        /// A plain object this module made.
        #[wasm_bindgen(extends = js_sys::Object)]
        pub type Plain;

        /// `object[name] = value` (on a plain object, cannot throw).
        #[wasm_bindgen(method, indexing_setter)]
        pub fn set(this: &Plain, name: &JsValue, value: &JsValue);
    }

    pub fn set_field(object: &js_sys::Object, name: &JsValue, value: &JsValue) {
        use wasm_bindgen::JsCast;
        object.unchecked_ref::<Plain>().set(name, value);
    }
}

/// Reads a `T` from a JS value made by [`to_js`] or written by hand in JS.
pub fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, ConvertError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| ConvertError::FromJs(e.to_string()))
}

/// A JS `Error` named [`ERROR_NAME`] with a stable `code` property.
pub fn js_error(code: ErrorCode, message: &str) -> js_sys::Error {
    let error = js_sys::Error::new(message);
    error.set_name(ERROR_NAME);
    set(&error, "code", &JsValue::from_str(code.as_str()));
    error
}

/// Sets a property on an object this module just created. Setting a data property on a fresh,
/// extensible `Error` cannot fail, so a failure is ignored rather than reported.
fn set(target: &js_sys::Error, key: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(target, &JsValue::from_str(key), value);
}

/// Errors that cross into JS as real `Error` objects with a stable `code`.
pub trait ToJsError {
    /// This error as a JS `Error`.
    fn to_js_error(&self) -> js_sys::Error;
}

impl ToJsError for TxError {
    /// Carries `code`, and when present `status` (the HTTP status) and `causeId` (the id of the
    /// transaction whose failure caused this one).
    fn to_js_error(&self) -> js_sys::Error {
        let error = js_error(self.code, &self.message);
        if let Some(status) = self.status {
            set(&error, "status", &JsValue::from(status));
        }
        if let Some(cause) = &self.cause {
            set(&error, "causeId", &JsValue::from_str(cause.as_str()));
        }
        error
    }
}

impl ToJsError for ConvertError {
    fn to_js_error(&self) -> js_sys::Error {
        js_error(self.code(), &self.to_string())
    }
}

impl ToJsError for ProtocolError {
    fn to_js_error(&self) -> js_sys::Error {
        js_error(self.code(), &self.to_string())
    }
}

impl From<ConvertError> for JsValue {
    fn from(e: ConvertError) -> Self {
        e.to_js_error().into()
    }
}

/// An error that came in from JS, read as `{name, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsErrorInfo {
    /// The error's `name` (`TypeError`, `InvalidStateError`, …); `Error` when it has none.
    pub name: String,
    /// The error's `message`, or the thrown value itself when it is not an object.
    pub message: String,
}

impl JsErrorInfo {
    /// Reads whatever JS threw or rejected with. Never fails: a thrown string becomes the message,
    /// anything else is described as well as it can be.
    pub fn from_js(value: &JsValue) -> Self {
        if let Some(text) = value.as_string() {
            return Self {
                name: "Error".to_owned(),
                message: text,
            };
        }
        let field = |key: &str| {
            if value.is_object() {
                js_sys::Reflect::get(value, &JsValue::from_str(key))
                    .ok()
                    .and_then(|v| v.as_string())
            } else {
                None
            }
        };
        let name = field("name").unwrap_or_else(|| "Error".to_owned());
        let message = field("message").unwrap_or_else(|| {
            value
                .dyn_ref::<js_sys::Object>()
                .map(|o| String::from(o.to_string()))
                .unwrap_or_else(|| format!("{value:?}"))
        });
        Self { name, message }
    }
}

impl fmt::Display for JsErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for JsErrorInfo {}
