//! The validation corpus (`cli/tests/testsuite/corpus/mod.rs`) in-process:
//! each broken repo gets its case's rule at its file and line from
//! [`check_repo`], the function `fleet validate` runs. The cli's
//! `validate_corpus` test checks the same through the real binary; this one
//! lets a change to the rules be checked without building the cli.

use crate::corpus;

use schemas::diag::Severity;
use schemas::load::DirTree;
use schemas::validate::check_repo;

#[test]
fn every_corpus_case_reports_its_rule_at_its_line() {
    let mut missed = Vec::new();
    for case in corpus::cases() {
        let dir = corpus::broken_repo(&case.mutation);
        let (_, diags) = check_repo(&DirTree::new(dir.path()));
        let line = case.expected_line(dir.path());
        let hit = diags.iter().any(|d| {
            d.severity == Severity::Error
                && d.rule == case.rule
                && d.file == case.file
                && d.line == line
        });
        if !hit {
            let got: Vec<String> = diags.iter().map(|d| format!("  {d}")).collect();
            missed.push(format!(
                "{}: expected error[{}] at {}:{line}; got:\n{}",
                case.name,
                case.rule,
                case.file,
                got.join("\n")
            ));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

#[test]
fn mini_repo_has_no_findings() {
    let (_, diags) = check_repo(&DirTree::new(corpus::mini_repo()));
    // Plain demo PIN hashes without escrow: warned, nothing else.
    assert!(diags.iter().all(|d| d.rule == "secret/plaintext" && d.severity == schemas::diag::Severity::Warning), "{diags:#?}");
}
