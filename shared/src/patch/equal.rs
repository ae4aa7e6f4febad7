//! Equality as RFC 6902 §4.6 defines it for the `test` operation.
//!
//! `serde_json::Value`'s `==` tells `1` from `1.0` (different `Number` representations); the RFC
//! says numbers are equal "if their values are numerically equal". Everything else (strings,
//! literals, arrays element by element, objects member by member regardless of order) is the same.

use serde_json::{Number, Value};

/// `a` and `b` are equal JSON values per RFC 6902 §4.6.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, xv)| y.get(k).is_some_and(|yv| json_equal(xv, yv)))
        }
        _ => a == b,
    }
}

/// Numeric equality across serde_json's integer and float representations, exact for integers
/// (no detour through `f64` that would equate 2^53 and 2^53 + 1).
fn numbers_equal(x: &Number, y: &Number) -> bool {
    match (integer(x), integer(y)) {
        (Some(i), Some(j)) => i == j,
        (Some(i), None) => float_equals_integer(y, i),
        (None, Some(j)) => float_equals_integer(x, j),
        (None, None) => x.as_f64() == y.as_f64(),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn float_equals_integer(float: &Number, int: i128) -> bool {
    // Every i64/u64 lies in (-2^64, 2^64), where `as i128` is exact for integral floats.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0; // 2^64
    float
        .as_f64()
        .is_some_and(|f| f.fract() == 0.0 && f.abs() < LIMIT && f as i128 == int)
}

#[cfg(test)]
mod tests {
    use super::json_equal;
    use serde_json::json;

    #[test]
    fn integer_and_float_with_the_same_value_are_equal() {
        assert!(json_equal(&json!(1), &json!(1.0)));
        assert!(json_equal(
            &json!([-3, {"a": 0}]),
            &json!([-3.0, {"a": -0.0}])
        ));
        assert!(json_equal(&json!(u64::MAX), &json!(u64::MAX)));
    }

    #[test]
    fn different_values_and_types_are_not_equal() {
        assert!(!json_equal(&json!(1), &json!(1.5)));
        assert!(!json_equal(&json!(10), &json!("10")));
        assert!(!json_equal(&json!(-1), &json!(u64::MAX)));
        assert!(!json_equal(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992.0)
        ));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_equal(&json!({"a": 1}), &json!({"b": 1})));
        assert!(!json_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_equal(&json!(null), &json!(false)));
    }

    #[test]
    fn member_order_does_not_matter() {
        assert!(json_equal(
            &json!({"foo": 1, "bar": [1, {"x": 2, "y": 3}]}),
            &json!({"bar": [1, {"y": 3, "x": 2}], "foo": 1})
        ));
    }
}
