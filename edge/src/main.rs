//! `fleet-edge`: the reference edge backend a store runs on its Pi.
//!
//! Not built yet: this binary only describes itself. The POS API of
//! DESIGN.md §4 (settings, menu, access, kitchen, orders, audit) arrives with
//! the edge-backend issue; until then nothing here pretends to serve.

use clap::Parser;

/// The store's POS backend: local HTTP API over SQLite, kept in shape by
/// `fleet-reconciler`. Not implemented in this build yet: it only prints this help.
#[derive(Debug, Parser)]
#[command(name = "fleet-edge", version, arg_required_else_help = false)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Printing help is the only behaviour this placeholder has.
    let _ = cmd.print_long_help();
    std::process::exit(2);
}
