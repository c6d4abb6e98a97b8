//! The report outbox: a durable, bounded queue of reports in
//! `state_dir/outbox/`, one file per report, delivered in order.
//!
//! Reports survive restarts and WAN outages. When the bound is reached the
//! oldest report is dropped and counted, and the count is itself reported
//! with the next delivery, so a loss is never silent.

use std::path::{Path, PathBuf};

use release::applied::write_atomically;
use wire::report::Report;

/// Most reports kept while the status service is unreachable (a week of
/// passes every ten minutes).
pub const DEFAULT_BOUND: usize = 1000;

/// The outbox directory.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    bound: usize,
}

/// One queued report.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: u64,
    pub path: PathBuf,
}

impl Outbox {
    pub fn new(state_dir: &Path, bound: usize) -> Outbox {
        Outbox {
            dir: state_dir.join("outbox"),
            bound: bound.max(1),
        }
    }

    /// Queued reports, oldest first.
    pub fn pending(&self) -> std::io::Result<Vec<Queued>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for e in entries {
            let path = e?.path();
            let Some(seq) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            out.push(Queued { seq, path });
        }
        out.sort_by_key(|q| q.seq);
        Ok(out)
    }

    /// Queue a report; drops (and counts) the oldest beyond the bound.
    pub fn push(&self, report: &Report) -> std::io::Result<u64> {
        std::fs::create_dir_all(&self.dir)?;
        let pending = self.pending()?;
        let seq = pending.last().map(|q| q.seq + 1).unwrap_or(1);
        let bytes = serde_json::to_vec(report).expect("a report is plain data");
        write_atomically(&self.dir.join(format!("{seq:012}.json")), &bytes)?;
        let excess = (pending.len() + 1).saturating_sub(self.bound);
        for q in pending.iter().take(excess) {
            std::fs::remove_file(&q.path)?;
        }
        if excess > 0 {
            let dropped = self.dropped()? + excess as u64;
            write_atomically(&self.dir.join("dropped"), dropped.to_string().as_bytes())?;
        }
        Ok(seq)
    }

    /// Read a queued report.
    pub fn read(&self, q: &Queued) -> std::io::Result<Report> {
        let bytes = std::fs::read(&q.path)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Remove a report once delivered.
    pub fn remove(&self, q: &Queued) -> std::io::Result<()> {
        match std::fs::remove_file(&q.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Set a report aside in `outbox/rejected/` (the status service refused
    /// it for good): kept for a person to read, never sent again.
    pub fn reject(&self, q: &Queued) -> std::io::Result<()> {
        let dir = self.dir.join("rejected");
        std::fs::create_dir_all(&dir)?;
        let name = q.path.file_name().unwrap_or_default();
        std::fs::rename(&q.path, dir.join(name))
    }

    /// Reports set aside in `outbox/rejected/`.
    pub fn rejected(&self) -> usize {
        std::fs::read_dir(self.dir.join("rejected"))
            .map(|e| e.count())
            .unwrap_or(0)
    }

    /// Reports dropped because the bound was reached and not yet reported.
    pub fn dropped(&self) -> std::io::Result<u64> {
        match std::fs::read_to_string(self.dir.join("dropped")) {
            Ok(s) => Ok(s.trim().parse().unwrap_or(0)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Forget the dropped count once it was reported.
    pub fn clear_dropped(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join("dropped")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::report::Outcome;

    fn report(n: u64) -> Report {
        let mut r = crate::agent::blank_report(
            &"acme/soho".parse().expect("store id"),
            chrono::Utc::now(),
            Outcome::NoChange,
        );
        r.desired_revision = Some(n);
        r
    }

    #[test]
    fn queue_is_ordered_durable_and_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::new(dir.path(), 3);
        for n in 1..=5 {
            outbox.push(&report(n)).expect("push");
        }
        // A fresh handle (a restart) sees the same queue.
        let outbox = Outbox::new(dir.path(), 3);
        let pending = outbox.pending().expect("pending");
        let revs: Vec<u64> = pending
            .iter()
            .map(|q| outbox.read(q).expect("read").desired_revision.expect("rev"))
            .collect();
        assert_eq!(revs, [3, 4, 5]);
        assert_eq!(outbox.dropped().expect("dropped"), 2);
        outbox.remove(&pending[0]).expect("remove");
        assert_eq!(outbox.pending().expect("pending").len(), 2);
        outbox.clear_dropped().expect("clear");
        assert_eq!(outbox.dropped().expect("dropped"), 0);
    }
}
