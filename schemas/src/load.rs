//! Reading a fleet repo (DESIGN.md §3) from a [`SourceTree`].
//!
//! The tree is a directory on disk ([`DirTree`]) for `fleet validate`, or a
//! Git tree for `fleet plan` and the reconciler. Only regular files count:
//! a symlink, submodule or other special entry is an error, and so is a file
//! over [`MAX_FILE_BYTES`] or one that is not UTF-8. Nothing here follows a
//! link or reads outside the tree.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::model::{Access, FleetFile, Kitchen, Menu, Settings, StoreFile, TenantFile, TenantInfo};
use crate::yaml;

/// Largest source file, in bytes (4 MiB).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What an entry of a tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A submodule, FIFO, socket or device: never a source.
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    /// Size in bytes for files.
    pub size: u64,
}

/// A read-only tree of files addressed by repo-relative `/` paths (`""` is
/// the root).
pub trait SourceTree {
    /// The entries directly under `dir`, or `NotFound`.
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>>;
    /// The bytes of a regular file.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// The same tree, if it can be read from several threads at once. The
    /// loader then reads and decodes store directories in parallel.
    fn as_sync(&self) -> Option<&(dyn SourceTree + Sync)> {
        None
    }
}

/// A fleet repo in memory: repo-relative path → file text, directories
/// implied by the paths. For tests and for tools that make sources without
/// writing files; the same loader and validator run over it as over a
/// checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree(pub BTreeMap<String, String>);

impl SourceTree for MemoryTree {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: BTreeMap<&str, Entry> = BTreeMap::new();
        for (path, text) in &self.0 {
            if let Some(rest) = path.strip_prefix(&prefix) {
                let (name, kind) = match rest.split_once('/') {
                    Some((d, _)) => (d, EntryKind::Dir),
                    None => (rest, EntryKind::File),
                };
                out.insert(
                    name,
                    Entry {
                        name: name.to_owned(),
                        kind,
                        size: text.len() as u64,
                    },
                );
            }
        }
        if out.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, dir.to_owned()));
        }
        Ok(out.into_values().collect())
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.0
            .get(path)
            .map(|t| t.clone().into_bytes())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn as_sync(&self) -> Option<&(dyn SourceTree + Sync)> {
        Some(self)
    }
}

/// A fleet repo checked out on disk.
#[derive(Debug, Clone)]
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirTree { root: root.into() }
    }

    fn full(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl SourceTree for DirTree {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.full(dir))? {
            let entry = entry?;
            // symlink_metadata: never follow a link.
            let meta = entry.path().symlink_metadata()?;
            let ft = meta.file_type();
            let kind = if ft.is_symlink() {
                EntryKind::Symlink
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push(Entry {
                name,
                kind,
                size: meta.len(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let full = self.full(path);
        // Refuse a file that became a link between listing and reading.
        if full.symlink_metadata()?.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a symbolic link",
            ));
        }
        std::fs::read(full)
    }

    fn as_sync(&self) -> Option<&(dyn SourceTree + Sync)> {
        Some(self)
    }
}

/// The tenant base: the union of the sections of the tenant's files.
#[derive(Debug, Clone, Default)]
pub struct TenantBase {
    pub info: Option<TenantInfo>,
    pub settings: Settings,
    pub menu: Menu,
    pub access: Access,
    pub kitchen: Kitchen,
    pub rollout: Option<crate::rollout::Rollout>,
    pub windows: Option<crate::rollout::Windows>,
    /// Section name → the file it came from.
    pub section_files: BTreeMap<&'static str, String>,
}

impl TenantBase {
    /// The file that holds `section`, for locating findings.
    pub fn file_of(&self, section: &str) -> Option<&str> {
        self.section_files.get(section).map(String::as_str)
    }
}

/// One store's sources.
#[derive(Debug, Clone)]
pub struct StoreSource {
    /// The store directory name.
    pub dir: String,
    /// Path of `store.yaml`.
    pub path: String,
    pub file: StoreFile,
    /// Whether `release.yaml` is present (read by `fleet sign`/`verify`).
    pub has_release: bool,
    /// Whether `tenant-key.age` (the tenant key wrapped to this store) is
    /// present.
    pub has_tenant_key_wrap: bool,
}

/// One tenant's sources.
#[derive(Debug, Clone, Default)]
pub struct TenantSources {
    /// The tenant directory name.
    pub dir: String,
    pub base: TenantBase,
    /// Keyed by store directory name.
    pub stores: BTreeMap<String, StoreSource>,
    /// A base file failed to decode: the base is incomplete, so semantic
    /// checks that need all of it are skipped rather than misreported.
    pub base_incomplete: bool,
    /// Every store directory, including those whose store.yaml failed to
    /// decode, so references to them are not misreported.
    pub store_dirs: std::collections::BTreeSet<String>,
    /// `secrets.lock`, when present and decoded.
    pub secrets_lock: Option<crate::secrets::SecretsLock>,
}

/// A decoded fleet repo. Files that failed to decode are absent here and
/// reported in the diagnostics that come with it.
#[derive(Debug, Clone, Default)]
pub struct FleetRepo {
    pub fleet: Option<FleetFile>,
    /// Keyed by tenant directory name.
    pub tenants: BTreeMap<String, TenantSources>,
    /// Every decoded source's text, by path, so findings can be located.
    pub texts: BTreeMap<String, String>,
}

impl FleetRepo {
    /// Every store as `(tenant dir, store dir)`.
    pub fn store_ids(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tenants
            .iter()
            .flat_map(|(t, ts)| ts.stores.keys().map(move |s| (t.as_str(), s.as_str())))
    }
}

/// Read and decode every source of a fleet repo. Decoding problems come back
/// as diagnostics; semantic rules are [`crate::validate`]'s.
pub fn load_repo(tree: &dyn SourceTree) -> (FleetRepo, Vec<Diagnostic>) {
    let mut loader = Loader {
        tree,
        repo: FleetRepo::default(),
        diags: Vec::new(),
    };
    loader.load();
    (loader.repo, loader.diags)
}

struct Loader<'a> {
    tree: &'a dyn SourceTree,
    repo: FleetRepo,
    diags: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn load(&mut self) {
        match self.read_text("fleet.yaml") {
            Ok(Some(text)) => {
                self.repo.fleet = self.decode::<FleetFile>("fleet.yaml", &text);
                self.repo.texts.insert("fleet.yaml".to_owned(), text);
            }
            Ok(None) => self.diags.push(Diagnostic::error(
                "file/missing",
                "fleet.yaml",
                "the repo root has no fleet.yaml (apiVersion: fleet/v1, kind: Fleet); is --repo the fleet repo?",
            )),
            Err(()) => {}
        }
        let Some(tenants) = self.list_dir("tenants") else {
            return;
        };
        for t in tenants {
            match t.kind {
                EntryKind::Dir => self.load_tenant(&t.name),
                EntryKind::File => {} // notes and READMEs beside tenants are fine
                _ => self.not_regular(&format!("tenants/{}", t.name), t.kind),
            }
        }
    }

    fn load_tenant(&mut self, dir: &str) {
        let base_dir = format!("tenants/{dir}");
        let Some(entries) = self.list_dir(&base_dir) else {
            return;
        };
        let mut tenant = TenantSources {
            dir: dir.to_owned(),
            ..TenantSources::default()
        };
        let mut saw_yaml = false;
        for e in entries {
            let path = format!("{base_dir}/{}", e.name);
            match e.kind {
                EntryKind::File if e.name.ends_with(".yaml") => {
                    saw_yaml = true;
                    let Ok(text) = self.read_sized(&path, e.size) else {
                        tenant.base_incomplete = true;
                        continue;
                    };
                    {
                        let decoded = self.decode::<TenantFile>(&path, &text);
                        self.repo.texts.insert(path.clone(), text);
                        match decoded {
                            Some(file) => self.merge_tenant_file(&mut tenant.base, &path, file),
                            None => tenant.base_incomplete = true,
                        }
                    }
                }
                EntryKind::File if e.name.ends_with(".yml") => self.ignored_yml(&path),
                EntryKind::File if e.name == crate::secrets::LOCK_FILE => {
                    if let Ok(text) = self.read_sized(&path, e.size) {
                        tenant.secrets_lock = self.decode(&path, &text);
                        self.repo.texts.insert(path.clone(), text);
                    }
                }
                EntryKind::File => {}
                EntryKind::Dir if e.name == "stores" => self.load_stores(&mut tenant, &path),
                EntryKind::Dir => {}
                kind => {
                    // A tenant file we cannot read leaves the base incomplete.
                    if e.name.ends_with(".yaml") {
                        saw_yaml = true;
                        tenant.base_incomplete = true;
                    }
                    self.not_regular(&path, kind);
                }
            }
        }
        if !saw_yaml {
            self.diags.push(Diagnostic::error(
                "file/missing",
                base_dir,
                "the tenant directory has no *.yaml base files (create one with `fleet new-tenant`)",
            ));
        }
        self.repo.tenants.insert(dir.to_owned(), tenant);
    }

    fn merge_tenant_file(&mut self, base: &mut TenantBase, path: &str, file: TenantFile) {
        let TenantFile {
            tenant,
            settings,
            menu,
            access,
            kitchen,
            rollout,
            windows,
            ..
        } = file;
        self.take_section(base, "tenant", path, tenant, |b, v| b.info = Some(v));
        self.take_section(base, "settings", path, settings, |b, v| b.settings = v);
        self.take_section(base, "menu", path, menu, |b, v| b.menu = v);
        self.take_section(base, "access", path, access, |b, v| b.access = v);
        self.take_section(base, "kitchen", path, kitchen, |b, v| b.kitchen = v);
        self.take_section(base, "rollout", path, rollout, |b, v| b.rollout = Some(v));
        self.take_section(base, "windows", path, windows, |b, v| b.windows = Some(v));
    }

    fn take_section<T>(
        &mut self,
        base: &mut TenantBase,
        name: &'static str,
        path: &str,
        value: Option<T>,
        set: impl FnOnce(&mut TenantBase, T),
    ) {
        let Some(value) = value else { return };
        if let Some(first) = base.section_files.get(name) {
            let text = self.repo.texts.get(path).map(String::as_str).unwrap_or("");
            let (line, col) =
                yaml::PathIndex::build(text).locate_key(&crate::yaml::YamlPath::of(&[name]));
            self.diags.push(
                Diagnostic::error(
                    "tenant/duplicate-section",
                    path,
                    format!("section `{name}` is already defined in {first}; a section lives in one file only"),
                )
                .at(line, col),
            );
            return;
        }
        base.section_files.insert(name, path.to_owned());
        set(base, value);
    }

    fn load_stores(&mut self, tenant: &mut TenantSources, stores_dir: &str) {
        let Some(entries) = self.list_dir(stores_dir) else {
            return;
        };
        // Each store directory is listed, read and decoded on its own, over
        // the machine's cores when the tree allows it (decoding is half of
        // `fleet validate`, the walk and the reads most of the rest), then
        // merged in directory order: the same findings in the same order as
        // one thread would give.
        let loaded: Vec<StoreLoad> = match self.tree.as_sync() {
            Some(tree) => {
                crate::par::map_in_order(&entries, 32, |e| StoreLoad::new(tree, stores_dir, e))
            }
            None => entries
                .iter()
                .map(|e| StoreLoad::new(self.tree, stores_dir, e))
                .collect(),
        };
        for l in loaded {
            self.diags.extend(l.diags);
            self.repo.texts.extend(l.texts);
            if let Some(dir) = l.dir {
                tenant.store_dirs.insert(dir);
            }
            if let Some(store) = l.store {
                tenant.stores.insert(store.dir.clone(), store);
            }
        }
    }

    /// A `.yml` file where Fleet reads `.yaml` ones: said, not silently
    /// skipped, since what it defines is then missing (a `kitchen.yml`
    /// shows up as "unknown station" errors elsewhere).
    fn ignored_yml(&mut self, path: &str) {
        let stem = Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        self.diags.push(
            Diagnostic::error(
                "file/ignored",
                path,
                format!(
                    "Fleet reads only .yaml files here, so this file is ignored; rename it to {stem}.yaml"
                ),
            )
            .warning(),
        );
    }

    /// One entry of a `stores` directory; `Some` when it is a store that
    /// decoded.
    fn load_store(&mut self, stores_dir: &str, e: &Entry) -> Option<StoreSource> {
        let dir_path = format!("{stores_dir}/{}", e.name);
        let files = self.list_dir(&dir_path)?;
        let mut store_yaml = None;
        let mut has_release = false;
        let mut has_tenant_key_wrap = false;
        let mut store_yaml_refused = false;
        for f in files {
            let path = format!("{dir_path}/{}", f.name);
            if f.kind != EntryKind::File {
                if f.kind != EntryKind::Dir {
                    store_yaml_refused |= f.name == "store.yaml";
                    self.not_regular(&path, f.kind);
                }
                continue;
            }
            match f.name.as_str() {
                "store.yaml" => store_yaml = Some((path, f.size)),
                "release.yaml" => has_release = true,
                crate::secrets::TENANT_KEY_WRAP => has_tenant_key_wrap = true,
                name if name.ends_with(".yml") => self.ignored_yml(&path),
                _ => {}
            }
        }
        let Some((path, size)) = store_yaml else {
            if !store_yaml_refused {
                self.diags.push(Diagnostic::error(
                    "file/missing",
                    dir_path,
                    "the store directory has no store.yaml (create one with `fleet new-store`)",
                ));
            }
            return None;
        };
        let text = self.read_sized(&path, size).ok()?;
        let decoded = self.decode::<StoreFile>(&path, &text);
        self.repo.texts.insert(path.clone(), text);
        Some(StoreSource {
            dir: e.name.clone(),
            path,
            file: decoded?,
            has_release,
            has_tenant_key_wrap,
        })
    }

    fn not_regular(&mut self, path: &str, kind: EntryKind) {
        let what = match kind {
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Other => "not a regular file (a submodule or special file)",
            EntryKind::Dir => "a directory",
            EntryKind::File => "a file",
        };
        self.diags.push(Diagnostic::error(
            "file/not-regular",
            path,
            format!("{path} is {what}; only regular files and directories may be in a fleet repo"),
        ));
    }

    fn list_dir(&mut self, dir: &str) -> Option<Vec<Entry>> {
        match self.tree.list(dir) {
            Ok(entries) => Some(entries),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    "file/unreadable",
                    dir,
                    format!("cannot list {dir}: {e}"),
                ));
                None
            }
        }
    }

    /// Read a file known to exist; `Ok(None)` if it does not.
    fn read_text(&mut self, path: &str) -> Result<Option<String>, ()> {
        let size = match self.tree.list(parent(path)) {
            Ok(entries) => match entries.into_iter().find(|e| e.name == file_name(path)) {
                Some(e) if e.kind == EntryKind::File => e.size,
                Some(e) => {
                    self.not_regular(path, e.kind);
                    return Err(());
                }
                None => return Ok(None),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    "file/unreadable",
                    path,
                    format!("cannot read {path}: {e}"),
                ));
                return Err(());
            }
        };
        self.read_sized(path, size).map(Some)
    }

    fn read_sized(&mut self, path: &str, size: u64) -> Result<String, ()> {
        if size > MAX_FILE_BYTES {
            self.diags.push(Diagnostic::error(
                "file/too-large",
                path,
                format!("{path} is {size} bytes; source files are at most {MAX_FILE_BYTES} bytes (4 MiB)"),
            ));
            return Err(());
        }
        let bytes = match self.tree.read(path) {
            Ok(b) => b,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    "file/unreadable",
                    path,
                    format!("cannot read {path}: {e}"),
                ));
                return Err(());
            }
        };
        if bytes.len() as u64 > MAX_FILE_BYTES {
            self.diags.push(Diagnostic::error(
                "file/too-large",
                path,
                format!("{path} is over {MAX_FILE_BYTES} bytes (4 MiB)"),
            ));
            return Err(());
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(text),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let valid = &e.as_bytes()[..at];
                let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
                let col = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
                self.diags.push(
                    Diagnostic::error(
                        "file/not-utf8",
                        path,
                        format!("{path} is not UTF-8 text (bad byte at offset {at})"),
                    )
                    .at(line, col),
                );
                Err(())
            }
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&mut self, path: &str, text: &str) -> Option<T> {
        match yaml::decode::<T>(path, text) {
            Ok(v) => Some(v),
            Err(d) => {
                self.diags.push(*d);
                None
            }
        }
    }
}

/// What loading one entry of a `stores` directory gave, kept apart so that
/// entries can be loaded on several threads and merged in order.
struct StoreLoad {
    /// The entry's name if it is a directory (a store, decoded or not).
    dir: Option<String>,
    store: Option<StoreSource>,
    diags: Vec<Diagnostic>,
    texts: BTreeMap<String, String>,
}

impl StoreLoad {
    fn new(tree: &dyn SourceTree, stores_dir: &str, e: &Entry) -> StoreLoad {
        let mut loader = Loader {
            tree,
            repo: FleetRepo::default(),
            diags: Vec::new(),
        };
        let (dir, store) = match e.kind {
            EntryKind::Dir => (Some(e.name.clone()), loader.load_store(stores_dir, e)),
            EntryKind::File => (None, None),
            kind => {
                loader.not_regular(&format!("{stores_dir}/{}", e.name), kind);
                (None, None)
            }
        };
        StoreLoad {
            dir,
            store,
            diags: loader.diags,
            texts: loader.repo.texts,
        }
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, f)| f).unwrap_or(path)
}
