//! The JSON Schemas of the event types, generated from the Rust types.
//!
//! `schemas/event.schema.json` describes the envelope with every payload kind;
//! `schemas/events/<kind>.schema.json` describes the envelope restricted to one kind,
//! which is what a channel integrator writing one kind of event reads. The files are
//! checked in; `tests/schemas.rs` fails when they differ from what the types
//! generate (regenerate with `cargo run -p stockline -- schemas write`).

use std::collections::BTreeMap;

use schemars::{Schema, generate::SchemaSettings};
use serde_json::{Value, json};
use stockline_domain::{Event, PayloadKind};

/// Relative path (under `schemas/`) and pretty JSON text of every schema file.
pub fn generate() -> BTreeMap<String, String> {
    let envelope = envelope_schema();
    let mut files = BTreeMap::new();
    files.insert("event.schema.json".to_owned(), pretty(&envelope));
    for kind in PayloadKind::ALL {
        let single = single_kind_schema(&envelope, kind);
        files.insert(
            format!("events/{}.schema.json", kind.name()),
            pretty(&single),
        );
    }
    files
}

fn envelope_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema: Schema = generator.into_root_schema_for::<Event>();
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "$id".to_owned(),
            json!("https://stockline.example/schemas/event.schema.json"),
        );
        object.insert(
            "description".to_owned(),
            json!(
                "One Stockline event: the envelope every channel writes, with one payload kind. \
                 Generated from the Rust types; do not edit by hand."
            ),
        );
    }
    value
}

/// The envelope schema with `payload` narrowed to one kind.
fn single_kind_schema(envelope: &Value, kind: PayloadKind) -> Value {
    let mut value = envelope.clone();
    let name = kind.name();
    let variant = payload_variant(&value, name);
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "$id".to_owned(),
            json!(format!(
                "https://stockline.example/schemas/events/{name}.schema.json"
            )),
        );
        object.insert("title".to_owned(), json!(format!("Event ({name})")));
        if let Some(payload) = object
            .get_mut("properties")
            .and_then(|p| p.as_object_mut())
            .and_then(|p| p.get_mut("payload"))
        {
            *payload = variant;
        }
    }
    value
}

/// The `oneOf` branch of the `Payload` definition whose single required property is
/// `name`. Generated schemas always contain it; the staleness test checks every kind.
fn payload_variant(envelope: &Value, name: &str) -> Value {
    let branches = envelope
        .pointer("/$defs/Payload/oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    branches
        .into_iter()
        .find(|branch| {
            branch
                .pointer("/required/0")
                .and_then(Value::as_str)
                .is_some_and(|required| required == name)
        })
        .unwrap_or_else(|| json!({"description": format!("no schema generated for {name}")}))
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| unreachable!("a JSON value serializes: {e}"));
    text.push('\n');
    text
}
