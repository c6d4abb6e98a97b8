//! `fleet validate` end to end: the real binary on the mini repo and on
//! every broken copy of it in the corpus (`corpus/mod.rs` beside this
//! file), one test per case. Each bad repo must exit 1 with the case's rule at the case's
//! file and line, without panicking and within a time budget, since a
//! hostile repo (alias bomb, deep nesting, huge file) must never hang CI.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::corpus::{self, Case, MENU, Mutation, SOHO, TENANT, broken_repo, mini_repo};
use serde::Deserialize;

/// `fleet validate --format json`.
#[derive(Debug, Deserialize)]
struct Report {
    valid: bool,
    tenants: usize,
    stores: usize,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<Diag>,
}

#[derive(Debug, Deserialize)]
struct Diag {
    file: String,
    line: usize,
    column: usize,
    severity: String,
    rule: String,
    message: String,
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.file, self.line, self.column, self.severity, self.rule, self.message
        )
    }
}

/// One finished `fleet` process.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// The JSON report, without the `secret/plaintext` warnings: the corpus
    /// repos keep plain demo PIN hashes and no escrow (that rule has its own
    /// tests in `secrets.rs`), and every case here is about another rule.
    fn report(&self) -> Report {
        let mut r: Report = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("--format json printed no report ({e}):\n{}", self.stdout));
        let before = r.diagnostics.len();
        r.diagnostics.retain(|d| d.rule != "secret/plaintext");
        r.warnings -= before - r.diagnostics.len();
        r
    }
}

fn fleet(args: &[&str]) -> Run {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(args)
        .output()
        .expect("running the fleet binary");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

fn validate(repo: &Path, format: &str) -> Run {
    let repo = repo.to_str().expect("temporary paths are UTF-8");
    fleet(&["validate", "--repo", repo, "--format", format])
}

/// The longest one validation of a small hostile repo may take. Release
/// builds get 1 s; debug builds are several times slower.
fn time_budget() -> Duration {
    Duration::from_secs(if cfg!(debug_assertions) { 5 } else { 1 })
}

/// What every run on bad input must satisfy, whatever it reports.
fn assert_survived(what: &str, run: &Run) {
    assert!(
        !run.stderr.contains("panicked"),
        "{what}: fleet panicked:\n{}",
        run.stderr
    );
    assert!(
        run.took < time_budget(),
        "{what}: took {:?}, over the budget of {:?}",
        run.took,
        time_budget()
    );
}

/// Run a broken repo and return its report, checking the invariants every
/// invalid repo's report has.
fn validate_broken(what: &str, dir: &Path) -> Report {
    let run = validate(dir, "json");
    assert_survived(what, &run);
    assert_eq!(
        run.code,
        Some(1),
        "{what}: exit code; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let report = run.report();
    let errors = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == "error")
        .count();
    assert!(!report.valid && errors > 0, "{what}: reported valid");
    assert_eq!(report.errors, errors, "{what}: error count");
    assert_eq!(
        report.warnings,
        report.diagnostics.len() - errors,
        "{what}: warning count"
    );
    for d in &report.diagnostics {
        assert!(
            !d.file.is_empty() && d.rule.contains('/'),
            "{what}: malformed diagnostic {d}"
        );
    }
    report
}

fn listing(report: &Report) -> String {
    report
        .diagnostics
        .iter()
        .map(|d| format!("  {d}\n"))
        .collect()
}

fn case_named(name: &str) -> Case {
    corpus::cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no corpus case named {name}"))
}

fn check_case(name: &str) {
    let case = case_named(name);
    let dir = broken_repo(&case.mutation);
    let report = validate_broken(name, dir.path());
    let line = case.expected_line(dir.path());
    let hit = report.diagnostics.iter().any(|d| {
        d.severity == "error" && d.rule == case.rule && d.file == case.file && d.line == line
    });
    assert!(
        hit,
        "{name}: expected error[{}] at {}:{line}; got:\n{}",
        case.rule,
        case.file,
        listing(&report)
    );
}

/// One test per corpus case, so a failure names its case.
macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_case(stringify!($name));
            }
        )*
        const TESTED: &[&str] = &[$(stringify!($name)),*];
    };
}

corpus_tests!(
    yaml_syntax_error,
    duplicate_key,
    two_documents_in_one_file,
    // Regression: this was once misreported by the validator.
    alias_bomb,
    nesting_100_deep,
    file_over_4_mib,
    store_yaml_is_a_symlink,
    tenant_file_is_a_symlink,
    store_dir_is_a_symlink,
    not_utf8,
    fleet_yaml_missing,
    store_yaml_missing,
    unknown_field,
    missing_field,
    wrong_api_version,
    wrong_kind,
    wrong_type,
    // Regression: this was once misreported by the validator.
    scalar_where_list_expected,
    // Regression: this was once misreported by the validator.
    scalar_where_mapping_expected,
    // Regression: this was once misreported by the validator.
    list_where_scalar_expected,
    // Regression: this was once misreported by the validator.
    unknown_field_via_alias,
    id_not_slug,
    catalog_id_shared_across_kinds,
    store_user_id_taken,
    store_dir_differs_from_id,
    tenant_dir_differs_from_id,
    tenant_section_in_two_files,
    currency_not_iso,
    timezone_not_iana,
    unknown_category,
    unknown_tax,
    unknown_modifier_group,
    item_unknown_station,
    routing_default_unknown_station,
    routing_unknown_category,
    device_unknown_station,
    role_unknown_permission,
    discount_requires_unknown_permission,
    role_inherits_unknown_role,
    user_unknown_role,
    role_cycle,
    user_unknown_store,
    store_price_unknown_id,
    store_price_on_an_item,
    store_absent_unknown_id,
    store_tax_rate_unknown_tax,
    store_routing_unknown_station,
    store_routing_unknown_category,
    money_float,
    money_string,
    money_negative,
    store_price_negative,
    money_too_large,
    store_price_too_large,
    // Regression: this was once misreported by the validator.
    money_beyond_u64,
    zero_amount_discount,
    rate_unquoted,
    rate_format,
    store_rate_format,
    tax_rate_above_100,
    percent_discount_zero,
    percent_discount_without_rate,
    modifier_group_empty,
    modifier_min_above_max,
    modifier_max_above_bound,
    modifier_min_above_count,
    modifier_too_many_defaults,
    item_without_variations,
    price_on_variation_of_absent_item,
    required_group_starved,
    unrouted_item,
    station_without_device,
    plaintext_pin,
    pin_hash_not_argon2id,
    store_without_manager,
    setting_unknown_key,
    setting_wrong_type,
    setting_out_of_range,
    setting_float,
    store_overrides_locked_setting,
    store_setting_unknown_key,
    store_defines_menu,
    store_defines_roles,
);

#[test]
fn every_corpus_case_has_a_test() {
    let cases = corpus::cases();
    let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "corpus case names repeat");
    assert!(
        names.len() >= 45,
        "the corpus has only {} cases",
        names.len()
    );
    let mut tested = TESTED.to_vec();
    tested.sort_unstable();
    assert_eq!(
        tested, unique,
        "corpus_tests! and corpus::cases() list different cases"
    );
}

#[test]
fn corpus_covers_every_rule_group() {
    // One rule id of each of POS-MODEL.md's validation rule groups 1–12.
    let groups: [&[&str]; 12] = [
        &[
            "id/not-slug",
            "id/duplicate",
            "id/dir-mismatch",
            "yaml/duplicate-key",
        ],
        &[
            "ref/unknown-category",
            "ref/unknown-tax",
            "ref/unknown-entity",
        ],
        &[
            "money/not-integer",
            "money/negative",
            "money/too-large",
            "money/zero-discount",
        ],
        &["rate/unquoted", "rate/format", "rate/range"],
        &[
            "modifier/empty-group",
            "modifier/min-max",
            "modifier/max-bound",
            "modifier/min-exceeds-count",
            "modifier/too-many-defaults",
        ],
        &["item/variations"],
        &["render/absent-item-sold", "render/modifier-group-starved"],
        &["routing/unrouted-item", "routing/station-without-device"],
        &[
            "user/plaintext-pin",
            "user/pin-hash",
            "user/no-manager",
            "ref/unknown-store",
        ],
        &[
            "settings/unknown-key",
            "settings/type",
            "settings/not-overridable",
        ],
        &["store/creates-entity"],
        &["file/too-large", "size/depth", "size/alias"],
    ];
    let rules: Vec<&str> = corpus::cases().iter().map(|c| c.rule).collect();
    for (i, group) in groups.iter().enumerate() {
        for rule in *group {
            assert!(
                rules.contains(rule),
                "rule group {}: no case for {rule}",
                i + 1
            );
        }
    }
}

#[test]
fn mini_repo_is_valid() {
    let run = validate(&mini_repo(), "json");
    assert_eq!(
        run.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let report = run.report();
    assert!(report.valid);
    assert_eq!(
        (
            report.tenants,
            report.stores,
            report.errors,
            report.warnings
        ),
        (1, 2, 0, 0),
        "{}",
        listing(&report)
    );
    assert!(report.diagnostics.is_empty(), "{}", listing(&report));
}

/// Three independent mistakes in three files, of which one fails to decode:
/// one run reports all three.
fn three_mistakes() -> Mutation {
    Mutation::All(vec![
        Mutation::Edit {
            file: corpus::FLEET,
            from: "apiVersion: fleet/v1",
            to: b"apiVersion: fleet/v9".to_vec(),
        },
        Mutation::Edit {
            file: MENU,
            from: "category: drinks",
            to: b"category: drink".to_vec(),
        },
        Mutation::Edit {
            file: SOHO,
            from: "\"8.875\"",
            to: b"\"8.87501\"".to_vec(),
        },
    ])
}

#[test]
fn one_run_reports_every_error() {
    let dir = broken_repo(&three_mistakes());
    let report = validate_broken("three mistakes", dir.path());
    for (rule, file, needle) in [
        ("schema/api-version", corpus::FLEET, "fleet/v9"),
        ("ref/unknown-category", MENU, "category: drink"),
        ("rate/format", SOHO, "8.87501"),
    ] {
        let line = line_of(&dir.path().join(file), needle);
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.rule == rule && d.file == file && d.line == line),
            "missing {rule} at {file}:{line}; got:\n{}",
            listing(&report)
        );
    }
}

fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).expect("reading a mutated file");
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in {}", path.display()))
}

#[test]
fn github_format_annotates_each_error() {
    let dir = broken_repo(&three_mistakes());
    let run = validate(dir.path(), "github");
    assert_survived("github format", &run);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = line_of(&dir.path().join(MENU), "category: drink");
    let prefix = format!("::error file={MENU},line={line},col=");
    let annotation = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no annotation starting {prefix:?} in:\n{}", run.stdout));
    let (props, message) = annotation
        .split_once("::")
        .and_then(|(_, rest)| rest.split_once("::"))
        .expect("::error <properties>::<message>");
    let col = props
        .split(',')
        .find_map(|p| p.strip_prefix("col="))
        .expect("a col property");
    assert!(col.parse::<usize>().is_ok_and(|c| c >= 1), "col={col}");
    assert!(props.ends_with(",title=ref/unknown-category"), "{props}");
    assert!(message.contains("drink"), "{message}");
    let annotations = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error file="))
        .count();
    assert_eq!(annotations, 3, "one annotation per error:\n{}", run.stdout);
}

#[test]
fn text_format_is_file_line_col_rule_message() {
    let dir = broken_repo(&three_mistakes());
    let run = validate(dir.path(), "text");
    assert_survived("text format", &run);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = line_of(&dir.path().join(MENU), "category: drink");
    let prefix = format!("{MENU}:{line}:");
    let finding = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{}", run.stdout));
    let rest = &finding[prefix.len()..];
    let (col, rest) = rest.split_once(": ").expect("file:line:col: ...");
    assert!(col.parse::<usize>().is_ok_and(|c| c >= 1), "column {col:?}");
    let message = rest
        .strip_prefix("error[ref/unknown-category]: ")
        .unwrap_or_else(|| panic!("not `error[rule]: message`: {rest}"));
    assert!(message.contains("drink"), "{message}");
    assert!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("invalid:") && l.contains("3 error(s)")),
        "summary line:\n{}",
        run.stdout
    );
}

#[test]
fn repo_that_does_not_exist_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("no-such-repo");
    let run = validate(&missing, "json");
    assert_survived("missing repo", &run);
    assert_eq!(
        run.code,
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.contains("no-such-repo"), "{}", run.stderr);
}

#[test]
fn unknown_format_exits_2() {
    let repo = mini_repo();
    let run = validate(&repo, "yaml");
    assert_survived("unknown format", &run);
    assert_eq!(
        run.code,
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// Regression: a store.yaml that failed to decode dropped the store, and
/// every tenant user listing it got a false ref/unknown-store ("store `soho`
/// ... does not exist"), though only the store's file was broken.
#[test]
fn broken_store_file_does_not_make_its_users_dangling() {
    let case = case_named("store_price_negative");
    let dir = broken_repo(&case.mutation);
    let report = validate_broken("broken store file", dir.path());
    let rules: Vec<&str> = report.diagnostics.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(rules, ["money/negative"], "got:\n{}", listing(&report));
}

// Regression: this was once misreported by the validator.
#[test]
fn symlinked_tenant_file_reports_only_the_symlink() {
    let case = case_named("tenant_file_is_a_symlink");
    let dir = broken_repo(&case.mutation);
    let report = validate_broken("symlinked tenant file", dir.path());
    let rules: Vec<&str> = report.diagnostics.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(rules, ["file/not-regular"], "got:\n{}", listing(&report));
}

#[test]
fn decode_error_in_tenant_base_skips_semantic_rules() {
    // The counterpart that works: a tenant file that does not decode marks
    // the base incomplete, so no reference into it is misreported.
    let dir = broken_repo(&Mutation::Edit {
        file: TENANT,
        from: "level: 10",
        to: b"level: ten".to_vec(),
    });
    let report = validate_broken("undecodable tenant file", dir.path());
    let rules: Vec<&str> = report.diagnostics.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(rules, ["schema/type"], "got:\n{}", listing(&report));
}
