//! Every ERROR and WARN line the store's binaries can log has a row in
//! `docs/operations/troubleshooting.md` (issue #16): a technician who finds
//! the line in the journal finds its cause and fix. The log lines are read
//! from the sources of `fleet-reconciler` and `fleet-edge` (each
//! `warn!`/`error!` call's message, its last string literal), so a new
//! message without a row fails here.

use std::path::{Path, PathBuf};

/// The message of every `warn!`/`error!` call under `dir`, with where it is.
fn logged(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            logged(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for macro_name in ["warn!(", "error!("] {
            let mut from = 0;
            while let Some(at) = text[from..].find(macro_name) {
                let start = from + at;
                from = start + macro_name.len();
                // `tracing::warn!(` or `warn!(`, not `eprintln!(` and the like.
                let before = text[..start].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let call = &text[from..from + call_len(&text[from..])];
                if let Some(message) = last_string_literal(call) {
                    let line = text[..start].lines().count() + 1;
                    out.push((message, format!("{}:{line}", path.display())));
                }
            }
        }
    }
}

/// The length of a macro call's arguments: up to its closing parenthesis,
/// string literals skipped.
fn call_len(args: &str) -> usize {
    let mut depth = 1;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in args.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    args.len()
}

/// The last `"…"` literal of a call's arguments (its message).
fn last_string_literal(call: &str) -> Option<String> {
    let mut last = None;
    let mut chars = call.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        let mut escaped = false;
        for c in chars.by_ref() {
            match (escaped, c) {
                (true, c) => {
                    s.push(c);
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, '"') => break,
                (false, c) => s.push(c),
            }
        }
        last = Some(s);
    }
    last
}

#[test]
fn every_warn_and_error_line_of_the_store_binaries_has_a_row() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut lines = Vec::new();
    for dir in ["reconciler/src", "edge/src", "release/src", "wire/src"] {
        logged(&root.join(dir), &mut lines);
    }
    assert!(
        lines.len() >= 20,
        "the scan found only {} log lines: {lines:?}",
        lines.len()
    );
    let doc_path: PathBuf = root.join("docs/operations/troubleshooting.md");
    let doc = std::fs::read_to_string(&doc_path).expect("troubleshooting.md");
    let missing: Vec<String> = lines
        .iter()
        .filter(|(message, _)| {
            // The first sentence is what the row quotes.
            let first = message
                .split_inclusive(". ")
                .next()
                .unwrap_or(message)
                .trim_end();
            !doc.contains(first)
        })
        .map(|(message, at)| format!("{at}: {message:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "log lines without a row in {}:\n{}",
        doc_path.display(),
        missing.join("\n")
    );
}
