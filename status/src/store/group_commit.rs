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
