//! Group commit of [`Store::ingest_report`](super::Store::ingest_report),
//! shared by both backends: each caller queues its report and awaits its
//! own answer; one writer takes whatever has queued and commits it in one
//! transaction (ADR 24). What a batch's transaction runs is the backend's
//! ([`BatchWrite`]); this module knows no SQL. Before it writes, the
//! writer verifies the request signatures its callers left to it, what
//! arrived together as one Ed25519 batch (ADR 58).

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use super::{Ingested, NewReport, PendingSignature, StoreError, StoreFuture, StoreResult};

/// Most reports one transaction of a writer commits.
const MAX_BATCH: usize = 64;

/// Ingests waiting for a writer, at most (then callers wait to queue).
const QUEUE_LEN: usize = 4096;

/// One report waiting for a writer.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) nonce: String,
    pub(super) report: NewReport,
    /// The request's signature, when the caller left it to the writer.
    signature: Option<PendingSignature>,
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
/// each caller queues its report and awaits its own answer; one writer task
/// takes whatever has queued (up to [`MAX_BATCH`]) and commits it in one
/// transaction, so the cost of a commit (SQLite's WAL append, PostgreSQL's
/// WAL flush and round trip) is shared by every report that arrived while
/// the previous one ran. Nobody waits for a batch to fill: an idle writer
/// takes the first report alone.
///
/// While a batch is being written, the writer keeps receiving and verifies
/// the signatures of what arrives as it arrives (what has queued together,
/// as one batch), so that the next batch is verified when the write ends
/// and the verification is not on the path from one write to the next
/// (ADR 58). With `in_flight` above one (PostgreSQL), a second batch is
/// written before the first is committed once it holds
/// [`SECOND_WRITE_MIN`] reports, none of a store the first holds
/// ([`start_write`]): the database's round trip and WAL flush
/// then overlap instead of setting the rate, and batches stay large
/// enough that a report costs the database little (two writers that each
/// took what had queued made batches of a few reports, and cost 85 µs of
/// PostgreSQL CPU a report against 60; ADR 50, ADR 58).
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Queued>,
}

/// Smallest batch written while another write is in flight.
const SECOND_WRITE_MIN: usize = 8;

impl GroupCommit {
    /// A writer with up to `in_flight` batches written at once (at least
    /// one).
    pub(super) fn start(pool: impl BatchWrite, in_flight: usize) -> GroupCommit {
        let (queue, rx) = mpsc::channel(QUEUE_LEN);
        tokio::spawn(run_writer(pool, rx, in_flight.max(1)));
        GroupCommit { queue }
    }

    pub(super) async fn ingest(
        &self,
        nonce: &str,
        report: &NewReport,
        signature: Option<PendingSignature>,
    ) -> StoreResult<Ingested> {
        let (answer, answered) = oneshot::channel();
        let queued = Queued {
            nonce: nonce.to_owned(),
            report: report.clone(),
            signature,
            answer,
        };
        self.queue
            .send(queued)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// Whether the writer starts a write of `ready` now, with `writing`
/// batches in flight holding the stores counted in `busy`. An idle writer
/// writes whatever is ready, however little. Another write runs beside
/// only within `in_flight`, with at least [`SECOND_WRITE_MIN`] reports,
/// and with no report of a store a write in flight holds: two batches of
/// one store could commit in either order, and its summary must end with
/// its last report.
fn start_write(
    ready: &[Queued],
    writing: usize,
    busy: &HashMap<String, usize>,
    in_flight: usize,
) -> bool {
    !ready.is_empty()
        && (writing == 0
            || (writing < in_flight
                && ready.len() >= SECOND_WRITE_MIN
                && ready.iter().all(|q| !busy.contains_key(&q.report.store))))
}

/// The writer: take what has queued, verify its signatures, write it and
/// answer each caller (a task per write); meanwhile receive and verify the
/// next batch; until every sender is gone and nothing is left.
async fn run_writer(pool: impl BatchWrite, mut rx: mpsc::Receiver<Queued>, in_flight: usize) {
    // Verified, waiting for a write.
    let mut ready: Vec<Queued> = Vec::new();
    let mut writes = tokio::task::JoinSet::new();
    // The stores of each write in flight, and how many of those writes
    // hold each store.
    let mut stores_of: HashMap<tokio::task::Id, Vec<String>> = HashMap::new();
    let mut busy: HashMap<String, usize> = HashMap::new();
    let mut open = true;
    loop {
        take_queued(None, &mut rx, &mut ready, &mut open);
        while start_write(&ready, writes.len(), &busy, in_flight) {
            let batch = std::mem::take(&mut ready);
            let stores: Vec<String> = batch.iter().map(|q| q.report.store.clone()).collect();
            for store in &stores {
                *busy.entry(store.clone()).or_default() += 1;
            }
            let pool = pool.clone();
            let id = writes
                .spawn(async move {
                    let written = pool.write_batch(&batch).await;
                    answer(&pool, batch, written).await;
                })
                .id();
            stores_of.insert(id, stores);
            take_queued(None, &mut rx, &mut ready, &mut open);
        }
        if !open && ready.is_empty() && writes.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            Some(done) = writes.join_next_with_id(), if !writes.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                for store in stores_of.remove(&id).unwrap_or_default() {
                    if let Some(n) = busy.get_mut(&store) {
                        *n -= 1;
                        if *n == 0 {
                            busy.remove(&store);
                        }
                    }
                }
            }
            q = rx.recv(), if open && ready.len() < MAX_BATCH => match q {
                Some(q) => take_queued(Some(q), &mut rx, &mut ready, &mut open),
                None => open = false,
            },
            // Not reached: with no write in flight, whatever is ready was
            // just written, and with nothing ready either the loop ended
            // above or receiving is enabled.
            else => {}
        }
    }
}

/// `first` and whatever else has queued, while `ready` has room: their
/// signatures verified together; those that hold join `ready`, the others
/// are answered.
fn take_queued(
    first: Option<Queued>,
    rx: &mut mpsc::Receiver<Queued>,
    ready: &mut Vec<Queued>,
    open: &mut bool,
) {
    let mut arrived: Vec<Queued> = first.into_iter().collect();
    while *open && ready.len() + arrived.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(q) => arrived.push(q),
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => *open = false,
        }
    }
    ready.extend(drop_bad_signatures(arrived));
}

/// Answer each caller of a written batch. When the batch failed, one of
/// its reports took the transaction with it: write each alone, so that only
/// the one at fault fails.
async fn answer(pool: &impl BatchWrite, batch: Vec<Queued>, written: StoreResult<Vec<Ingested>>) {
    match written {
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

/// Which reports of a batch have a signature that holds (or none left to
/// verify): all of the batch's verified as one Ed25519 batch, several
/// times cheaper a signature than one by one; only when that fails, each
/// alone, to learn which.
fn signatures_hold(batch: &[Queued]) -> Vec<bool> {
    let pending: Vec<&PendingSignature> =
        batch.iter().filter_map(|q| q.signature.as_ref()).collect();
    if crate::node_auth::verify_batch(&pending) {
        return vec![true; batch.len()];
    }
    batch
        .iter()
        .map(|q| q.signature.as_ref().is_none_or(|s| s.verify().is_ok()))
        .collect()
}

/// The batch without the reports whose signature does not hold, each of
/// those answered [`Ingested::BadSignature`].
fn drop_bad_signatures(batch: Vec<Queued>) -> Vec<Queued> {
    let holds = signatures_hold(&batch);
    let mut kept = Vec::with_capacity(batch.len());
    for (q, ok) in batch.into_iter().zip(holds) {
        if ok {
            kept.push(q);
        } else {
            let _ = q.answer.send(Ok(Ingested::BadSignature));
        }
    }
    kept
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
            signature: None,
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

    /// A report whose request signature is left to the writer: signed by
    /// `key`, or (`forged`) signed by another key than the one it names.
    fn signed(i: usize, forged: bool) -> PendingSignature {
        use ed25519_dalek::SigningKey;
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time");
        let body = format!("{{\"n\":{i}}}");
        let nonce = format!("nonce-{i:04}");
        let signer = if forged { &other } else { &key };
        let h = crate::node_auth::sign_request(
            signer,
            "POST",
            "/api/v1/reports",
            body.as_bytes(),
            now,
            &nonce,
        );
        crate::node_auth::check_request(
            &key.verifying_key(),
            "POST",
            "/api/v1/reports",
            body.as_bytes(),
            &h,
            now,
        )
        .expect("every check but the signature passes")
    }

    proptest::proptest! {
        /// Whatever the mix, a writer keeps exactly the reports whose
        /// signature holds alone (or that have none left to verify), in
        /// order, and answers every other one `BadSignature`.
        #[test]
        fn a_writer_keeps_exactly_the_reports_whose_signature_holds(
            kinds in proptest::collection::vec(0..3u8, 0..20)
        ) {
            let mut answers = Vec::new();
            let batch: Vec<Queued> = kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| {
                    let (answer, answered) = oneshot::channel();
                    answers.push(answered);
                    let mut q = queued("acme/a", "k", &i.to_string(), None);
                    q.answer = answer;
                    q.signature = match kind {
                        0 => None,
                        1 => Some(signed(i, false)),
                        _ => Some(signed(i, true)),
                    };
                    q
                })
                .collect();
            let kept: Vec<String> = drop_bad_signatures(batch).into_iter().map(|q| q.nonce).collect();
            let want: Vec<String> = kinds
                .iter()
                .enumerate()
                .filter(|(_, k)| **k < 2)
                .map(|(i, _)| i.to_string())
                .collect();
            proptest::prop_assert_eq!(kept, want);
            for (kind, mut answered) in kinds.iter().zip(answers) {
                let got = answered.try_recv().ok().map(|r| r.map_err(|e| e.to_string()));
                if *kind == 2 {
                    proptest::prop_assert_eq!(got, Some(Ok(Ingested::BadSignature)));
                } else {
                    proptest::prop_assert_eq!(got, None, "a kept report is answered by its write");
                }
            }
        }
    }

    #[test]
    fn a_second_write_starts_only_with_room_enough_reports_and_other_stores() {
        let batch = |stores: &[&str]| -> Vec<Queued> {
            stores
                .iter()
                .enumerate()
                .map(|(i, s)| queued(s, "k", &i.to_string(), None))
                .collect()
        };
        let none = HashMap::new();
        let eight: Vec<String> = (0..8).map(|i| format!("acme/s{i}")).collect();
        let eight: Vec<&str> = eight.iter().map(String::as_str).collect();
        assert!(!start_write(&[], 0, &none, 2), "nothing to write");
        assert!(
            start_write(&batch(&["acme/a"]), 0, &none, 2),
            "an idle writer writes one"
        );
        assert!(
            !start_write(&batch(&eight[..7]), 1, &none, 2),
            "too few beside a write"
        );
        assert!(start_write(&batch(&eight), 1, &none, 2));
        assert!(
            !start_write(&batch(&eight), 1, &none, 1),
            "SQLite: one at a time"
        );
        assert!(!start_write(&batch(&eight), 2, &none, 2), "no room");
        let busy = HashMap::from([("acme/s3".to_owned(), 1)]);
        assert!(
            !start_write(&batch(&eight), 1, &busy, 2),
            "a store being written waits"
        );
        assert!(
            start_write(&batch(&eight), 0, &busy, 2),
            "…unless nothing is in flight"
        );
    }
}
