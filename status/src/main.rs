//! `fleet-status`: the fleet status service and dashboard.
//!
//! Not built yet: this binary only describes itself. The status service of
//! DESIGN.md §6 (enrollment, signed reports, dashboard) arrives with
//! the status-service issue; until then nothing here pretends to serve.

use clap::Parser;

/// Head office view of the fleet: desired vs applied revisions per store.
/// Not implemented in this build yet: it only prints this help.
#[derive(Debug, Parser)]
#[command(name = "fleet-status", version, arg_required_else_help = false)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Printing help is the only behaviour this placeholder has.
    let _ = cmd.print_long_help();
    std::process::exit(2);
}
