//! The checked-in JSON Schemas in `schemas/` must be exactly what the Rust types
//! generate. Regenerate: `cargo run -p stockline -- schemas write` (or
//! `STOCKLINE_BLESS=1 cargo test -p stockline-wire --test schemas`).

use std::path::{Path, PathBuf};

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn files_on_disk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for sub in ["", "events"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".schema.json") {
                found.push(if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                });
            }
        }
    }
    found.sort();
    found
}

#[test]
fn checked_in_schemas_match_the_types() {
    let dir = schemas_dir();
    let generated = stockline_wire::schema::generate();
    if std::env::var_os("STOCKLINE_BLESS").is_some() {
        std::fs::create_dir_all(dir.join("events")).expect("create schemas/events");
        for (path, text) in &generated {
            std::fs::write(dir.join(path), text).expect("write schema");
        }
    }
    for (path, text) in &generated {
        let on_disk = std::fs::read_to_string(dir.join(path)).unwrap_or_default();
        assert!(
            on_disk == *text,
            "schemas/{path} is stale or missing: run `cargo run -p stockline -- schemas write`"
        );
    }
    let expected: Vec<String> = generated.keys().cloned().collect();
    assert_eq!(
        files_on_disk(&dir),
        expected,
        "schemas/ holds files no type generates (or misses some)"
    );
}

#[test]
fn every_kind_schema_narrows_the_payload_to_that_kind() {
    for (path, text) in stockline_wire::schema::generate() {
        let Some(kind) = path
            .strip_prefix("events/")
            .and_then(|p| p.strip_suffix(".schema.json"))
        else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
        let required = value
            .pointer("/properties/payload/required/0")
            .and_then(|v| v.as_str());
        assert_eq!(required, Some(kind), "{path} narrows payload to {kind}");
    }
}
