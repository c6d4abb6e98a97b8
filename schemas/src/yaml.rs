//! Decoding YAML sources within fixed budgets, and finding where a node is.
//!
//! [`decode`] turns text into a typed value or one [`Diagnostic`] that names
//! the rule and position. [`PathIndex`] maps a path inside a document
//! (`menu.items[3].category`) to its line and column; validation reports by
//! path and the index is built only for files that have a finding.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_saphyr::budget::{Budget, BudgetBreach};
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{DuplicateKeyPolicy, Error, Options};

use crate::diag::{Diagnostic, Rule, rule_named};

/// Deepest YAML nesting a source may have (POS-MODEL.md rule 12).
pub const MAX_DEPTH: usize = 64;
/// Most events an alias may replay in one file: far above any real menu,
/// far below what makes a "billion laughs" file expensive.
pub const MAX_ALIAS_REPLAY: usize = 200_000;
/// Most YAML nodes in one file.
pub const MAX_NODES: usize = 2_000_000;

/// The options every source and release is decoded with.
pub fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_NODES * 2;
    budget.max_documents = 1;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_REPLAY;
    options.alias_limits.max_replay_stack_depth = MAX_DEPTH;
    options.with_snippet = false;
    options
}

/// Serialize `value` as Fleet's canonical YAML: block style, two-space
/// indent, every string on one line (no folding), so the same value always
/// gives the same bytes. Releases and `fleet render` use this.
pub fn to_canonical_yaml<T: serde::Serialize>(
    value: &T,
) -> Result<String, serde_saphyr::SerializeError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    options.indent_step = 2;
    serde_saphyr::to_string_with_options(value, options)
}

/// Decode one YAML document into `T`, or say what is wrong and where.
pub fn decode<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Box<Diagnostic>> {
    let blank = text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    });
    if blank {
        return Err(Box::new(
            Diagnostic::error(
                "schema/missing-field",
                file,
                "the file is empty: every source starts with `apiVersion: fleet/v1` and a `kind`",
            )
            .at(1, 1),
        ));
    }
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| Box::new(classify(file, &e)))
}

/// Turn a decoder error into a diagnostic with a rule id.
pub fn classify(file: &str, err: &Error) -> Diagnostic {
    let (line, column) = err
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    let (rule, message) = rule_of(err);
    Diagnostic::error(rule, file, message).at(line, column)
}

fn rule_of(err: &Error) -> (Rule, String) {
    let text = first_line(&err.to_string());
    let rule: Rule = match err {
        Error::WithSnippet { error, .. } | Error::AliasError { error, .. } => {
            return rule_of(error);
        }
        Error::Unexpected { expected, .. } => {
            return (
                "schema/type",
                format!("wrong shape of value: expected {expected}"),
            );
        }
        Error::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref().unwrap_or("?");
            return (
                "yaml/duplicate-key",
                format!("duplicate key `{key}`: each key may appear once in a mapping"),
            );
        }
        Error::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => {
                return (
                    "size/depth",
                    format!("YAML nesting is deeper than {MAX_DEPTH} levels"),
                );
            }
            BudgetBreach::Documents { .. } => {
                return (
                    "yaml/multiple-documents",
                    "a source file holds exactly one YAML document".to_owned(),
                );
            }
            BudgetBreach::Aliases { .. } | BudgetBreach::Anchors { .. } => "size/alias",
            _ => "size/too-many-nodes",
        },
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. } => {
            return (
                "size/alias",
                "anchors and aliases expand past the budget (an alias bomb?)".to_owned(),
            );
        }
        Error::MultipleDocuments { .. } => "yaml/multiple-documents",
        Error::SerdeUnknownField { .. } => "schema/unknown-field",
        Error::SerdeMissingField { .. } => "schema/missing-field",
        Error::SerdeInvalidType { .. }
        | Error::SerdeInvalidValue { .. }
        | Error::SerdeInvalidLength { .. }
        | Error::SerdeUnknownVariant { .. }
        | Error::NullIntoString { .. }
        | Error::InvalidScalar { .. }
        | Error::NonFiniteFloat { .. }
        | Error::UnexpectedValueForUnit { .. } => "schema/type",
        Error::IOError { .. } => "file/not-utf8",
        Error::Message { msg, .. } => {
            if let Some((rule, rest)) = tagged(msg) {
                return (rule, rest.to_owned());
            }
            "yaml/syntax"
        }
        _ => {
            if let Some((rule, rest)) = tagged(&text) {
                return (rule, rest.to_owned());
            }
            "yaml/syntax"
        }
    };
    (rule, strip_location(&text))
}

/// `[money/not-integer] message` → the rule and the message.
fn tagged(msg: &str) -> Option<(Rule, &str)> {
    let start = msg.find('[')?;
    let rest = &msg[start + 1..];
    let end = rest.find(']')?;
    let rule = rule_named(&rest[..end])?;
    let message = rest[end + 1..].trim_start();
    // The decoder may append its own position text; ours is in the fields.
    Some((rule, without_position(message)))
}

/// The decoder appends "at line L column C" (and, through aliases, "(defined
/// at line …)"); the diagnostic carries the position in its own fields.
fn without_position(s: &str) -> &str {
    let s = s.split(" at line ").next().unwrap_or(s);
    s.trim_end().trim_end_matches("(defined").trim_end()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}

fn strip_location(s: &str) -> String {
    without_position(s).to_owned()
}

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a YAML document, e.g. `menu.items[3].category`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    pub fn root() -> Self {
        YamlPath(Vec::new())
    }

    #[must_use]
    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.into()));
        p
    }

    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// This path followed by `rel` (a path relative to the node here).
    #[must_use]
    pub fn join(&self, rel: &YamlPath) -> Self {
        let mut p = self.clone();
        p.0.extend(rel.0.iter().cloned());
        p
    }

    /// The path as `fleet secret set` takes it (DESIGN.md §11): keys
    /// joined by dots, a list element named by `id_of(index)` (its `id`),
    /// or by its index when that gives nothing.
    pub fn dotted(&self, id_of: impl Fn(usize) -> Option<String>) -> String {
        self.0
            .iter()
            .map(|seg| match seg {
                Seg::Key(k) => k.clone(),
                Seg::Index(i) => id_of(*i).unwrap_or_else(|| i.to_string()),
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Build from dotted parts; a part that parses as a number is an index.
    pub fn of(parts: &[&str]) -> Self {
        YamlPath(
            parts
                .iter()
                .map(|p| match p.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key((*p).to_owned()),
                })
                .collect(),
        )
    }
}

impl std::fmt::Display for YamlPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where each node of a document starts (1-based line and column), and
/// where each mapping key is written.
#[derive(Debug, Default)]
pub struct PathIndex {
    nodes: HashMap<Vec<Seg>, (usize, usize)>,
    keys: HashMap<Vec<Seg>, (usize, usize)>,
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

impl PathIndex {
    /// Index a document. Parse errors end the walk quietly: what was indexed
    /// so far still locates findings before the error.
    pub fn build(text: &str) -> PathIndex {
        let mut index = PathIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut path: Vec<Seg> = Vec::new();
        let mut events = 0usize;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            events += 1;
            if events > MAX_NODES {
                break;
            }
            let pos = (span.start.line(), span.start.col() + 1);
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map { key }) = stack.last_mut()
                        && key.is_none()
                    {
                        let k = value.into_owned();
                        let mut p = path.clone();
                        p.push(Seg::Key(k.clone()));
                        index.keys.entry(p).or_insert(pos);
                        *key = Some(k);
                        continue;
                    }
                    index.enter_node(&mut stack, &mut path, pos);
                    index.leave_node(&mut stack, &mut path);
                }
                Event::Alias(_) => {
                    if let Some(Frame::Map { key }) = stack.last_mut()
                        && key.is_none()
                    {
                        *key = Some(String::from("*"));
                        continue;
                    }
                    index.enter_node(&mut stack, &mut path, pos);
                    index.leave_node(&mut stack, &mut path);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    if let Some(Frame::Map { key }) = stack.last_mut()
                        && key.is_none()
                    {
                        // A complex key: index nothing beneath it.
                        *key = Some(String::from("?"));
                    }
                    index.enter_node(&mut stack, &mut path, pos);
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map { key: None }
                    } else {
                        Frame::Seq { next: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    index.leave_node(&mut stack, &mut path);
                }
                _ => {}
            }
        }
        index
    }

    /// Push the path segment of a node that starts now and record it.
    fn enter_node(&mut self, stack: &mut [Frame], path: &mut Vec<Seg>, pos: (usize, usize)) {
        match stack.last_mut() {
            Some(Frame::Map { key: Some(k) }) => path.push(Seg::Key(k.clone())),
            Some(Frame::Seq { next }) => path.push(Seg::Index(*next)),
            _ => {}
        }
        self.nodes.entry(path.clone()).or_insert(pos);
    }

    /// Pop the node's segment and advance its parent.
    fn leave_node(&mut self, stack: &mut [Frame], path: &mut Vec<Seg>) {
        match stack.last_mut() {
            Some(Frame::Map { key }) => {
                *key = None;
                path.pop();
            }
            Some(Frame::Seq { next }) => {
                *next += 1;
                path.pop();
            }
            None => {}
        }
    }

    /// The position of the node at `path`, or of its nearest indexed ancestor.
    pub fn locate(&self, path: &YamlPath) -> (usize, usize) {
        let mut p = path.0.as_slice();
        loop {
            if let Some(pos) = self.nodes.get(p) {
                return *pos;
            }
            if p.is_empty() {
                return (1, 1);
            }
            p = &p[..p.len() - 1];
        }
    }

    /// The position of the key of the mapping entry at `path`, if the
    /// document has that entry.
    pub fn key_position(&self, path: &YamlPath) -> Option<(usize, usize)> {
        self.keys.get(path.0.as_slice()).copied()
    }

    /// The position of the node at `path`, if the document has it.
    pub fn node_position(&self, path: &YamlPath) -> Option<(usize, usize)> {
        self.nodes.get(path.0.as_slice()).copied()
    }

    /// The positions of every node and key at or below `path`.
    pub fn positions_under<'a>(
        &'a self,
        path: &'a YamlPath,
    ) -> impl Iterator<Item = (usize, usize)> + 'a {
        self.nodes
            .iter()
            .chain(self.keys.iter())
            .filter(move |(p, _)| p.starts_with(&path.0))
            .map(|(_, pos)| *pos)
    }

    /// The position of the key of the mapping entry at `path` (falls back to
    /// the node).
    pub fn locate_key(&self, path: &YamlPath) -> (usize, usize) {
        self.keys
            .get(path.0.as_slice())
            .copied()
            .unwrap_or_else(|| self.locate(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_finds_nested_nodes() {
        let text =
            "a: 1\nmenu:\n  items:\n    - id: x\n      category: c\n    - {id: y, category: d}\n";
        let idx = PathIndex::build(text);
        assert_eq!(idx.locate(&YamlPath::of(&["a"])), (1, 4));
        assert_eq!(
            idx.locate(&YamlPath::of(&["menu", "items", "0", "category"])),
            (5, 17)
        );
        assert_eq!(
            idx.locate(&YamlPath::of(&["menu", "items", "1", "category"])),
            (6, 25)
        );
        assert_eq!(
            idx.locate_key(&YamlPath::of(&["menu", "items", "1", "category"])),
            (6, 15)
        );
        // Unknown tails fall back to the nearest ancestor.
        assert_eq!(
            idx.locate(&YamlPath::of(&["menu", "items", "1", "nope"])),
            (6, 7)
        );
    }
}
