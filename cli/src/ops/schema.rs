//! `fleet schema --out DIR`: write the JSON Schemas of the source and
//! release formats.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Write every schema into `out` (created if missing); returns the paths.
pub fn write_schemas(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for (name, text) in schemas::json_schema::all() {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
