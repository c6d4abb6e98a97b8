//! The committed JSON Schemas must be exactly what the types generate
//! (cargo's `dump_manifest_schema` pattern). Regenerate with
//! `FLEET_UPDATE_SCHEMAS=1 cargo test --workspace --test testsuite json_schema_drift`.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("schemas/ has a parent")
        .to_path_buf()
}

fn check_dir(dir: &Path) {
    let update = std::env::var_os("FLEET_UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (name, text) in schemas::json_schema::all() {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(dir).expect("create schema dir");
            std::fs::write(&path, &text).expect("write schema");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == text => {}
            _ => stale.push(path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "JSON Schemas drifted from the types: {stale:?}\n\
         regenerate with FLEET_UPDATE_SCHEMAS=1 cargo test --workspace --test testsuite json_schema_drift"
    );
}

#[test]
fn committed_schemas_match_the_types() {
    check_dir(&workspace().join("schemas/json"));
}

#[test]
fn template_schemas_match_the_types() {
    check_dir(&workspace().join("fleet-repo-template/.fleet/schemas"));
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema() {
    for (name, text) in schemas::json_schema::all() {
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
        assert!(
            jsonschema::draft202012::meta::is_valid(&schema),
            "{name} is not a valid 2020-12 schema"
        );
    }
}

/// The template's files satisfy the committed schemas: the schemas that
/// editors use agree with what the loader accepts.
#[test]
fn template_files_satisfy_the_committed_schemas() {
    let root = workspace().join("fleet-repo-template");
    let schema_for = |rel: &str| -> &'static str {
        if rel == "fleet.yaml" {
            "fleet.schema.json"
        } else if rel.ends_with("/store.yaml") {
            "store.schema.json"
        } else {
            "tenant.schema.json"
        }
    };
    let mut files = Vec::new();
    collect_yaml(&root, &root, &mut files);
    assert!(
        files.len() >= 5,
        "template has too few YAML files: {files:?}"
    );
    for rel in files {
        if rel.ends_with("release.yaml") || rel.starts_with(".github/") {
            continue;
        }
        let schema_text =
            std::fs::read_to_string(workspace().join("schemas/json").join(schema_for(&rel)))
                .expect("committed schema");
        let schema: serde_json::Value = serde_json::from_str(&schema_text).expect("schema is JSON");
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let text = std::fs::read_to_string(root.join(&rel)).expect("template file");
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("template YAML");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{rel} does not satisfy its schema: {errors:?}"
        );
    }
}

fn collect_yaml(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read template dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_yaml(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let rel = path.strip_prefix(root).expect("under root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}
