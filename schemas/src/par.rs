//! Spreading independent, pure work over the machine's cores, with results
//! in input order so that output stays the same bytes as a sequential run.
//!
//! Used where `fleet validate` of a large repo spends its time: decoding
//! thousands of independent store files and validating tenants; and by
//! `fleet sign` and `fleet rollout advance` for rendering and signing. No IO here;
//! callers hand in values and get values back.

use std::num::NonZeroUsize;
use std::thread;

/// The threads [`map_in_order`] spreads work over at most: the machine's
/// cores.
pub fn threads() -> usize {
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// `items.iter().map(f).collect()`, over up to as many threads as the
/// machine has cores, each with at least `min_per_thread` items (fewer is
/// not worth a thread). If a thread cannot be started its share runs on the
/// calling thread; a panic in `f` is passed on to the caller.
pub fn map_in_order<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = threads().min(items.len() / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    thread::scope(|scope| {
        let mut chunks = items.chunks(chunk);
        // The calling thread takes the first chunk itself.
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks
            .map(|c| {
                let spawned = thread::Builder::new()
                    .spawn_scoped(scope, move || c.iter().map(f).collect::<Vec<R>>());
                (c, spawned)
            })
            .collect();
        let mut out: Vec<R> = first.iter().map(f).collect();
        out.reserve(items.len() - out.len());
        for (c, spawned) in handles {
            match spawned {
                Ok(handle) => match handle.join() {
                    Ok(part) => out.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => out.extend(c.iter().map(f)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_input_order() {
        for n in [0, 1, 15, 16, 17, 100, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = map_in_order(&items, 16, |x| x * 2);
            assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
    }
}
