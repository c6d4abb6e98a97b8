//! Group commit of [`Store::ingest_report`](super::Store::ingest_report),
//! shared by both backends: each caller queues its report and awaits its
//! own answer; writer tasks each take whatever has queued and commit it in
//! one transaction (ADR 24). What a batch's transaction runs is the
//! backend's ([`BatchWrite`]); this module knows no SQL.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Ingested, NewReport, StoreError, StoreFuture, StoreResult};

/// Most reports one transaction of a writer commits.
const MAX_BATCH: usize = 64;

/// Ingests waiting for a writer, at most (then callers wait to queue).
const QUEUE_LEN: usize = 4096;

/// One report waiting for a writer.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) nonce: String,
    pub(super) report: NewReport,
    answer: oneshot::Sender<StoreResult<Ingested>>,
}

/// Writes a batch of ingests in one transaction: all or, on an error,
/// none of them.
pub(super) trait BatchWrite: Clone + Send + Sync + 'static {
    fn write_batch<'a>(&'a self, batch: &'a [Queued]) -> StoreFuture<'a, Vec<Ingested>>;
}

/// Which reports of a batch may be written at all: `false` for one whose
/// key and nonce an earlier report of the same batch carries (a replay
/// racing its original). The database would keep one nonce row for both,
/// so a multi-row write could not tell which of the two it stored.
pub(super) fn first_uses(batch: &[Queued]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    batch
        .iter()
        .map(|q| seen.insert((q.report.key_id.as_str(), q.nonce.as_str())))
        .collect()
}

/// The summary row a batch leaves for one store.
#[derive(Debug, Clone)]
pub(super) struct Summary<'a> {
    /// The store's last stored report of the batch: every summary field
    /// but the applied revision comes from it.
    pub(super) last: &'a NewReport,
    /// The last applied revision any stored report of the batch named
    /// (none: keep the one the database has).
    pub(super) applied_revision: Option<u64>,
}

/// What the store summaries become after the `stored` reports of a batch,
/// one per store, in store order (the order writers lock summary rows in,
/// so two batches sharing stores wait for each other instead of
/// deadlocking). The same as applying the reports one by one: each report
/// overwrites the summary, except that a report without an applied
/// revision keeps the one before it.
pub(super) fn summaries<'a>(batch: &'a [Queued], stored: &[bool]) -> Vec<Summary<'a>> {
    let mut by_store: std::collections::BTreeMap<&str, Summary<'a>> = Default::default();
    for (q, _) in batch.iter().zip(stored).filter(|(_, s)| **s) {
        let r = &q.report;
        let applied = by_store
            .get(r.store.as_str())
            .and_then(|s| s.applied_revision);
        by_store.insert(
            &r.store,
            Summary {
                last: r,
                applied_revision: r.applied_revision.or(applied),
            },
        );
    }
    by_store.into_values().collect()
}

/// Group commit of [`Store::ingest_report`](super::Store::ingest_report):
/// each caller queues its report and awaits its own answer; `writers` tasks
/// each take whatever has queued (up to [`MAX_BATCH`]) and commit it in one transaction, so the cost of a
/// commit (SQLite's WAL append, PostgreSQL's WAL flush and round trips) is
/// shared by every report that arrived while the previous one ran. Nobody
/// waits for a batch to fill: an idle writer takes the first report alone.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Queued>,
}

impl GroupCommit {
    pub(super) fn start(pool: impl BatchWrite, writers: usize) -> GroupCommit {
        let (queue, rx) = mpsc::channel(QUEUE_LEN);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(run_writer(pool.clone(), rx.clone()));
        }
        GroupCommit { queue }
    }

    pub(super) async fn ingest(&self, nonce: &str, report: &NewReport) -> StoreResult<Ingested> {
        let (answer, answered) = oneshot::channel();
        let queued = Queued {
            nonce: nonce.to_owned(),
            report: report.clone(),
            answer,
        };
        self.queue
            .send(queued)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// One writer: take a batch, commit it, answer each caller; until every
/// sender is gone.
async fn run_writer(pool: impl BatchWrite, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>) {
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(q) => batch.push(q),
                    Err(_) => break,
                }
            }
            batch
        };
        match pool.write_batch(&batch).await {
            Ok(results) => {
                for (q, r) in batch.into_iter().zip(results) {
                    let _ = q.answer.send(Ok(r));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(q) = batch.into_iter().next() {
                    let _ = q.answer.send(Err(e));
                }
            }
            Err(_) => {
                // One failed and took the transaction with it: write each
                // alone, so that only the one at fault fails.
                for q in batch {
                    let r = pool
                        .write_batch(std::slice::from_ref(&q))
                        .await
                        .and_then(|v| v.into_iter().next().ok_or(StoreError::WriterStopped));
                    let _ = q.answer.send(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(store: &str, key: &str, nonce: &str, applied: Option<u64>) -> Queued {
        let (answer, _) = oneshot::channel();
        Queued {
            nonce: nonce.to_owned(),
            report: NewReport {
                store: store.to_owned(),
                key_id: key.to_owned(),
                received_at: 1,
                outcome: format!("{store}-{nonce}"),
                desired_revision: None,
                applied_revision: applied,
                commit: None,
                drift: 0,
                overridden: 0,
                reconciler_version: String::new(),
                root_version: None,
                release_api: None,
                body: String::new(),
            },
            answer,
        }
    }

    #[test]
    fn a_nonce_repeated_in_one_batch_is_written_once() {
        let batch = [
            queued("acme/a", "k1", "n1", None),
            queued("acme/a", "k1", "n1", None),
            queued("acme/b", "k2", "n1", None),
            queued("acme/a", "k1", "n2", None),
        ];
        assert_eq!(first_uses(&batch), [true, false, true, true]);
    }

    /// The second model: the summary after applying every stored report
    /// one at a time, as the one-statement-per-report writers did.
    fn one_by_one(batch: &[Queued], stored: &[bool]) -> Vec<(String, String, Option<u64>)> {
        let mut rows: std::collections::BTreeMap<String, (String, Option<u64>)> =
            Default::default();
        for (q, _) in batch.iter().zip(stored).filter(|(_, s)| **s) {
            let r = &q.report;
            let before = rows.get(&r.store).and_then(|(_, a)| *a);
            rows.insert(
                r.store.clone(),
                (r.outcome.clone(), r.applied_revision.or(before)),
            );
        }
        rows.into_iter().map(|(s, (o, a))| (s, o, a)).collect()
    }

    proptest::proptest! {
        #[test]
        fn batch_summaries_equal_applying_reports_one_by_one(
            reports in proptest::collection::vec((0..4u8, proptest::option::of(0..5u64), proptest::bool::ANY), 0..40)
        ) {
            let batch: Vec<Queued> = reports
                .iter()
                .enumerate()
                .map(|(i, (store, applied, _))| queued(&format!("acme/s{store}"), "k", &i.to_string(), *applied))
                .collect();
            let stored: Vec<bool> = reports.iter().map(|(_, _, s)| *s).collect();
            let got: Vec<(String, String, Option<u64>)> = summaries(&batch, &stored)
                .into_iter()
                .map(|s| (s.last.store.clone(), s.last.outcome.clone(), s.applied_revision))
                .collect();
            proptest::prop_assert_eq!(got, one_by_one(&batch, &stored));
        }
    }
}
