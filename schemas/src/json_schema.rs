//! JSON Schemas generated from the source and release types.
//!
//! The files in `schemas/json/` are this module's output, committed so that
//! editors (via `# yaml-language-server: $schema=`) and other tools can use
//! them without building Fleet; a test fails when they drift from the types.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};

use crate::model::{FleetFile, StoreFile, TenantFile};
use crate::state::Release;
use crate::trust_root::TrustRoot;

/// Base URI under which the schemas are published, for `$id`.
pub const SCHEMA_BASE: &str = "https://fleet.example/schemas/v1";

/// Each schema's file name and pretty-printed JSON, in a stable order.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        (
            "fleet.schema.json",
            render::<FleetFile>("fleet.schema.json", "Fleet: fleet.yaml"),
        ),
        (
            "tenant.schema.json",
            render::<TenantFile>("tenant.schema.json", "Fleet: tenant base file"),
        ),
        (
            "store.schema.json",
            render::<StoreFile>("store.schema.json", "Fleet: store.yaml"),
        ),
        (
            "release.schema.json",
            render::<Release>("release.schema.json", "Fleet: release.yaml"),
        ),
        (
            "trust-root.schema.json",
            render::<TrustRoot>("trust-root.schema.json", "Fleet: trust/root/<n>.yaml"),
        ),
    ]
}

fn render<T: JsonSchema>(file: &str, title: &str) -> String {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema: Schema = generator.into_root_schema_for::<T>();
    schema.insert("$id".into(), format!("{SCHEMA_BASE}/{file}").into());
    schema.insert("title".into(), title.into());
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}
