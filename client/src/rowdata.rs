//! Rows coming in from the app: JS values checked and read as JSON, and row keys.
//!
//! A row must survive the trip to IndexedDB, over the channel and to the server as JSON, so
//! only JSON data is accepted: `null`, booleans, finite numbers, strings, arrays and plain
//! objects. Anything else (a function, a symbol, a `BigInt`, `NaN`, a `Date`, a `Map`, a class
//! instance, a cycle) is refused with a message that names where it is, before anything
//! changes. Object properties that are `undefined` are left out, as `JSON.stringify` does.

use serde_json::{Map, Number, Value};
use wasm_bindgen::{JsCast, JsValue};

/// Deeper than this is taken for a cycle (and is more than a row may nest anywhere).
const MAX_DEPTH: usize = outbox_shared::model::MAX_ROW_DEPTH;

/// Reads `value` as JSON; `Err` names the offending part, starting from `path`.
///
/// Plain data goes through `JSON.stringify` (one call into JS, one text into wasm, parsed
/// there), which reads a row several times faster than asking JS for each field. Anything the
/// fast path is not sure of (it found something that is not plain JSON data, or the text does
/// not parse, or is nested too deep) is read field by field, which says what is wrong.
pub(crate) fn to_json(value: &JsValue, path: &str) -> Result<Value, String> {
    if let Some(mut fast) = js::json_text(value).and_then(|t| serde_json::from_str(&t).ok()) {
        if settle_numbers(&mut fast, 0) {
            return Ok(fast);
        }
    }
    read(value, path, 0)
}

/// Makes whole numbers beyond 2^53 floats, as [`number`] reads them; `false` if `value` is
/// nested deeper than [`MAX_DEPTH`].
fn settle_numbers(value: &mut Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::Number(n) if !n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.abs() >= 9_007_199_254_740_992.0) {
                if let Some(v) = number(f) {
                    *value = v;
                }
            }
            true
        }
        Value::Array(items) => items.iter_mut().all(|v| settle_numbers(v, depth + 1)),
        Value::Object(map) => map.values_mut().all(|v| settle_numbers(v, depth + 1)),
        _ => true,
    }
}

mod js {
    use wasm_bindgen::prelude::*;

    // `plainData` walks the value as the slow path would and says whether it is plain JSON
    // data all through (no function, symbol, BigInt, non-finite number, array hole or
    // `undefined` item, object that is not plain, or nesting past 64 levels); only then is it
    // handed to `JSON.stringify`, without a replacer (a replacer takes V8 off its fast path).
    #[wasm_bindgen(inline_js = "
        const plain = Object.prototype;
        function plainData(v, depth) {
          switch (typeof v) {
            case 'string': case 'boolean': return true;
            case 'number': return Number.isFinite(v);
            case 'object': {
              if (v === null) return true;
              if (depth > 64) return false;
              if (Array.isArray(v)) {
                for (let i = 0; i < v.length; i++) if (!plainData(v[i], depth + 1)) return false;
                return true;
              }
              const p = Object.getPrototypeOf(v);
              if (p !== plain && p !== null) return false;
              for (const k in v) {
                const x = v[k];
                if (x !== undefined && !plainData(x, depth + 1)) return false;
              }
              return true;
            }
            default: return false;
          }
        }
        export function jsonText(value) {
          try {
            return plainData(value, 0) ? JSON.stringify(value) : undefined;
          } catch (e) {
            return undefined;
          }
        }
    ")]
    extern "C" {
        /// `value` as JSON text, or `None` where it is not plain JSON data all through.
        #[wasm_bindgen(js_name = jsonText)]
        pub fn json_text(value: &JsValue) -> Option<String>;
    }
}

fn read(value: &JsValue, path: &str, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "{path} is nested more than {MAX_DEPTH} levels deep (is there a cycle?)"
        ));
    }
    if value.is_null() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(s) = value.as_string() {
        return Ok(Value::String(s));
    }
    if let Some(n) = value.as_f64() {
        return number(n).ok_or_else(|| format!("{path} is {n}, which JSON cannot hold"));
    }
    if value.is_undefined() {
        return Err(format!("{path} is undefined"));
    }
    if value.is_function() {
        return Err(format!("{path} is a function, which cannot be stored"));
    }
    if value.is_symbol() {
        return Err(format!("{path} is a symbol, which cannot be stored"));
    }
    if value.is_bigint() {
        return Err(format!(
            "{path} is a BigInt, which JSON cannot hold (store it as a string)"
        ));
    }
    if js_sys::Array::is_array(value) {
        let array: &js_sys::Array = value.unchecked_ref();
        let mut out = Vec::with_capacity(array.length() as usize);
        for (i, item) in array.iter().enumerate() {
            out.push(read(&item, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    let object: &js_sys::Object = value.unchecked_ref();
    if !is_plain(object) {
        let kind = constructor_name(object).unwrap_or_else(|| "object".to_owned());
        let hint = if kind == "Date" {
            " (store dates as ISO strings or numbers)"
        } else {
            ""
        };
        return Err(format!(
            "{path} is a {kind}; only plain objects, arrays, strings, numbers, booleans and null can be stored{hint}"
        ));
    }
    let mut out = Map::new();
    for entry in js_sys::Object::entries(object).iter() {
        let pair: js_sys::Array = entry.unchecked_into();
        let key = pair.get(0).as_string().unwrap_or_default();
        let item = pair.get(1);
        if item.is_undefined() {
            continue;
        }
        let child = read(&item, &format!("{path}.{key}"), depth + 1)?;
        out.insert(key, child);
    }
    Ok(Value::Object(out))
}

fn number(n: f64) -> Option<Value> {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        // Whole numbers stay whole (`1`, not `1.0`), as JS writes them.
        Some(Value::Number(Number::from(n as i64)))
    } else {
        Number::from_f64(n).map(Value::Number)
    }
}

/// Whether the object's prototype is `Object.prototype` or `null`.
fn is_plain(object: &js_sys::Object) -> bool {
    let proto = js_sys::Object::get_prototype_of(object);
    if proto.is_null() {
        return true;
    }
    let base = js_sys::Object::get_prototype_of(&js_sys::Object::new());
    js_sys::Object::is(&proto, &base)
}

fn constructor_name(object: &js_sys::Object) -> Option<String> {
    let ctor = js_sys::Reflect::get(object, &"constructor".into()).ok()?;
    js_sys::Reflect::get(&ctor, &"name".into())
        .ok()?
        .as_string()
}

/// A row key given by the app (`update(key, …)`): a string, or a finite number. The error
/// says what is wrong, for the caller to prefix with where.
pub(crate) fn key_from_js(key: &JsValue) -> Result<String, &'static str> {
    if let Some(s) = key.as_string() {
        return Ok(s);
    }
    match key.as_f64().and_then(number) {
        Some(n) => Ok(n.to_string()),
        None => Err("a key must be a string or a finite number"),
    }
}

/// The key of `row`, read from its field `field`. The error says what is wrong, for the caller
/// to prefix with where.
pub(crate) fn key_of(row: &Value, field: &str) -> Result<String, String> {
    match row.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!(
            "the row's {field:?} (the collection's key) must be a string or a number, not {other}"
        )),
        None => Err(format!(
            "the row has no {field:?}, which is the collection's key"
        )),
    }
}
