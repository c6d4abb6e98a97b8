//! `bench validate-phases`: where `fleet validate`'s time goes, phase by
//! phase, through the same `schemas` calls the command makes.
//!
//! The phases nest: `load_repo` walks, reads and decodes; `validate_repo`
//! checks the decoded repo and renders every store on the way. Reading the
//! files alone and rendering alone are timed too, so that decoding
//! (load − read) and the semantic rules (validate − render) can be told
//! apart. It is an experiment to explain a measurement, not the measurement:
//! the budget is timed on the real binary by `bench suite` (the validate part).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use schemas::load::{DirTree, load_repo};
use schemas::render::render_store;
use schemas::validate::validate_repo;

/// Options of `bench validate-phases`.
#[derive(Debug, Clone)]
pub struct ValidatePhases {
    pub repo: PathBuf,
    /// Timed runs of each phase; the median is reported.
    pub runs: usize,
}

/// The median time of each phase.
#[derive(Debug, Clone)]
pub struct Phases {
    pub files: usize,
    pub bytes: u64,
    pub stores: usize,
    /// Walk the tree and read every `*.yaml`, no parsing.
    pub read: Duration,
    /// `load_repo`: walk, read, YAML decode into the model.
    pub load: Duration,
    /// `validate_repo` on the loaded repo (includes rendering every store).
    pub validate: Duration,
    /// `render_store` for every store, alone.
    pub render: Duration,
}

/// Time the phases of validation of the repo at `opts.repo`.
pub fn validate_phases(opts: &ValidatePhases) -> io::Result<Phases> {
    let runs = opts.runs.max(1);
    let tree = DirTree::new(&opts.repo);
    let (mut files, mut bytes) = (0, 0);
    let read = median(runs, || {
        (files, bytes) = (0, 0);
        read_all(&opts.repo, &mut files, &mut bytes)
    })?;
    let load = median(runs, || {
        std::hint::black_box(load_repo(&tree));
        Ok(())
    })?;
    let (repo, _) = load_repo(&tree);
    let validate = median(runs, || {
        std::hint::black_box(validate_repo(&repo));
        Ok(())
    })?;
    let render = median(runs, || {
        for t in repo.tenants.values() {
            for s in t.stores.values() {
                std::hint::black_box(render_store(&t.base, &s.file));
            }
        }
        Ok(())
    })?;
    Ok(Phases {
        files,
        bytes,
        stores: repo.store_ids().count(),
        read,
        load,
        validate,
        render,
    })
}

fn median(runs: usize, mut f: impl FnMut() -> io::Result<()>) -> io::Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn read_all(dir: &Path, files: &mut usize, bytes: &mut u64) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.path().symlink_metadata()?;
        if meta.is_dir() {
            read_all(&entry.path(), files, bytes)?;
        } else if meta.is_file() && entry.file_name().to_string_lossy().ends_with(".yaml") {
            *bytes += std::fs::read(entry.path())?.len() as u64;
            *files += 1;
        }
    }
    Ok(())
}

impl Phases {
    /// The phases as a Markdown table, with the derived decode and rules rows.
    pub fn to_markdown(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total = ms(self.load) + ms(self.validate);
        let row =
            |name: &str, v: f64| format!("| {name} | {v:.0} | {:.0} % |\n", 100.0 * v / total);
        let mut out = format!(
            "{} files, {:.1} MB, {} stores; medians in one process, page cache warm.\n\n",
            self.files,
            self.bytes as f64 / 1e6,
            self.stores
        );
        out.push_str("| phase | ms | share of load + validate |\n| --- | ---: | ---: |\n");
        out.push_str(&row("walk + read files (no parsing)", ms(self.read)));
        out.push_str(&row(
            "YAML decode into the model (load − read)",
            ms(self.load) - ms(self.read),
        ));
        out.push_str(&row("render every store", ms(self.render)));
        out.push_str(&row(
            "semantic rules (validate − render)",
            ms(self.validate) - ms(self.render),
        ));
        out.push_str(&row("**load_repo + validate_repo**", total));
        out
    }
}
