//! JSON at the HTTP edge: the same serde types as the binary format.

use serde::de::DeserializeOwned;
use stockline_domain::Event;

/// Why a JSON document is not the expected value, with the path of the offending
/// field (`payload.hold_requested.quantity`) when serde can tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JsonError {
    /// Dotted path of the field at fault; `.` when the document as a whole is.
    pub path: String,
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Parses one value, reporting the path of the field at fault.
pub fn from_json<T: DeserializeOwned>(text: &[u8]) -> Result<T, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        JsonError {
            path,
            message: inner.to_string(),
            line: inner.line(),
            column: inner.column(),
        }
    })?;
    deserializer.end().map_err(|e| JsonError {
        path: ".".to_owned(),
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    Ok(value)
}

/// Parses one event from JSON.
pub fn event_from_json(text: &[u8]) -> Result<Event, JsonError> {
    from_json(text)
}

/// One event as compact JSON.
pub fn event_to_json(event: &Event) -> String {
    // Serializing plain data (string keys only) to a String cannot fail.
    serde_json::to_string(event).unwrap_or_else(|e| unreachable!("events serialize: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_offending_field() {
        let text = br#"{"event_id":"00000000-0000-0000-0000-000000000001","schema_version":1,
            "occurred_at":"2026-11-23T10:00:00Z","channel":"web","location":"s1","sku":"A",
            "document":null,"reason":null,"payload":{"till_sale":{"quantity":"two"}}}"#;
        let err = event_from_json(text).expect_err("a string quantity is refused");
        assert_eq!(err.path, "payload.till_sale.quantity");

        let text = br#"{"event_id":"00000000-0000-0000-0000-000000000001","schema_version":1,
            "occurred_at":"2026-11-23T10:00:00Z","channel":"web","location":"s 1","sku":"A",
            "document":null,"reason":null,"payload":{"tick":{}}}"#;
        let err = event_from_json(text).expect_err("an id with a space is refused");
        assert_eq!(err.path, "location");
        assert!(err.message.contains("printable ASCII"), "{}", err.message);

        let err = event_from_json(b"{\"surprise\":1}").expect_err("unknown fields are refused");
        assert_eq!(err.path, "surprise");
        assert!(err.message.contains("unknown field"), "{}", err.message);
    }
}
