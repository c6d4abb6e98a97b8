//! The corpus of broken fleet repos: the mini repo
//! (`cli/tests/fixtures/mini-repo`) with one thing broken per case,
//! and where `fleet validate` must say so.
//!
//! Shared by two test binaries: the cli's `validate_corpus` module runs
//! the real `fleet` binary on every case and checks rule, file and line;
//! the schemas crate's `validate_corpus` and `loader_fuzz` modules feed
//! the same broken repos to the loader in-process (its testsuite includes
//! this file with `#[path]`). It must stay plain `std` + `tempfile` so
//! both can include it.
//!
//! Expected lines are found in the mutated file by the text they hold, so
//! the fixture can be edited without renumbering the cases.

// Each including crate uses a different part of this module.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const FLEET: &str = "fleet.yaml";
pub const TENANT: &str = "tenants/acme/tenant.yaml";
pub const MENU: &str = "tenants/acme/menu.yaml";
pub const SOHO: &str = "tenants/acme/stores/soho/store.yaml";
pub const MIDTOWN: &str = "tenants/acme/stores/midtown/store.yaml";

/// Every source file of the mini repo.
pub const SOURCES: &[&str] = &[FLEET, TENANT, MENU, SOHO, MIDTOWN];

/// The valid base repo every case starts from.
pub fn mini_repo() -> PathBuf {
    // Both including crates are workspace members beside `cli`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/fixtures/mini-repo")
}

/// One way of breaking the repo.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replace the only occurrence of `from` in `file` with `to` (bytes, so
    /// that a case can write invalid UTF-8).
    Edit {
        file: &'static str,
        from: &'static str,
        to: Vec<u8>,
    },
    /// Write `file` (creating directories), replacing what was there.
    Write {
        file: &'static str,
        contents: Vec<u8>,
    },
    /// Delete `file`.
    Remove { file: &'static str },
    /// Put a symbolic link to `target` where `file` was.
    Symlink {
        file: &'static str,
        target: &'static str,
    },
    /// Append YAML comment lines to `file` until it is `len` bytes long.
    Grow { file: &'static str, len: usize },
    /// Several mutations, in order.
    All(Vec<Mutation>),
}

/// Where in the expected file the finding must be.
#[derive(Debug, Clone, Copy)]
pub enum At {
    /// The first line that contains this text.
    Line(&'static str),
    /// The first line containing `needle` at or after the first line
    /// containing `anchor`.
    LineAfter {
        anchor: &'static str,
        needle: &'static str,
    },
    /// The file as a whole: line 0.
    File,
}

/// One broken repo and the finding it must produce.
#[derive(Debug, Clone)]
pub struct Case {
    /// Also the name of its test function in validate_corpus.rs.
    pub name: &'static str,
    pub mutation: Mutation,
    pub rule: &'static str,
    pub file: &'static str,
    pub at: At,
}

impl Case {
    /// The line the finding must be on, read from the mutated repo at `root`.
    pub fn expected_line(&self, root: &Path) -> usize {
        let find = |needle: &str, from: usize| {
            let bytes = fs::read(root.join(self.file))
                .unwrap_or_else(|e| panic!("{}: reading {}: {e}", self.name, self.file));
            let text = String::from_utf8_lossy(&bytes);
            text.lines()
                .enumerate()
                .skip(from.saturating_sub(1))
                .find(|(_, l)| l.contains(needle))
                .map(|(i, _)| i + 1)
                .unwrap_or_else(|| {
                    panic!("{}: no line holds {needle:?} in {}", self.name, self.file)
                })
        };
        match self.at {
            At::File => 0,
            At::Line(needle) => find(needle, 1),
            At::LineAfter { anchor, needle } => find(needle, find(anchor, 1)),
        }
    }
}

impl Mutation {
    /// Apply to a repo checked out at `root`.
    pub fn apply(&self, root: &Path) -> io::Result<()> {
        match self {
            Mutation::Edit { file, from, to } => {
                let path = root.join(file);
                let text = fs::read(&path)?;
                let at = find_once(&text, from.as_bytes()).map_err(|n| {
                    io::Error::other(format!("{file}: {from:?} occurs {n} times, not once"))
                })?;
                let mut out = text[..at].to_vec();
                out.extend_from_slice(to);
                out.extend_from_slice(&text[at + from.len()..]);
                fs::write(path, out)
            }
            Mutation::Write { file, contents } => {
                let path = root.join(file);
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                fs::write(path, contents)
            }
            Mutation::Remove { file } => fs::remove_file(root.join(file)),
            Mutation::Symlink { file, target } => {
                let path = root.join(file);
                if path.symlink_metadata().is_ok() {
                    fs::remove_file(&path)?;
                }
                symlink(target, &path)
            }
            Mutation::Grow { file, len } => {
                let path = root.join(file);
                let mut text = fs::read(&path)?;
                let line = format!("# {}\n", "padding ".repeat(12));
                while text.len() < *len {
                    text.extend_from_slice(line.as_bytes());
                }
                fs::write(path, text)
            }
            Mutation::All(list) => list.iter().try_for_each(|m| m.apply(root)),
        }
    }
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &str, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symbolic links in tests need unix",
    ))
}

/// The offset of the only occurrence of `needle`, or how many there are.
fn find_once(hay: &[u8], needle: &[u8]) -> Result<usize, usize> {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        _ => Err(hits.len()),
    }
}

/// Copy a directory tree (regular files and directories only).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// A fresh copy of the mini repo with `mutation` applied.
pub fn broken_repo(mutation: &Mutation) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_tree(&mini_repo(), dir.path()).expect("copying the mini repo");
    mutation.apply(dir.path()).expect("applying the mutation");
    dir
}

fn edit(file: &'static str, from: &'static str, to: &str) -> Mutation {
    Mutation::Edit {
        file,
        from,
        to: to.as_bytes().to_vec(),
    }
}

fn write(file: &'static str, contents: &str) -> Mutation {
    Mutation::Write {
        file,
        contents: contents.as_bytes().to_vec(),
    }
}

fn case(
    name: &'static str,
    rule: &'static str,
    file: &'static str,
    at: At,
    mutation: Mutation,
) -> Case {
    Case {
        name,
        mutation,
        rule,
        file,
        at,
    }
}

/// "Billion laughs" on one line: ten levels of anchors, each ten aliases of
/// the one before (10^10 scalars if expanded). One line, so the expected
/// position does not depend on where the budget runs out.
pub fn alias_bomb() -> String {
    let mut levels = vec![format!("&l0 [{}]", ["lol"; 10].join(","))];
    for i in 1..10 {
        levels.push(format!(
            "&l{i} [{}]",
            vec![format!("*l{}", i - 1); 10].join(",")
        ));
    }
    format!("  laughs: [{}]\n", levels.join(", "))
}

/// 100 nested flow sequences on one line.
pub fn deep_nesting() -> String {
    format!("{}{}", "[".repeat(100), "]".repeat(100))
}

/// Every case. Names are unique and are test function names.
pub fn cases() -> Vec<Case> {
    use At::{File, Line, LineAfter};
    let soho = std::fs::read_to_string(mini_repo().join(SOHO)).expect("the mini repo's soho store");
    vec![
        // ------------------------------------------------ files and YAML
        case(
            "yaml_syntax_error",
            "yaml/syntax",
            MENU,
            Line("Fountain: Soda"),
            edit(
                MENU,
                "      name: Fountain Soda",
                "      name: Fountain: Soda",
            ),
        ),
        case(
            "duplicate_key",
            "yaml/duplicate-key",
            TENANT,
            Line("currency: EUR"),
            edit(
                TENANT,
                "  currency: USD\n",
                "  currency: USD\n  currency: EUR\n",
            ),
        ),
        case(
            "two_documents_in_one_file",
            "yaml/multiple-documents",
            FLEET,
            Line("---"),
            edit(
                FLEET,
                "kind: Fleet\n",
                "kind: Fleet\n---\napiVersion: fleet/v1\nkind: Fleet\n",
            ),
        ),
        // Regression: this was once misreported by the validator.
        case(
            "alias_bomb",
            "size/alias",
            SOHO,
            Line("laughs:"),
            Mutation::Write {
                file: SOHO,
                contents: format!("{soho}menu:\n{}", alias_bomb()).into_bytes(),
            },
        ),
        case(
            "nesting_100_deep",
            "size/depth",
            TENANT,
            Line("custom.deep"),
            edit(
                TENANT,
                "  custom.loyalty_banner:",
                &format!(
                    "  custom.deep: {}\n  custom.loyalty_banner:",
                    deep_nesting()
                ),
            ),
        ),
        case(
            "file_over_4_mib",
            "file/too-large",
            MENU,
            File,
            Mutation::Grow {
                file: MENU,
                len: 5 * 1024 * 1024,
            },
        ),
        case(
            "store_yaml_is_a_symlink",
            "file/not-regular",
            SOHO,
            File,
            Mutation::Symlink {
                file: SOHO,
                target: "../midtown/store.yaml",
            },
        ),
        case(
            "tenant_file_is_a_symlink",
            "file/not-regular",
            MENU,
            File,
            Mutation::Symlink {
                file: MENU,
                target: "/etc/hostname",
            },
        ),
        case(
            "store_dir_is_a_symlink",
            "file/not-regular",
            "tenants/acme/stores/uptown",
            File,
            Mutation::Symlink {
                file: "tenants/acme/stores/uptown",
                target: "midtown",
            },
        ),
        case(
            "not_utf8",
            "file/not-utf8",
            SOHO,
            Line("store: {"),
            Mutation::Edit {
                file: SOHO,
                from: "name: SoHo,",
                to: b"name: So\xffHo,".to_vec(),
            },
        ),
        case(
            "fleet_yaml_missing",
            "file/missing",
            FLEET,
            File,
            Mutation::Remove { file: FLEET },
        ),
        case(
            "store_yaml_missing",
            "file/missing",
            "tenants/acme/stores/soho",
            File,
            Mutation::Remove { file: SOHO },
        ),
        // ------------------------------------------------ shape
        case(
            "unknown_field",
            "schema/unknown-field",
            MENU,
            Line("colour: red"),
            edit(
                MENU,
                "      name: Fountain Soda\n",
                "      name: Fountain Soda\n      colour: red\n",
            ),
        ),
        case(
            "missing_field",
            "schema/missing-field",
            TENANT,
            Line("{id: bar, kind: kds}"),
            edit(
                TENANT,
                "{id: bar, name: Bar, kind: kds}",
                "{id: bar, kind: kds}",
            ),
        ),
        case(
            "wrong_api_version",
            "schema/api-version",
            SOHO,
            Line("fleet/v2"),
            edit(SOHO, "apiVersion: fleet/v1", "apiVersion: fleet/v2"),
        ),
        case(
            "wrong_kind",
            "schema/kind",
            MENU,
            Line("kind: Store"),
            edit(MENU, "kind: Tenant", "kind: Store"),
        ),
        case(
            "wrong_type",
            "schema/type",
            TENANT,
            Line("level: ten"),
            edit(TENANT, "level: 10", "level: ten"),
        ),
        // Regression: this was once misreported by the validator.
        case(
            "scalar_where_list_expected",
            "schema/type",
            MENU,
            Line("taxes: vat"),
            edit(MENU, "taxes: [vat]", "taxes: vat"),
        ),
        // Regression: this was once misreported by the validator.
        case(
            "scalar_where_mapping_expected",
            "schema/type",
            MIDTOWN,
            Line("store: midtown"),
            edit(
                MIDTOWN,
                "store: {id: midtown, name: Midtown}",
                "store: midtown",
            ),
        ),
        // Regression: this was once misreported by the validator.
        case(
            "list_where_scalar_expected",
            "schema/type",
            TENANT,
            Line("level: [10]"),
            edit(TENANT, "level: 10", "level: [10]"),
        ),
        // Regression: this was once misreported by the validator.
        case(
            "unknown_field_via_alias",
            "schema/unknown-field",
            MENU,
            Line("- *vat"),
            Mutation::All(vec![
                edit(MENU, "    - {id: vat,", "    - &vat {id: vat,"),
                edit(
                    MENU,
                    "    - {id: drinks, name: Drinks, sort: 20}\n",
                    "    - {id: drinks, name: Drinks, sort: 20}\n    - *vat\n",
                ),
            ]),
        ),
        // ------------------------------------------------ rule 1: ids
        case(
            "id_not_slug",
            "id/not-slug",
            MENU,
            Line("Two_Off"),
            edit(MENU, "{id: two-off,", "{id: Two_Off,"),
        ),
        case(
            "catalog_id_shared_across_kinds",
            "id/duplicate",
            MENU,
            Line("{id: soda, name: \"$2 Off\""),
            edit(MENU, "{id: two-off,", "{id: soda,"),
        ),
        case(
            "store_user_id_taken",
            "id/duplicate",
            SOHO,
            Line("id: jane"),
            edit(SOHO, "    - id: sam", "    - id: jane"),
        ),
        case(
            "store_dir_differs_from_id",
            "id/dir-mismatch",
            SOHO,
            Line("store: {"),
            edit(SOHO, "store: {id: soho,", "store: {id: so-ho,"),
        ),
        case(
            "tenant_dir_differs_from_id",
            "id/dir-mismatch",
            TENANT,
            Line("id: acme-corp"),
            edit(TENANT, "  id: acme\n", "  id: acme-corp\n"),
        ),
        case(
            "tenant_section_in_two_files",
            "tenant/duplicate-section",
            "tenants/acme/zz-kitchen.yaml",
            Line("kitchen:"),
            write(
                "tenants/acme/zz-kitchen.yaml",
                "apiVersion: fleet/v1\nkind: Tenant\nkitchen:\n  stations: []\n",
            ),
        ),
        case(
            "currency_not_iso",
            "tenant/currency",
            TENANT,
            Line("currency: usd"),
            edit(TENANT, "currency: USD", "currency: usd"),
        ),
        case(
            "timezone_not_iana",
            "tenant/timezone",
            SOHO,
            Line("store: {"),
            edit(SOHO, "timezone: America/New_York", "timezone: New York"),
        ),
        // ------------------------------------------------ rule 2: references
        case(
            "unknown_category",
            "ref/unknown-category",
            MENU,
            Line("category: drink"),
            edit(MENU, "category: drinks", "category: drink"),
        ),
        case(
            "unknown_tax",
            "ref/unknown-tax",
            MENU,
            Line("city-tax"),
            edit(MENU, "taxes: [vat]", "taxes: [vat, city-tax]"),
        ),
        case(
            "unknown_modifier_group",
            "ref/unknown-modifier-group",
            MENU,
            Line("extras"),
            edit(MENU, "[doneness, addons]", "[doneness, extras]"),
        ),
        case(
            "item_unknown_station",
            "ref/unknown-station",
            MENU,
            Line("stations: [fryer]"),
            edit(MENU, "stations: [bar]", "stations: [fryer]"),
        ),
        case(
            "routing_default_unknown_station",
            "ref/unknown-station",
            TENANT,
            Line("fryer"),
            edit(TENANT, "default: [grill]", "default: [grill, fryer]"),
        ),
        case(
            "routing_unknown_category",
            "ref/unknown-category",
            TENANT,
            Line("shakes:"),
            edit(TENANT, "      drinks: [bar]", "      shakes: [bar]"),
        ),
        case(
            "device_unknown_station",
            "ref/unknown-station",
            MIDTOWN,
            Line("station: fryer"),
            edit(MIDTOWN, "station: bar,", "station: fryer,"),
        ),
        case(
            "role_unknown_permission",
            "ref/unknown-permission",
            TENANT,
            Line("reports.viw"),
            edit(TENANT, "reports.view]", "reports.viw]"),
        ),
        case(
            "discount_requires_unknown_permission",
            "ref/unknown-permission",
            MENU,
            Line("discount.secret"),
            edit(
                MENU,
                "requires: discount.restricted",
                "requires: discount.secret",
            ),
        ),
        case(
            "role_inherits_unknown_role",
            "ref/unknown-role",
            TENANT,
            Line("supervisor"),
            edit(
                TENANT,
                "inherits: [cashier]",
                "inherits: [cashier, supervisor]",
            ),
        ),
        case(
            "user_unknown_role",
            "ref/unknown-role",
            TENANT,
            Line("role: barista"),
            edit(
                TENANT,
                "      role: cashier\n      stores: [soho]",
                "      role: barista\n      stores: [soho]",
            ),
        ),
        case(
            "role_cycle",
            "ref/role-cycle",
            TENANT,
            Line("inherits: [manager]"),
            edit(
                TENANT,
                "      level: 10\n",
                "      level: 10\n      inherits: [manager]\n",
            ),
        ),
        case(
            "user_unknown_store",
            "ref/unknown-store",
            TENANT,
            Line("uptown"),
            edit(TENANT, "stores: [soho]", "stores: [soho, uptown]"),
        ),
        case(
            "store_price_unknown_id",
            "ref/unknown-entity",
            SOHO,
            Line("onion-rings"),
            edit(
                SOHO,
                "    bacon: 250\n",
                "    bacon: 250\n    onion-rings: 399\n",
            ),
        ),
        case(
            "store_price_on_an_item",
            "ref/unknown-entity",
            SOHO,
            Line("classic-burger: 999"),
            edit(
                SOHO,
                "    bacon: 250\n",
                "    bacon: 250\n    classic-burger: 999\n",
            ),
        ),
        case(
            "store_absent_unknown_id",
            "ref/unknown-entity",
            SOHO,
            Line("milkshake"),
            edit(
                SOHO,
                "absent: [soda-large]",
                "absent: [soda-large, milkshake]",
            ),
        ),
        case(
            "store_tax_rate_unknown_tax",
            "ref/unknown-entity",
            SOHO,
            Line("city-tax"),
            edit(SOHO, "    sales-tax: \"8.875\"", "    city-tax: \"1\""),
        ),
        case(
            "store_routing_unknown_station",
            "ref/unknown-entity",
            SOHO,
            Line("[fryer]"),
            edit(SOHO, "    default: [grill]", "    default: [fryer]"),
        ),
        case(
            "store_routing_unknown_category",
            "ref/unknown-entity",
            SOHO,
            Line("shakes:"),
            edit(SOHO, "      drinks: [bar]", "      shakes: [bar]"),
        ),
        // ------------------------------------------------ rule 3: money
        case(
            "money_float",
            "money/not-integer",
            MENU,
            Line("10.99"),
            edit(MENU, "price: 1099}", "price: 10.99}"),
        ),
        case(
            "money_string",
            "money/not-integer",
            MENU,
            Line("amount: \"200\""),
            edit(MENU, "amount: 200}", "amount: \"200\"}"),
        ),
        case(
            "money_negative",
            "money/negative",
            MENU,
            Line("price: -200"),
            edit(MENU, "price: 200}", "price: -200}"),
        ),
        case(
            "store_price_negative",
            "money/negative",
            SOHO,
            Line("bacon: -250"),
            edit(SOHO, "bacon: 250", "bacon: -250"),
        ),
        case(
            "money_too_large",
            "money/too-large",
            MENU,
            Line("1000000000000"),
            edit(MENU, "price: 1499}", "price: 1000000000000}"),
        ),
        case(
            "store_price_too_large",
            "money/too-large",
            SOHO,
            Line("1000000000000"),
            edit(
                SOHO,
                "classic-single: 1199",
                "classic-single: 1000000000000",
            ),
        ),
        // Regression: this was once misreported by the validator.
        case(
            "money_beyond_u64",
            "money/too-large",
            MENU,
            Line("99999999999999999999999"),
            edit(MENU, "price: 1499}", "price: 99999999999999999999999}"),
        ),
        case(
            "zero_amount_discount",
            "money/zero-discount",
            MENU,
            Line("amount: 0}"),
            edit(MENU, "amount: 200}", "amount: 0}"),
        ),
        // ------------------------------------------------ rule 4: rates
        case(
            "rate_unquoted",
            "rate/unquoted",
            MENU,
            Line("rate: 7.25"),
            edit(MENU, "rate: \"7.25\"", "rate: 7.25"),
        ),
        case(
            "rate_format",
            "rate/format",
            MENU,
            Line("20%"),
            edit(MENU, "rate: \"20\"", "rate: \"20%\""),
        ),
        case(
            "store_rate_format",
            "rate/format",
            SOHO,
            Line("8.87501"),
            edit(SOHO, "\"8.875\"", "\"8.87501\""),
        ),
        case(
            "tax_rate_above_100",
            "rate/range",
            MENU,
            Line("107.25"),
            edit(MENU, "rate: \"7.25\"", "rate: \"107.25\""),
        ),
        case(
            "percent_discount_zero",
            "rate/range",
            MENU,
            Line("rate: \"0\""),
            edit(MENU, "rate: \"50\"", "rate: \"0\""),
        ),
        case(
            "percent_discount_without_rate",
            "discount/kind-fields",
            MENU,
            Line("staff-meal"),
            edit(MENU, "kind: percent, rate: \"50\",", "kind: percent,"),
        ),
        // ------------------------------------------------ rule 5: modifier groups
        case(
            "modifier_group_empty",
            "modifier/empty-group",
            MENU,
            Line("modifiers: []"),
            edit(
                MENU,
                "      modifiers:\n        - {id: bacon, name: Bacon, price: 200}\n        - {id: cheese, name: Cheese, price: 100}\n",
                "      modifiers: []\n",
            ),
        ),
        case(
            "modifier_min_above_max",
            "modifier/min-max",
            MENU,
            Line("min: 2"),
            edit(
                MENU,
                "      min: 0\n      max: 2",
                "      min: 2\n      max: 1",
            ),
        ),
        case(
            "modifier_max_above_bound",
            "modifier/max-bound",
            MENU,
            Line("max: 51"),
            edit(
                MENU,
                "      min: 0\n      max: 2",
                "      min: 0\n      max: 51",
            ),
        ),
        case(
            "modifier_min_above_count",
            "modifier/min-exceeds-count",
            MENU,
            Line("min: 3"),
            edit(
                MENU,
                "      min: 0\n      max: 2",
                "      min: 3\n      max: 3",
            ),
        ),
        case(
            "modifier_too_many_defaults",
            "modifier/too-many-defaults",
            MENU,
            LineAfter {
                anchor: "id: doneness",
                needle: "{id: medium",
            },
            edit(
                MENU,
                "{id: well-done, name: Well Done, price: 0}",
                "{id: well-done, name: Well Done, price: 0, default: true}",
            ),
        ),
        // ------------------------------------------------ rule 6: items
        case(
            "item_without_variations",
            "item/variations",
            MENU,
            Line("variations: []"),
            edit(
                MENU,
                "      variations:\n        - {id: soda-small, name: Small, price: 199}\n        - {id: soda-large, name: Large, price: 299}\n",
                "      variations: []\n",
            ),
        ),
        // ------------------------------------------------ rule 7: rendered store
        case(
            "price_on_variation_of_absent_item",
            "render/absent-item-sold",
            SOHO,
            Line("classic-single: 1199"),
            edit(
                SOHO,
                "absent: [soda-large]",
                "absent: [soda-large, classic-burger]",
            ),
        ),
        case(
            "required_group_starved",
            "render/modifier-group-starved",
            SOHO,
            Line("absent:"),
            edit(
                SOHO,
                "absent: [soda-large]",
                "absent: [soda-large, medium, well-done]",
            ),
        ),
        // ------------------------------------------------ rule 8: routing
        case(
            "unrouted_item",
            "routing/unrouted-item",
            SOHO,
            Line("store: {"),
            edit(SOHO, "    default: [grill]", "    default: []"),
        ),
        case(
            "station_without_device",
            "routing/station-without-device",
            MIDTOWN,
            Line("grill-printer-2"),
            edit(
                MIDTOWN,
                "  - {id: bar-printer-2, station: bar, type: star_net, address: \"10.0.2.22:9100\"}\n",
                "",
            ),
        ),
        // ------------------------------------------------ rule 9: users
        case(
            "plaintext_pin",
            "user/plaintext-pin",
            SOHO,
            Line("pin: \"1234\""),
            edit(
                SOHO,
                "      role: cashier\n",
                "      role: cashier\n      pin: \"1234\"\n",
            ),
        ),
        case(
            "pin_hash_not_argon2id",
            "user/pin-hash",
            TENANT,
            Line("$argon2i$"),
            edit(
                TENANT,
                "pin_hash: \"$argon2id$v=19$m=19456,t=2,p=1$FWR0",
                "pin_hash: \"$argon2i$v=19$m=19456,t=2,p=1$FWR0",
            ),
        ),
        case(
            "store_without_manager",
            "user/no-manager",
            MIDTOWN,
            Line("store: {"),
            edit(TENANT, "stores: [\"*\"]", "stores: [soho]"),
        ),
        // ------------------------------------------------ rule 10: settings
        case(
            "setting_unknown_key",
            "settings/unknown-key",
            TENANT,
            Line("auto_close_minutez"),
            edit(
                TENANT,
                "order.auto_close_minutes: 30",
                "order.auto_close_minutez: 30",
            ),
        ),
        case(
            "setting_wrong_type",
            "settings/type",
            TENANT,
            Line("auto_close_minutes"),
            edit(
                TENANT,
                "order.auto_close_minutes: 30",
                "order.auto_close_minutes: \"30\"",
            ),
        ),
        case(
            "setting_out_of_range",
            "settings/type",
            TENANT,
            Line("auto_close_minutes"),
            edit(
                TENANT,
                "order.auto_close_minutes: 30",
                "order.auto_close_minutes: 1441",
            ),
        ),
        case(
            "setting_float",
            "settings/type",
            TENANT,
            Line("auto_close_minutes"),
            edit(
                TENANT,
                "order.auto_close_minutes: 30",
                "order.auto_close_minutes: 30.5",
            ),
        ),
        case(
            "store_overrides_locked_setting",
            "settings/not-overridable",
            SOHO,
            Line("drawer.require_count"),
            edit(
                SOHO,
                "    receipt.footer:",
                "    drawer.require_count: false\n    receipt.footer:",
            ),
        ),
        case(
            "store_setting_unknown_key",
            "settings/unknown-key",
            SOHO,
            Line("receipt.fotter"),
            edit(SOHO, "    receipt.footer:", "    receipt.fotter:"),
        ),
        // ------------------------------------------------ rule 11: stores only reference
        case(
            "store_defines_menu",
            "store/creates-entity",
            SOHO,
            Line("menu:"),
            Mutation::Write {
                file: SOHO,
                contents: format!("{soho}menu:\n  items: []\n").into_bytes(),
            },
        ),
        case(
            "store_defines_roles",
            "store/creates-entity",
            SOHO,
            Line("roles:"),
            edit(SOHO, "access:\n  users:", "access:\n  roles: []\n  users:"),
        ),
    ]
}
