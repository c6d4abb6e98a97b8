//! Rebuild when a migration changes: `sqlx::migrate!` embeds
//! `migrations/edge/` at compile time, outside this crate's directory.

fn main() {
    println!("cargo:rerun-if-changed=../migrations/edge");
}
