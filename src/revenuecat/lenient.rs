//! Lenient field deserializers for payloads we do not control.
//!
//! A webhook we fail to parse is a webhook RevenueCat retries for hours and then drops, so the
//! fields we only *read* accept the shapes RevenueCat could plausibly send: numbers as integers,
//! floats or numeric strings, and `null` wherever a list is expected.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn value_to_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|float| float as i64)),
        Value::String(text) => text.trim().parse::<f64>().ok().map(|float| float as i64),
        _ => None,
    }
}

fn value_to_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// An optional integer (ms timestamps): integer, float, numeric string; anything else is `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(value_to_i64))
}

/// An integer that RevenueCat should always send but that must never make a delivery fail:
/// anything missing or unreadable becomes 0, which callers treat as implausible.
pub fn i64_or_zero<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(value_to_i64).unwrap_or(0))
}

/// An optional number (prices, percentages).
pub fn opt_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(value_to_f64))
}

/// A list of strings where the list may be `null` and non-string items are skipped.
pub fn string_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::String(text) => Some(text),
                _ => None,
            })
            .collect(),
        Some(Value::String(single)) => vec![single],
        _ => Vec::new(),
    })
}

/// Like [`string_vec`] but keeps the difference between "absent/null" and "empty".
pub fn opt_string_vec<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(text) => Some(text),
                    _ => None,
                })
                .collect(),
        ),
        Some(Value::String(single)) => Some(vec![single]),
        _ => None,
    })
}
