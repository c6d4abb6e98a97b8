//! `fleet validate`: every source of a fleet repo checked against the
//! schema and the semantic rules, every error reported in one run.

use std::fmt::Write as _;
use std::path::Path;

use schemas::diag::{Diagnostic, Severity};
use schemas::load::{DirTree, FleetRepo};
use schemas::validate::{check_repo, has_errors};

/// How findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `file:line:col: error[rule]: message`, then a summary line.
    #[default]
    Text,
    /// A JSON object with the findings and counts.
    Json,
    /// GitHub Actions workflow commands that annotate the PR diff.
    Github,
}

/// The outcome of validating a repo.
#[derive(Debug)]
pub struct Validation {
    pub repo: FleetRepo,
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        !has_errors(&self.diagnostics)
    }

    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// The findings and a summary, in `format`.
    pub fn report(&self, format: Format) -> String {
        let stores = self.repo.store_ids().count();
        let tenants = self.repo.tenants.len();
        match format {
            Format::Text => {
                let mut out = String::new();
                for d in &self.diagnostics {
                    let _ = writeln!(out, "{d}");
                }
                let verdict = if self.is_valid() { "valid" } else { "invalid" };
                let _ = writeln!(
                    out,
                    "{verdict}: {tenants} tenant(s), {stores} store(s), {} error(s), {} warning(s)",
                    self.errors(),
                    self.warnings()
                );
                out
            }
            Format::Github => {
                let mut out = String::new();
                for d in &self.diagnostics {
                    let _ = writeln!(out, "{}", d.github_annotation());
                }
                let _ = writeln!(
                    out,
                    "fleet validate: {tenants} tenant(s), {stores} store(s), {} error(s), {} warning(s)",
                    self.errors(),
                    self.warnings()
                );
                out
            }
            Format::Json => {
                let doc = serde_json::json!({
                    "valid": self.is_valid(),
                    "tenants": tenants,
                    "stores": stores,
                    "errors": self.errors(),
                    "warnings": self.warnings(),
                    "diagnostics": self.diagnostics,
                });
                let mut s = serde_json::to_string_pretty(&doc).expect("diagnostics are plain data");
                s.push('\n');
                s
            }
        }
    }
}

/// Why validation could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{0} is not a directory (pass the fleet repo with --repo)")]
    NotADirectory(String),
}

/// Validate the fleet repo checked out at `repo`.
pub fn validate_dir(repo: &Path) -> Result<Validation, ValidateError> {
    if !repo.is_dir() {
        return Err(ValidateError::NotADirectory(repo.display().to_string()));
    }
    let (repo, diagnostics) = check_repo(&DirTree::new(repo));
    Ok(Validation { repo, diagnostics })
}
