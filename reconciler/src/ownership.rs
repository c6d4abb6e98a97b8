//! Root on someone else's state directory (issue #16): a store tool run
//! with `sudo` writes root-owned files (`node.key`, the mirror's
//! `FETCH_HEAD` and refs) into the directory the daemon uses as the `fleet`
//! user, and the daemon then fails with "Permission denied" until someone
//! finds the cause. The commands that write the state directory refuse
//! that, and say what to run instead.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Running as root on a state directory that another user owns.
#[derive(Debug, thiserror::Error)]
#[error(
    "fleet-reconciler is running as root, but its state directory {dir} belongs to {owner}: \
     files written now would be root's, and the daemon, which runs as {owner}, could no longer \
     use them. Run it as the owner instead: sudo -u {user} fleet-reconciler {args}. If root has \
     already written there: sudo chown -R {user}: {dir}",
    dir = .dir.display()
)]
pub struct RootOnOwnedState {
    pub dir: PathBuf,
    /// `fleet (uid 999)`.
    pub owner: String,
    /// What `sudo -u` takes: the name, or `#uid` when it has none.
    pub user: String,
    /// The command line after the program name, for the advice.
    pub args: String,
}

/// Refuse when this process is root and `state_dir` exists and belongs to
/// another user. A missing directory is fine (it is made with the right
/// owner by the package or the installer, or by whoever runs the tool).
pub fn check_state_owner(state_dir: &Path, args: &str) -> Result<(), RootOnOwnedState> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(state_dir) else {
        return Ok(());
    };
    let uid = meta.uid();
    if uid == 0 {
        return Ok(());
    }
    let name = user_name(uid);
    Err(RootOnOwnedState {
        dir: state_dir.to_path_buf(),
        owner: match &name {
            Some(n) => format!("{n} (uid {uid})"),
            None => format!("uid {uid}"),
        },
        user: name.unwrap_or_else(|| format!("'#{uid}'")),
        args: args.to_owned(),
    })
}

/// The name of `uid` in `/etc/passwd`, if it has one there.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_to_run() {
        let e = RootOnOwnedState {
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
    fn root_is_user_zero_in_passwd() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
