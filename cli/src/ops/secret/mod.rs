//! `fleet secret …` (DESIGN.md §11): `recipients` writes each store's age
//! recipient, as its node reported it to the status service at
//! enrollment, into the store's `store.yaml`; `keygen` makes an escrow
//! identity; [`values`] encrypts values (`set`, `rewrap`, `encrypt-all`).

pub mod edit;
pub mod seal;
pub mod values;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use schemas::load::DirTree;
use schemas::rules::is_age_recipient;

/// What `recipients` did for one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    Written(String),
    Unchanged,
    /// The status service has no recipient for it (not enrolled, or an
    /// older reconciler).
    NoneReported,
    /// The status service does not know the store (or the token may not see it).
    Unknown,
}

/// One store's line.
#[derive(Debug, Clone)]
pub struct RecipientLine {
    pub store: String,
    pub file: PathBuf,
    pub outcome: RecipientOutcome,
}

/// Write into every store's `store.yaml` of the repo at `repo` the age
/// recipient the status service at `status_url` shows for it (read with the
/// operator `token`).
pub fn recipients(
    repo: &Path,
    status_url: &str,
    token: &str,
) -> anyhow::Result<Vec<RecipientLine>> {
    let (loaded, diagnostics) = schemas::validate::check_repo(&DirTree::new(repo));
    if let Some(d) = diagnostics.iter().find(|d| d.rule == "file/missing") {
        bail!("{} is not a fleet repo: {d}", repo.display());
    }
    let mut stores = Vec::new();
    for (tenant, t) in &loaded.tenants {
        for (store, s) in &t.stores {
            let file = repo.join(&s.path);
            stores.push((
                format!("{tenant}/{store}"),
                file,
                s.file.store.recipient.clone(),
            ));
        }
    }
    let api = crate::ops::status_api::StatusApi::new(status_url, token)?;
    let mut out = Vec::new();
    for (store, file, current) in stores {
        let path = format!("/api/v1/stores/{store}");
        let (status, body) = api.get(&path)?;
        let outcome = match status {
            200 => match body["recipient"].as_str() {
                None => RecipientOutcome::NoneReported,
                Some(r) if !is_age_recipient(r) => {
                    bail!(
                        "the status service shows {store} with recipient {r:?}, which is not an age recipient"
                    )
                }
                Some(r) if current.as_deref() == Some(r) => RecipientOutcome::Unchanged,
                Some(r) => RecipientOutcome::Written(r.to_owned()),
            },
            404 => RecipientOutcome::Unknown,
            other => bail!("GET {status_url}{path} answered {other}: {body}"),
        };
        out.push(RecipientLine {
            store,
            file,
            outcome,
        });
    }
    // Every answer first, then the edits, each checked before any file is
    // written: a refused token or an odd store.yaml changes nothing.
    let mut edits = Vec::new();
    for line in &out {
        if let RecipientOutcome::Written(r) = &line.outcome {
            let text = std::fs::read_to_string(&line.file)
                .with_context(|| format!("reading {}", line.file.display()))?;
            let edited = set_store_recipient(&text, r)
                .with_context(|| format!("editing {}", line.file.display()))?;
            edits.push((&line.file, edited));
        }
    }
    for (file, edited) in edits {
        release::applied::write_atomically(file, edited.as_bytes())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(out)
}

/// Write one store's recipient, as read off its Pi, into its store.yaml;
/// `None` when it already has it.
pub fn set_recipient(repo: &Path, store: &str, recipient: &str) -> anyhow::Result<Option<PathBuf>> {
    if !is_age_recipient(recipient) {
        bail!(
            "{recipient:?} is not an age recipient (age1 and 58 characters); `fleet-reconciler status` on the Pi prints the store's"
        );
    }
    let Some((t, s)) = store.split_once('/') else {
        bail!("--store takes <tenant>/<store>, got {store}");
    };
    let file = repo
        .join("tenants")
        .join(t)
        .join("stores")
        .join(s)
        .join("store.yaml");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let edited = set_store_recipient(&text, recipient)
        .with_context(|| format!("editing {}", file.display()))?;
    if edited == text {
        return Ok(None);
    }
    release::applied::write_atomically(&file, edited.as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(Some(file))
}

/// `text` (a store.yaml) with `recipient: <r>` set in its block-style
/// `store:` mapping: the line replaced if there is one, else added after
/// the mapping's last line, at its indentation. Comments and everything
/// else stay as they are.
pub fn set_store_recipient(text: &str, recipient: &str) -> anyhow::Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_end() == "store:" || l.starts_with("store: #"))
    else {
        if lines.iter().any(|l| l.starts_with("store:")) {
            bail!(
                "its `store:` section is written on one line; write it as a block (one field per line) so `recipient:` can be added"
            );
        }
        bail!("it has no `store:` section");
    };
    let mut indent = None;
    let mut last = start;
    let mut existing = None;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let n = line.len() - trimmed.len();
        if n == 0 {
            break;
        }
        indent.get_or_insert(n);
        last = i;
        if n == indent.unwrap_or(n) && trimmed.starts_with("recipient:") {
            existing = Some(i);
        }
    }
    let pad = " ".repeat(indent.unwrap_or(2));
    let new_line = format!("{pad}recipient: {recipient}     # fleet secret recipients");
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    match existing {
        Some(i) => out[i] = new_line,
        None => out.insert(last + 1, new_line),
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Ok(joined)
}

/// `text` (a store.yaml) without its `store.recipient` line.
pub fn remove_store_recipient(text: &str) -> String {
    let mut in_store = false;
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            in_store = line.trim_end() == "store:" || line.starts_with("store: #");
        } else if in_store && trimmed.starts_with("recipient:") {
            continue;
        }
        out.push(line);
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

/// Make an age identity for escrow at `out` (mode 0600, never
/// overwritten); its recipient is returned.
pub fn keygen(out: &Path) -> anyhow::Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "creating {} (an existing file is never overwritten)",
                out.display()
            )
        })?;
    f.write_all(
        seal::identity_text(
            &identity,
            "a Fleet escrow identity: keep it offline; it can read every secret value of the fleet",
        )
        .as_bytes(),
    )
    .and_then(|()| f.sync_all())
    .with_context(|| format!("writing {}", out.display()))?;
    Ok(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    #[test]
    fn the_recipient_line_is_added_or_replaced_in_the_store_block() {
        let text = "# top\napiVersion: fleet/v1\nkind: Store\nstore:\n  id: soho   # dir name\n  name: SoHo\n\n  # a comment\noverrides: {}\n";
        let once = set_store_recipient(text, R).expect("added");
        assert_eq!(
            once,
            format!(
                "# top\napiVersion: fleet/v1\nkind: Store\nstore:\n  id: soho   # dir name\n  name: SoHo\n  recipient: {R}     # fleet secret recipients\n\n  # a comment\noverrides: {{}}\n"
            )
        );
        let other = R.replace("ql3z", "qqqq");
        let twice = set_store_recipient(&once, &other).expect("replaced");
        assert_eq!(twice.matches("recipient:").count(), 1, "{twice}");
        assert!(twice.contains(&other));
        assert_eq!(remove_store_recipient(&twice), text);
        let flow = "store: {id: soho, name: SoHo}\n";
        let e = set_store_recipient(flow, R).expect_err("flow style");
        assert!(e.to_string().contains("write it as a block"), "{e}");
    }
}
