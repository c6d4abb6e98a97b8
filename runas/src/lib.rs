//! Root on a service user's directory (issue #16): a store tool run with
//! `sudo` writes root-owned files into a directory a service uses as the
//! `fleet` user — the reconciler's `node.key` and mirror refs, a restored
//! `edge.db` — and the service then fails with "Permission denied" until
//! someone finds the cause; a restored database owned by root keeps the
//! POS down. The store tools' commands that write such a directory refuse
//! it, and say what to run instead.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User};

/// Running as root on a directory that another user owns.
#[derive(Debug, thiserror::Error)]
#[error(
    "{program} is running as root, but {what} {dir} belongs to {owner}: \
     files written now would be root's, and the service, which runs as {owner}, could no longer \
     use them. Run it as the owner instead: sudo -u {user} {program} {args}. If root has \
     already written there: sudo chown -R {user}: {dir}",
    dir = .dir.display()
)]
pub struct RootOnOwnedDir {
    /// `fleet-reconciler`.
    pub program: &'static str,
    /// `its state directory`.
    pub what: &'static str,
    pub dir: PathBuf,
    /// `fleet (uid 999)`.
    pub owner: String,
    /// What `sudo -u` takes: the name, or `#uid` when it has none.
    pub user: String,
    /// The command line after the program name, for the advice.
    pub args: String,
}

/// The command line after the program name, quoted for a shell, for the
/// advice (`--config '/etc/fleet/my config.toml' once`).
pub fn command_line() -> String {
    shell_words(std::env::args().skip(1))
}

fn shell_words(args: impl Iterator<Item = String>) -> String {
    let args: Vec<String> = args.collect();
    // A word with a NUL cannot be written for a shell; show it as it is.
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "))
}

/// Refuse when this process is root and `dir` exists and belongs to
/// another user. A missing directory is fine (it is made with the right
/// owner by the package or the installer, or by whoever runs the tool).
/// `what` names the directory in the message (`its state directory`).
pub fn refuse_root_on_owned_dir(
    program: &'static str,
    what: &'static str,
    dir: &Path,
) -> Result<(), Box<RootOnOwnedDir>> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    // `./edge.db` has the parent "": the current directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    let uid = meta.uid();
    if uid == 0 {
        return Ok(());
    }
    let name = user_name(uid);
    Err(Box::new(RootOnOwnedDir {
        program,
        what,
        dir: dir.to_path_buf(),
        owner: match &name {
            Some(n) => format!("{n} (uid {uid})"),
            None => format!("uid {uid}"),
        },
        user: name.unwrap_or_else(|| format!("'#{uid}'")),
        args: command_line(),
    }))
}

/// The user name of `uid` (through NSS, as `ls -l` finds it), if it has one.
fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_to_run() {
        let e = RootOnOwnedDir {
            program: "fleet-reconciler",
            what: "its state directory",
            dir: "/var/lib/fleet".into(),
            owner: "fleet (uid 999)".into(),
            user: "fleet".into(),
            args: "--config /etc/fleet/reconciler.toml once".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains(
                "sudo -u fleet fleet-reconciler --config /etc/fleet/reconciler.toml once"
            ),
            "{text}"
        );
        assert!(
            text.contains("sudo chown -R fleet: /var/lib/fleet"),
            "{text}"
        );
    }

    #[test]
    fn the_advice_quotes_what_a_shell_would_split() {
        let words = ["--config", "/etc/fleet/my config.toml", "once"].map(String::from);
        assert_eq!(
            shell_words(words.into_iter()),
            "--config '/etc/fleet/my config.toml' once"
        );
        assert_eq!(shell_words(["status".to_owned()].into_iter()), "status");
    }

    #[test]
    fn root_is_user_zero_in_passwd() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
