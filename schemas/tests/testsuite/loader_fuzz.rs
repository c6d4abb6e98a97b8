//! The loader and validator survive any bytes a fleet repo can hold: random
//! bytes, YAML-ish noise, and the mini repo's sources (and every broken repo
//! of the corpus) with random edits. Nothing may panic, every finding must
//! be well-formed (a known rule, a path in the repo, a position inside the
//! file), and a source that does not decode on its own must always be
//! reported in that file.
//!
//! The repos live in memory ([`MemTree`], a [`SourceTree`]) so that hundreds
//! of cases stay fast; the corpus is also loaded from disk with
//! [`DirTree`] and both trees must give the same findings.

use crate::corpus;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use schemas::diag::{Diagnostic, RULES, Severity};
use schemas::load::{DirTree, Entry, EntryKind, MAX_FILE_BYTES, SourceTree};
use schemas::model::{FleetFile, StoreFile, TenantFile};
use schemas::render::render_store;
use schemas::validate::{check_repo, has_errors};
use schemas::yaml;

// ---------------------------------------------------------------- MemTree

/// One entry of an in-memory repo; directories are implied by paths.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    File(Vec<u8>),
    /// A symlink, submodule or special file: listed, never readable.
    Special(EntryKind),
    /// A directory with nothing in it (others are implied by their files).
    EmptyDir,
}

/// A fleet repo in memory, keyed by repo-relative `/` path.
#[derive(Debug, Clone, Default, PartialEq)]
struct MemTree {
    nodes: BTreeMap<String, Node>,
}

impl MemTree {
    /// Read a directory tree from disk without following links.
    fn read_dir(root: &Path) -> MemTree {
        fn walk(tree: &mut MemTree, root: &Path, rel: &str) {
            let dir = root.join(rel);
            for entry in std::fs::read_dir(&dir).expect("listing a test repo") {
                let entry = entry.expect("a directory entry");
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let ft = entry.file_type().expect("a file type");
                if ft.is_dir() {
                    if std::fs::read_dir(entry.path())
                        .expect("listing a test repo")
                        .next()
                        .is_none()
                    {
                        tree.nodes.insert(path.clone(), Node::EmptyDir);
                    }
                    walk(tree, root, &path);
                } else if ft.is_file() {
                    let bytes = std::fs::read(entry.path()).expect("reading a test repo");
                    tree.nodes.insert(path, Node::File(bytes));
                } else if ft.is_symlink() {
                    tree.nodes.insert(path, Node::Special(EntryKind::Symlink));
                } else {
                    tree.nodes.insert(path, Node::Special(EntryKind::Other));
                }
            }
        }
        let mut tree = MemTree::default();
        walk(&mut tree, root, "");
        tree
    }

    fn mini_repo() -> MemTree {
        MemTree::read_dir(&corpus::mini_repo())
    }

    fn bytes(&self, path: &str) -> Option<&[u8]> {
        match self.nodes.get(path) {
            Some(Node::File(b)) => Some(b),
            _ => None,
        }
    }

    fn set(&mut self, path: &str, bytes: Vec<u8>) {
        self.nodes.insert(path.to_owned(), Node::File(bytes));
    }

    /// Every YAML source file, in path order.
    fn sources(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(p, n)| p.ends_with(".yaml") && matches!(n, Node::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Whether `path` is an entry or a directory of this tree.
    fn has(&self, path: &str) -> bool {
        let dir = format!("{path}/");
        self.nodes.keys().any(|p| p == path || p.starts_with(&dir))
    }

    fn total_bytes(&self) -> usize {
        self.nodes
            .values()
            .map(|n| match n {
                Node::File(b) => b.len(),
                Node::Special(_) | Node::EmptyDir => 0,
            })
            .sum()
    }
}

impl SourceTree for MemTree {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        match self.nodes.get(dir) {
            Some(Node::EmptyDir) => return Ok(Vec::new()),
            Some(_) => return Err(io::Error::other(format!("{dir} is not a directory"))),
            None => {}
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut entries: BTreeMap<&str, Entry> = BTreeMap::new();
        for (path, node) in &self.nodes {
            let Some(rest) = path.strip_prefix(&prefix) else {
                continue;
            };
            let entry = match rest.split_once('/') {
                Some((name, _)) => Entry {
                    name: name.to_owned(),
                    kind: EntryKind::Dir,
                    size: 0,
                },
                None => match node {
                    Node::File(b) => Entry {
                        name: rest.to_owned(),
                        kind: EntryKind::File,
                        size: b.len() as u64,
                    },
                    Node::Special(kind) => Entry {
                        name: rest.to_owned(),
                        kind: *kind,
                        size: 0,
                    },
                    Node::EmptyDir => Entry {
                        name: rest.to_owned(),
                        kind: EntryKind::Dir,
                        size: 0,
                    },
                },
            };
            entries.insert(rest.split('/').next().unwrap_or(rest), entry);
        }
        if entries.is_empty() && !dir.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{dir} does not exist"),
            ));
        }
        Ok(entries.into_values().collect())
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        match self.nodes.get(path) {
            Some(Node::File(b)) => Ok(b.clone()),
            Some(Node::Special(_) | Node::EmptyDir) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path} does not exist"),
            )),
        }
    }
}

// ---------------------------------------------------------------- oracles

/// Whether `bytes` cannot be a valid source at `path` whatever the rest of
/// the repo says: it is not UTF-8, or does not decode as its kind of file.
fn fails_on_its_own(path: &str, bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return true;
    };
    if path == corpus::FLEET {
        yaml::decode::<FleetFile>(path, text).is_err()
    } else if path.ends_with("/store.yaml") && path.contains("/stores/") {
        yaml::decode::<StoreFile>(path, text).is_err()
    } else {
        yaml::decode::<TenantFile>(path, text).is_err()
    }
}

/// The most lines a position may name in `bytes` (YAML breaks lines at
/// `\n`, `\r\n` and a lone `\r`).
fn line_count(bytes: &[u8]) -> usize {
    let lf = bytes.iter().filter(|b| **b == b'\n').count();
    let lone_cr = bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .count();
    lf + lone_cr + 1
}

/// Every finding names a known rule, a path of the repo and a position
/// inside its file.
fn assert_well_formed(tree: &MemTree, diags: &[Diagnostic]) {
    for d in diags {
        assert!(
            RULES.iter().any(|(r, _)| *r == d.rule),
            "unknown rule in {d}"
        );
        assert!(!d.message.trim().is_empty(), "no message in {d}");
        assert!(
            !d.file.is_empty() && !d.file.starts_with('/') && !d.file.contains('\\'),
            "file is not a repo-relative path in {d}"
        );
        if d.rule == "file/missing" {
            // Names what is missing, in a directory that is there.
            let parent = d.file.rsplit_once('/').map_or("", |(p, _)| p);
            assert!(
                parent.is_empty() || tree.has(parent),
                "{d} names a missing file in a missing directory"
            );
        } else {
            assert!(tree.has(&d.file), "{d} names a file the repo does not have");
        }
        assert_eq!(d.line == 0, d.column == 0, "half a position in {d}");
        if let Some(bytes) = tree.bytes(&d.file) {
            assert!(
                d.line <= line_count(bytes),
                "{d} points past the end of the file"
            );
        }
    }
}

/// Load and validate `tree` and check everything that must hold of any
/// repo; returns the findings.
fn check(tree: &MemTree) -> Vec<Diagnostic> {
    let (repo, diags) = check_repo(tree);
    assert_well_formed(tree, &diags);
    for path in tree.sources() {
        let bytes = tree.bytes(&path).expect("sources are files");
        if fails_on_its_own(&path, bytes) {
            assert!(
                diags
                    .iter()
                    .any(|d| d.file == path && d.severity == Severity::Error),
                "{path} does not decode, yet no error names it; findings: {diags:#?}"
            );
        }
    }
    // The same sources give the same findings.
    assert_eq!(
        check_repo(tree).1,
        diags,
        "findings differ between two runs"
    );
    // Rendering assumes nothing about validity: it must not panic either.
    for t in repo.tenants.values() {
        for s in t.stores.values() {
            let _ = render_store(&t.base, &s.file);
        }
    }
    diags
}

// ---------------------------------------------------------------- inputs

/// The mini repo and every broken repo of the corpus that is small enough
/// to edit hundreds of times.
fn seeds() -> &'static [MemTree] {
    static SEEDS: OnceLock<Vec<MemTree>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = vec![MemTree::mini_repo()];
        for case in corpus::cases() {
            let dir = corpus::broken_repo(&case.mutation);
            let tree = MemTree::read_dir(dir.path());
            if tree.total_bytes() < 256 * 1024 {
                seeds.push(tree);
            }
        }
        seeds
    })
}

/// One random edit of a source's bytes; positions wrap around its length.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: Index, len: usize },
    Insert { at: Index, text: &'static str },
    Byte { at: Index, byte: u8 },
    DropLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
}

/// Text that means something to YAML or to the fleet format.
const TOKENS: &[&str] = &[
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "*nope",
    "\"",
    "'",
    "\n",
    "\r",
    "\t",
    "  ",
    "# ",
    "---\n",
    "...\n",
    "!!str ",
    "!!binary ",
    "!custom ",
    "<<: *a\n",
    "? ",
    "|\n",
    ">-\n",
    "%YAML 1.2\n",
    "-1",
    "1e999",
    "10.99",
    "0x1F",
    ".nan",
    "~",
    "null",
    "\u{feff}",
    "\0",
    "é",
    "99999999999999999999999",
    "\"7.25\"",
    "apiVersion: fleet/v2\n",
    "kind: Store\n",
    "pin: \"1234\"\n",
    "id: Bad_Id",
    "menu:\n  items: []\n",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<Index>(), prop::sample::select(TOKENS))
            .prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Byte { at, byte }),
        any::<Index>().prop_map(Edit::DropLine),
        any::<Index>().prop_map(Edit::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(bytes: &[u8], edit: &Edit) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    match edit {
        Edit::Delete { at, len } if !out.is_empty() => {
            let start = at.index(out.len());
            let end = (start + len).min(out.len());
            out.drain(start..end);
        }
        Edit::Insert { at, text } => {
            let pos = at.index(out.len() + 1);
            out.splice(pos..pos, text.bytes());
        }
        Edit::Byte { at, byte } if !out.is_empty() => {
            let pos = at.index(out.len());
            out[pos] = *byte;
        }
        Edit::DropLine(i) if !lines.is_empty() => {
            lines.remove(i.index(lines.len()));
            out = lines.concat();
        }
        Edit::DuplicateLine(i) if !lines.is_empty() => {
            let n = i.index(lines.len());
            let line = lines[n].clone();
            lines.insert(n, line);
            out = lines.concat();
        }
        Edit::SwapLines(a, b) if !lines.is_empty() => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
            out = lines.concat();
        }
        _ => {}
    }
    out
}

/// Printable noise heavy in YAML punctuation.
const YAML_NOISE: &str = "[a-z0-9:\\-\\[\\]{}&*!|>'\",#?%@. \n\t]{0,300}";

// ---------------------------------------------------------------- properties

/// 256 cases keeps a debug run within seconds; set `PROPTEST_CASES` for a
/// longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_in_place_of_a_source(file in any::<Index>(), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut tree = MemTree::mini_repo();
        let path = tree.sources()[file.index(corpus::SOURCES.len())].clone();
        tree.set(&path, bytes);
        let diags = check(&tree);
        // No random bytes hold `apiVersion: fleet/v1`, so none is a source.
        prop_assert!(has_errors(&diags));
        prop_assert!(diags.iter().any(|d| d.file == path), "{path} not named: {diags:#?}");
    }

    #[test]
    fn yaml_noise_in_place_of_a_source(file in any::<Index>(), text in YAML_NOISE) {
        let mut tree = MemTree::mini_repo();
        let path = tree.sources()[file.index(corpus::SOURCES.len())].clone();
        tree.set(&path, text.into_bytes());
        let diags = check(&tree);
        prop_assert!(diags.iter().any(|d| d.file == path && d.severity == Severity::Error), "{path} not named: {diags:#?}");
    }

    #[test]
    fn edited_sources(seed in any::<Index>(), file in any::<Index>(), edits in prop::collection::vec(edit(), 1..5)) {
        let seeds = seeds();
        let mut tree = seeds[seed.index(seeds.len())].clone();
        let sources = tree.sources();
        prop_assume!(!sources.is_empty());
        let path = sources[file.index(sources.len())].clone();
        let mut bytes = tree.bytes(&path).expect("a source").to_vec();
        for e in &edits {
            bytes = apply(&bytes, e);
        }
        tree.set(&path, bytes);
        check(&tree);
    }

    #[test]
    fn special_entry_in_place_of_a_source(file in any::<Index>(), symlink in any::<bool>()) {
        let mut tree = MemTree::mini_repo();
        let path = tree.sources()[file.index(corpus::SOURCES.len())].clone();
        let kind = if symlink { EntryKind::Symlink } else { EntryKind::Other };
        tree.nodes.insert(path.clone(), Node::Special(kind));
        let diags = check(&tree);
        prop_assert!(
            diags.iter().any(|d| d.file == path && d.rule == "file/not-regular"),
            "{path} not reported as not regular: {diags:#?}"
        );
    }
}

// ---------------------------------------------------------------- fixed cases

#[test]
fn mini_repo_is_valid_in_memory() {
    let diags = check(&MemTree::mini_repo());
    // Plain demo PIN hashes without escrow: warned, nothing else.
    assert!(diags.iter().all(|d| d.rule == "secret/plaintext" && d.severity == schemas::diag::Severity::Warning), "{diags:#?}");
}

#[test]
fn every_corpus_repo_is_reported_from_memory_and_disk_alike() {
    for case in corpus::cases() {
        let dir = corpus::broken_repo(&case.mutation);
        let tree = MemTree::read_dir(dir.path());
        let diags = check(&tree);
        assert!(
            has_errors(&diags),
            "{}: no error for a broken repo",
            case.name
        );
        let (_, from_disk) = check_repo(&DirTree::new(dir.path()));
        assert_eq!(
            from_disk, diags,
            "{}: the directory and the in-memory tree disagree",
            case.name
        );
    }
}

#[test]
fn every_corpus_text_alone_in_the_mini_repo() {
    // Each broken file of the corpus, put into an otherwise valid repo.
    for case in corpus::cases() {
        let dir = corpus::broken_repo(&case.mutation);
        let broken = MemTree::read_dir(dir.path());
        for path in broken.sources() {
            let mut tree = MemTree::mini_repo();
            if tree.bytes(&path) == broken.bytes(&path) {
                continue;
            }
            tree.set(&path, broken.bytes(&path).expect("a source").to_vec());
            check(&tree);
        }
    }
}

#[test]
fn file_over_the_limit_is_refused_by_listed_size() {
    let mut tree = MemTree::mini_repo();
    let mut big = tree.bytes(corpus::MENU).expect("the menu").to_vec();
    big.resize(MAX_FILE_BYTES as usize + 1, b'\n');
    tree.set(corpus::MENU, big);
    let diags = check(&tree);
    assert!(
        diags
            .iter()
            .any(|d| d.file == corpus::MENU && d.rule == "file/too-large" && d.line == 0),
        "{diags:#?}"
    );
}

#[test]
fn empty_repo_and_empty_files() {
    let diags = check(&MemTree::default());
    assert!(
        diags
            .iter()
            .any(|d| d.rule == "file/missing" && d.file == "fleet.yaml"),
        "{diags:#?}"
    );
    for path in corpus::SOURCES {
        let mut tree = MemTree::mini_repo();
        tree.set(path, Vec::new());
        let diags = check(&tree);
        assert!(
            diags
                .iter()
                .any(|d| d.file == *path && d.severity == Severity::Error),
            "{path}: {diags:#?}"
        );
    }
}
