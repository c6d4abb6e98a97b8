//! The three shapes of a plan: text for a terminal, Markdown for a pull
//! request comment, JSON for tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemas::diff::{Change, Domain, EntityChange, FieldChange, show};

use super::{FleetPlan, StorePlan, StoreStatus};

/// A marker the CI workflow uses to find and update its own PR comment.
pub const COMMENT_MARKER: &str = "<!-- fleet-plan -->";

fn short(commit: &str) -> &str {
    if commit.len() == 40 {
        &commit[..7]
    } else {
        commit
    }
}

fn sign(c: &EntityChange) -> char {
    match c.change {
        Change::Added { .. } => '+',
        Change::Removed { .. } => '-',
        Change::Changed { .. } => '~',
    }
}

fn field_line(f: &FieldChange) -> String {
    f.to_string()
}

/// One line per entity change (and per field for changed ones).
fn entity_lines(c: &EntityChange) -> Vec<String> {
    match &c.change {
        Change::Changed { fields } if fields.len() == 1 => {
            vec![format!(
                "~ {} `{}`: {}",
                c.kind,
                c.id,
                field_line(&fields[0])
            )]
        }
        Change::Changed { fields } => {
            let mut v = vec![format!("~ {} `{}`", c.kind, c.id)];
            v.extend(fields.iter().map(|f| format!("    {}", field_line(f))));
            v
        }
        Change::Added { value } if c.kind == schemas::diff::EntityKind::Setting => {
            vec![format!("+ setting `{}` = {}", c.id, show(value))]
        }
        Change::Removed { value } if c.kind == schemas::diff::EntityKind::Setting => {
            vec![format!("- setting `{}` (was {})", c.id, show(value))]
        }
        _ => vec![format!("{} {} `{}`", sign(c), c.kind, c.id)],
    }
}

fn status_word(s: StoreStatus) -> &'static str {
    match s {
        StoreStatus::Added => "new store",
        StoreStatus::Removed => "store removed",
        StoreStatus::Changed => "changes",
    }
}

/// Plain text for a terminal.
pub fn text(plan: &FleetPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet plan: {} → {}",
        short(&plan.base),
        short(&plan.head)
    );
    for n in &plan.notes {
        let _ = writeln!(out, "note: {n}");
    }
    if !plan.has_changes() {
        let _ = writeln!(out, "No store changes ({} unchanged).", plan.unchanged);
        return out;
    }
    let _ = writeln!(
        out,
        "{} store(s) change, {} unchanged.",
        plan.stores.len(),
        plan.unchanged
    );
    for s in &plan.stores {
        let _ = writeln!(out, "\n{} ({})", s.store, status_word(s.status));
        if s.status != StoreStatus::Changed {
            let _ = writeln!(out, "  {}", summary_counts(s));
            continue;
        }
        for r in &s.risks {
            let _ = writeln!(out, "  ! {r}");
        }
        for w in &s.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        for d in Domain::ALL {
            let changes: Vec<&EntityChange> = s.diff.in_domain(d).collect();
            if changes.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {d}");
            for c in changes {
                for line in entity_lines(c) {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    out
}

/// Entity counts per domain, e.g. `menu 38, access 11`.
fn summary_counts(s: &StorePlan) -> String {
    Domain::ALL
        .iter()
        .filter_map(|d| {
            let n = s.diff.in_domain(*d).count();
            (n > 0).then(|| format!("{d} {n}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Markdown for a pull request comment: summary first, details folded,
/// stores with identical changes grouped.
pub fn markdown(plan: &FleetPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{COMMENT_MARKER}");
    let _ = writeln!(
        out,
        "### Fleet plan: `{}` → `{}`\n",
        short(&plan.base),
        short(&plan.head)
    );
    for n in &plan.notes {
        let _ = writeln!(out, "> **Note:** {n}\n");
    }
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "No store changes. {} store(s) render exactly as before.",
            plan.unchanged
        );
        return out;
    }

    // Stores affected per tenant.
    let mut per_tenant: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &plan.stores {
        *per_tenant
            .entry(s.store.split('/').next().unwrap_or(""))
            .or_default() += 1;
    }
    let _ = writeln!(
        out,
        "| tenant | stores affected | settings | menu | access | kitchen |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    for (tenant, n) in &per_tenant {
        let total = plan.stores_per_tenant.get(*tenant).copied().unwrap_or(0);
        let counts: Vec<String> = Domain::ALL
            .iter()
            .map(|d| {
                plan.stores
                    .iter()
                    .filter(|s| s.store.starts_with(&format!("{tenant}/")))
                    .map(|s| s.diff.in_domain(*d).count())
                    .sum::<usize>()
                    .to_string()
            })
            .collect();
        let _ = writeln!(
            out,
            "| {tenant} | {n} of {total} | {} |",
            counts.join(" | ")
        );
    }
    let added: Vec<&str> = plan
        .stores
        .iter()
        .filter(|s| s.status == StoreStatus::Added)
        .map(|s| s.store.as_str())
        .collect();
    let removed: Vec<&str> = plan
        .stores
        .iter()
        .filter(|s| s.status == StoreStatus::Removed)
        .map(|s| s.store.as_str())
        .collect();
    if !added.is_empty() {
        let _ = writeln!(out, "\n**New stores:** {}", code_list(&added));
    }
    if !removed.is_empty() {
        let _ = writeln!(out, "\n**Removed stores:** {}", code_list(&removed));
    }

    // Risks, each with the stores it reaches.
    let mut risks: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &plan.stores {
        for r in s.risks.iter().chain(s.warnings.iter()) {
            risks.entry(r.as_str()).or_default().push(s.store.as_str());
        }
    }
    if !risks.is_empty() {
        let _ = writeln!(out, "\n#### ⚠️ Look twice\n");
        for (risk, stores) in &risks {
            let _ = writeln!(out, "- {risk} — {}", reach(stores, plan.stores.len()));
        }
    }

    // Details, stores with identical changes in one group.
    let mut groups: BTreeMap<String, (Vec<&StorePlan>, &StorePlan)> = BTreeMap::new();
    for s in &plan.stores {
        let key = format!(
            "{:?}{}",
            s.status,
            serde_json::to_string(&s.diff).expect("plain data")
        );
        groups
            .entry(key)
            .or_insert_with(|| (Vec::new(), s))
            .0
            .push(s);
    }
    let mut groups: Vec<(Vec<&StorePlan>, &StorePlan)> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.0.len()
            .cmp(&a.0.len())
            .then_with(|| a.0[0].store.cmp(&b.0[0].store))
    });
    let _ = writeln!(out, "\n#### Changes per store\n");
    for (members, s) in groups {
        let names: Vec<&str> = members.iter().map(|m| m.store.as_str()).collect();
        let title = if names.len() == 1 {
            format!(
                "<code>{}</code> ({}): {}",
                names[0],
                status_word(s.status),
                summary_counts(s)
            )
        } else {
            format!(
                "{} stores ({}): {}",
                names.len(),
                status_word(s.status),
                summary_counts(s)
            )
        };
        let _ = writeln!(out, "<details><summary>{title}</summary>\n");
        if names.len() > 1 {
            let _ = writeln!(out, "Stores: {}\n", code_list(&names));
        }
        if s.status == StoreStatus::Changed {
            for d in Domain::ALL {
                let changes: Vec<&EntityChange> = s.diff.in_domain(d).collect();
                if changes.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "**{d}**\n\n```diff");
                for c in changes {
                    for line in entity_lines(c) {
                        let _ = writeln!(out, "{line}");
                    }
                }
                let _ = writeln!(out, "```\n");
            }
        }
        let _ = writeln!(out, "</details>\n");
    }
    out
}

fn code_list(items: &[&str]) -> String {
    const SHOWN: usize = 20;
    let mut s = items
        .iter()
        .take(SHOWN)
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        let _ = write!(s, " and {} more", items.len() - SHOWN);
    }
    s
}

fn reach(stores: &[&str], changed: usize) -> String {
    if stores.len() == changed && changed > 3 {
        format!("all {changed} changed stores")
    } else {
        code_list(stores)
    }
}

/// JSON for tools.
pub fn json(plan: &FleetPlan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("the plan is plain data");
    s.push('\n');
    s
}
