//! Operations behind the `fleet` commands. No clap here: a command builds
//! an options struct and calls one of these.

pub mod hash_pin;
pub mod keygen;
pub mod plan;
pub mod quickstart;
pub mod render;
pub mod rollout;
pub mod root;
pub mod scaffold;
pub mod schema;
pub mod secret;
pub mod sign;
pub mod status_api;
pub mod validate;
pub mod verify;

/// Process exit codes shared by the operator commands (DESIGN.md §7).
pub mod exit {
    /// Valid, done, nothing to report.
    pub const OK: i32 = 0;
    /// The repo is invalid, or (for `plan`/`verify`) there is something to act on.
    pub const FINDINGS: i32 = 1;
    /// Usage or IO error: the command could not do its job.
    pub const USAGE: i32 = 2;
}
