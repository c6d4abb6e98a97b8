//! How every Fleet binary logs (DESIGN.md §9): one rule, installed by each
//! `main` with [`init`]. Libraries only emit `tracing` events and spans.
//!
//! - The filter is `RUST_LOG` (tracing's `EnvFilter` syntax: `info`,
//!   `warn,reconciler=debug`); `FLEET_LOG` is still read as an alias when
//!   `RUST_LOG` is unset, so older units and environment files keep working.
//!   Neither set, or unreadable: `info`, and a malformed filter is reported
//!   once on stderr instead of silently ignored.
//! - Plain text on stderr, with ANSI colours only when stderr is a terminal:
//!   journald and log files show escape codes as they are.
//! - Spans are printed with their fields on every event inside them, so the
//!   store and revision of a reconcile pass, or the method and route of a
//!   request, are written once on the span and appear on each line.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The filter variable.
pub const FILTER_VAR: &str = "RUST_LOG";
/// Its older name, read when [`FILTER_VAR`] is unset.
pub const ALIAS_VAR: &str = "FLEET_LOG";
/// The filter when neither is set.
pub const DEFAULT_FILTER: &str = "info";

/// The filter text in force, and where it came from (for the warning when
/// it does not parse).
pub fn filter_text(rust_log: Option<String>, fleet_log: Option<String>) -> (String, &'static str) {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    match (set(rust_log), set(fleet_log)) {
        (Some(f), _) => (f, FILTER_VAR),
        (None, Some(f)) => (f, ALIAS_VAR),
        (None, None) => (DEFAULT_FILTER.to_owned(), "the default"),
    }
}

/// Install the subscriber of a binary: stderr, the filter of [`filter_text`]
/// from the environment, ANSI only on a terminal. Call once, first thing.
pub fn init() {
    let (text, from) = filter_text(
        std::env::var(FILTER_VAR).ok(),
        std::env::var(ALIAS_VAR).ok(),
    );
    let filter = EnvFilter::try_new(&text).unwrap_or_else(|e| {
        eprintln!(
            "warning: {from}={text:?} is not a log filter ({e}); logging at {DEFAULT_FILTER}"
        );
        EnvFilter::new(DEFAULT_FILTER)
    });
    let stderr = std::io::stderr();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_then_the_alias_then_info() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            filter_text(s("debug"), s("warn")),
            ("debug".to_owned(), "RUST_LOG")
        );
        assert_eq!(
            filter_text(None, s("warn")),
            ("warn".to_owned(), "FLEET_LOG")
        );
        assert_eq!(
            filter_text(s(" "), s("warn")),
            ("warn".to_owned(), "FLEET_LOG")
        );
        assert_eq!(filter_text(None, None), ("info".to_owned(), "the default"));
    }
}
