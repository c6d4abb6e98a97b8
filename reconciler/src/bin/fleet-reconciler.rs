//! `fleet-reconciler`: the agent on each store that converges the edge backend.
//!
//! Not built yet: this binary only describes itself. The reconciler of
//! DESIGN.md §5 (once, run, plan, enroll, status) arrives with
//! the reconciler issue; until then nothing here pretends to reconcile.

use clap::Parser;

/// Pulls the signed release of this store and converges the edge backend.
/// Not implemented in this build yet: it only prints this help.
#[derive(Debug, Parser)]
#[command(name = "fleet-reconciler", version, arg_required_else_help = false)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Printing help is the only behaviour this placeholder has.
    let _ = cmd.print_long_help();
    std::process::exit(2);
}
