//! Writing a value into a YAML source at a path, touching only its lines:
//! comments, order and every other line stay as the author wrote them, so
//! a pull request that encrypts a PIN changes one line.
//!
//! A value is written on one line, in flow style (`pin_hash: {age: "…",
//! to: ["soho", "@escrow"]}`). An entry that exists has its value replaced
//! (with any block lines beneath its key); one that does not is added at
//! the end of its parent mapping, which must then be a block mapping.

use anyhow::bail;
use schemas::model::Sealed;
use schemas::yaml::{PathIndex, Seg, YamlPath};

/// One value to write: where, and its one-line flow YAML.
#[derive(Debug, Clone)]
pub struct Edit {
    pub path: YamlPath,
    pub inline: String,
}

/// `{age: "…", to: ["soho", "@escrow"]}`.
pub fn inline_sealed(s: &Sealed) -> String {
    let to: Vec<String> = s.to.iter().map(|t| format!("{t:?}")).collect();
    format!("{{age: \"{}\", to: [{}]}}", s.age, to.join(", "))
}

/// `text` with every edit applied. Edits of entries that exist are applied
/// bottom-up from one index; at most one edit may add an entry.
pub fn apply(text: &str, edits: &[Edit]) -> anyhow::Result<String> {
    let idx = PathIndex::build(text);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut replace = Vec::new();
    let mut add = Vec::new();
    for e in edits {
        match idx.key_position(&e.path) {
            Some(pos) => replace.push((pos, e)),
            None => add.push(e),
        }
    }
    if add.len() > 1 {
        bail!("more than one new entry in one edit");
    }
    replace.sort_by_key(|r| std::cmp::Reverse(r.0));
    for ((line, col), e) in replace {
        replace_value(&mut lines, &idx, &e.path, line, col, &e.inline)?;
    }
    if let Some(e) = add.first() {
        add_entry(&mut lines, &idx, &e.path, &e.inline)?;
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// Leading spaces of a line.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Whether the parent mapping of `path` is written in flow style (`{…}`)
/// on the line where the entry's key is.
fn in_flow_mapping(lines: &[String], idx: &PathIndex, path: &YamlPath) -> bool {
    let parent = YamlPath(path.0[..path.0.len().saturating_sub(1)].to_vec());
    idx.node_position(&parent)
        .and_then(|(l, c)| lines.get(l - 1).map(|t| (t, c)))
        .is_some_and(|(t, c)| t.chars().nth(c - 1) == Some('{'))
}

fn replace_value(
    lines: &mut Vec<String>,
    idx: &PathIndex,
    path: &YamlPath,
    line: usize,
    col: usize,
    inline: &str,
) -> anyhow::Result<()> {
    if in_flow_mapping(lines, idx, path) {
        bail!(
            "`{path}` is inside a flow mapping ({{…}} on one line); write that mapping as a block, one entry per line"
        );
    }
    let i = line - 1;
    let text = &lines[i];
    let key_start: usize = text
        .char_indices()
        .nth(col - 1)
        .map_or(text.len(), |(b, _)| b);
    let Some(colon) = text[key_start..]
        .char_indices()
        .find(|&(j, c)| {
            c == ':'
                && text[key_start + j + 1..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(j, _)| key_start + j)
    else {
        bail!("line {line}: the key of `{path}` has no `:` after it");
    };
    let key_col = text[..key_start].chars().count();
    let new = format!("{} {inline}", &text[..=colon]);
    // The old value's block lines: more indented than the key, up to the
    // first blank or less indented line.
    let mut end = i + 1;
    while end < lines.len() {
        let l = &lines[end];
        if l.trim().is_empty() || indent(l) <= key_col {
            break;
        }
        end += 1;
    }
    lines.splice(i..end, [new]);
    Ok(())
}

fn add_entry(
    lines: &mut Vec<String>,
    idx: &PathIndex,
    path: &YamlPath,
    inline: &str,
) -> anyhow::Result<()> {
    let Some((Seg::Key(key), parent)) = path.0.split_last() else {
        bail!("`{path}` does not end in a key");
    };
    let parent = YamlPath(parent.to_vec());
    // A block mapping's node starts at its first key: its column is the
    // indentation of every entry.
    let Some((pline, pcol)) = idx.node_position(&parent) else {
        bail!("there is no `{parent}` to add `{key}` to; add it to the file first");
    };
    if lines[pline - 1].chars().nth(pcol - 1) == Some('{') {
        bail!("`{parent}` is a flow mapping ({{…}}); write it as a block, one entry per line");
    }
    if matches!(lines[pline - 1].chars().nth(pcol - 1), Some('[' | '-')) {
        bail!("`{parent}` is not a mapping");
    }
    let pad = pcol - 1;
    let last = idx
        .positions_under(&parent)
        .map(|(l, _)| l)
        .max()
        .unwrap_or(pline);
    // Past the last line of the parent's last entry (its block lines).
    let mut at = last;
    while at < lines.len() {
        let l = &lines[at];
        if l.trim().is_empty() || indent(l) <= pad {
            break;
        }
        at += 1;
    }
    let key_text = if key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        key.clone()
    } else {
        format!("{key:?}")
    };
    lines.insert(at, format!("{}{key_text}: {inline}", " ".repeat(pad)));
    Ok(())
}

/// The value at `path` of a YAML document, as JSON (for checking an edit).
pub fn value_at(text: &str, path: &YamlPath) -> anyhow::Result<Option<serde_json::Value>> {
    let doc: serde_json::Value = schemas::yaml::decode("edited file", text)
        .map_err(|d| anyhow::anyhow!("the edited file does not parse: {d}"))?;
    let mut v = &doc;
    for seg in &path.0 {
        let next = match seg {
            Seg::Key(k) => v.get(k),
            Seg::Index(i) => v.get(*i),
        };
        match next {
            Some(n) => v = n,
            None => return Ok(None),
        }
    }
    Ok(Some(v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> Sealed {
        Sealed {
            age: "YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==".into(),
            to: vec!["soho".into(), "@escrow".into()],
        }
    }

    fn set(text: &str, path: &[&str]) -> anyhow::Result<String> {
        let path = YamlPath::of(path);
        let out = apply(
            text,
            &[Edit {
                path: path.clone(),
                inline: inline_sealed(&sealed()),
            }],
        )?;
        assert_eq!(
            value_at(&out, &path).expect("parses"),
            Some(serde_json::to_value(sealed()).expect("json")),
            "{out}"
        );
        Ok(out)
    }

    const ACCESS: &str = "# staff\naccess:\n  users:\n    - id: sam   # manager\n      name: Sam\n      role: manager\n      pin_hash: \"$argon2id$v=19$x\"   # demo\n      stores: [\"*\"]\n    - id: ann\n      name: Ann\n      role: staff\n";

    #[test]
    fn a_value_is_replaced_on_its_own_line_and_nothing_else_moves() {
        let out = set(ACCESS, &["access", "users", "0", "pin_hash"]).expect("replaced");
        let (a, b): (Vec<&str>, Vec<&str>) = (ACCESS.lines().collect(), out.lines().collect());
        assert_eq!(a.len(), b.len());
        let changed: Vec<usize> = (0..a.len()).filter(|i| a[*i] != b[*i]).collect();
        assert_eq!(changed, [6], "{out}");
        assert!(b[6].starts_with("      pin_hash: {age: \""), "{}", b[6]);
        // Replacing the encrypted value again is again one line.
        let again = set(&out, &["access", "users", "0", "pin_hash"]).expect("again");
        assert_eq!(again.lines().count(), a.len());
    }

    #[test]
    fn a_block_value_is_replaced_whole_and_a_missing_key_is_added_to_its_entry() {
        let block = ACCESS.replace(
            "pin_hash: \"$argon2id$v=19$x\"   # demo\n",
            "pin_hash:\n        age: QQ==\n        to:\n          - soho\n",
        );
        let out = set(&block, &["access", "users", "0", "pin_hash"]).expect("replaced");
        assert_eq!(out.lines().count(), ACCESS.lines().count(), "{out}");
        let added = set(ACCESS, &["access", "users", "1", "pin_hash"]).expect("added");
        assert_eq!(added.lines().count(), ACCESS.lines().count() + 1);
        assert!(added.ends_with("      role: staff\n      pin_hash: {age: \"YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\", to: [\"soho\", \"@escrow\"]}\n"), "{added}");
        let settings = "settings:\n  tips.enabled: true\n\nmenu: {}\n";
        let out = set(settings, &["settings", "payment.terminal_key"]).expect("added");
        assert!(
            out.starts_with("settings:\n  tips.enabled: true\n  payment.terminal_key: {age:"),
            "{out}"
        );
    }

    #[test]
    fn flow_mappings_and_missing_parents_are_refused() {
        let flow = "access:\n  users:\n    - {id: sam, name: Sam, role: m, pin_hash: x}\n";
        let e = set(flow, &["access", "users", "0", "pin_hash"]).expect_err("flow");
        assert!(e.to_string().contains("flow mapping"), "{e}");
        let e = set("menu: {}\n", &["settings", "payment.terminal_key"]).expect_err("no parent");
        assert!(e.to_string().contains("there is no `settings`"), "{e}");
    }
}
