//! The quickstart's child processes, and how none outlives it.
//!
//! Every server runs in one process group of its own (not the terminal's,
//! so Ctrl-C reaches only the quickstart, which then stops them in order:
//! reconcilers, edges, status service; SIGTERM, up to [`STOP_GRACE`], then
//! SIGKILL). Should the quickstart itself die without stopping them (SIGKILL,
//! a crash), the guard — a second `fleet` process started first, in its own
//! group, whose standard input is a pipe from the quickstart — sees that
//! pipe close and stops the group the same way (ADR 27).

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group, test_kill_process_group};

use super::{Event, QuickstartError};

/// How long a child has to stop after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a server has to print `listening on ADDR`.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);

/// Wait up to `timeout` for `child` to exit, without blocking the runtime.
pub async fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One long-running child.
#[derive(Debug)]
pub struct Part {
    /// What it is, e.g. `fleet-edge acme/soho`.
    pub name: String,
    pub log: PathBuf,
    /// Stop order: lower first.
    pub tier: u8,
    child: Child,
    exited: Option<ExitStatus>,
}

/// Every child of one quickstart, and the guard.
#[derive(Debug)]
pub struct Children {
    parts: Vec<Part>,
    group: Option<Pid>,
    guard: Option<(Child, ChildStdin)>,
}

impl Children {
    /// Start the guard for `dir` (`fleet quickstart-guard`).
    pub fn new(fleet: &Path, dir: &Path) -> Result<Children, QuickstartError> {
        let mut child = Command::new(fleet)
            .arg("quickstart-guard")
            .arg("--dir")
            .arg(dir)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| QuickstartError::Io {
                what: format!("starting the guard {} quickstart-guard", fleet.display()),
                source,
            })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        Ok(Children {
            parts: Vec::new(),
            group: None,
            guard: Some((child, stdin)),
        })
    }

    /// Put `cmd` into the quickstart's process group (the first child makes it).
    fn grouped(&self, cmd: &mut Command) {
        cmd.process_group(self.group.map(|p| p.as_raw_nonzero().get()).unwrap_or(0));
    }

    fn joined(&mut self, child: &Child) -> Result<(), QuickstartError> {
        if self.group.is_none() {
            let pid = Pid::from_child(child);
            self.group = Some(pid);
            if let Some((_, stdin)) = &mut self.guard {
                writeln!(stdin, "{}", pid.as_raw_nonzero())
                    .and_then(|()| stdin.flush())
                    .map_err(|source| QuickstartError::Io {
                        what: "telling the guard the process group".into(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// Start a server that prints `listening on ADDR` on stdout first;
    /// answers ADDR. Its stderr, and its stdout after that line, go to `log`.
    pub async fn spawn_server(
        &mut self,
        name: &str,
        tier: u8,
        cmd: Command,
        log: &Path,
    ) -> Result<String, QuickstartError> {
        let file = open_log(log)?;
        let stdout = self
            .start(name, tier, cmd, log, Stdio::piped())?
            .stdout
            .take()
            .expect("stdout is piped");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining, so that a later line never meets a closed pipe.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            let mut file = file;
            let _ = file.write_all(&rest);
        });
        let line = tokio::time::timeout(LISTEN_TIMEOUT, rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => Ok(addr.to_owned()),
            None => Err(QuickstartError::Part {
                part: name.to_owned(),
                problem: if line.trim().is_empty() {
                    format!(
                        "printed no `listening on` line within {} s",
                        LISTEN_TIMEOUT.as_secs()
                    )
                } else {
                    format!("printed {:?} instead of `listening on ADDR`", line.trim())
                },
                log: log.to_path_buf(),
            }),
        }
    }

    /// Start a daemon; its stdout and stderr go to `log`.
    pub fn spawn_daemon(
        &mut self,
        name: &str,
        tier: u8,
        cmd: Command,
        log: &Path,
    ) -> Result<(), QuickstartError> {
        let out = open_log(log)?;
        self.start(name, tier, cmd, log, Stdio::from(out))?;
        Ok(())
    }

    /// Start `cmd` in the group, its stderr appended to `log` and its
    /// stdout as given, and keep it as a part to stop later.
    fn start(
        &mut self,
        name: &str,
        tier: u8,
        mut cmd: Command,
        log: &Path,
        stdout: Stdio,
    ) -> Result<&mut Child, QuickstartError> {
        let err = open_log(log)?;
        self.grouped(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|source| QuickstartError::Io {
                what: format!("starting {name}"),
                source,
            })?;
        self.joined(&child)?;
        self.parts.push(Part {
            name: name.to_owned(),
            log: log.to_path_buf(),
            tier,
            child,
            exited: None,
        });
        Ok(&mut self.parts.last_mut().expect("a part was just pushed").child)
    }

    /// The first part that exited since the last look, if any.
    pub fn exited(&mut self) -> Option<(String, ExitStatus, PathBuf)> {
        for p in &mut self.parts {
            if p.exited.is_none()
                && let Ok(Some(status)) = p.child.try_wait()
            {
                p.exited = Some(status);
                return Some((p.name.clone(), status, p.log.clone()));
            }
        }
        None
    }

    /// Stop every part, tier by tier, then the guard.
    pub async fn shutdown(&mut self, progress: &mut dyn FnMut(Event)) {
        let mut tiers: Vec<u8> = self.parts.iter().map(|p| p.tier).collect();
        tiers.sort_unstable();
        tiers.dedup();
        for tier in tiers {
            let running: Vec<usize> = (0..self.parts.len())
                .filter(|&i| self.parts[i].tier == tier && self.parts[i].exited.is_none())
                .collect();
            for &i in &running {
                let _ = kill_process(Pid::from_child(&self.parts[i].child), Signal::TERM);
            }
            let deadline = Instant::now() + STOP_GRACE;
            for &i in &running {
                let p = &mut self.parts[i];
                let left = deadline.saturating_duration_since(Instant::now());
                let forced = match wait_bounded(&mut p.child, left).await {
                    Some(_) => false,
                    None => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        true
                    }
                };
                progress(Event::Stopped {
                    part: p.name.clone(),
                    forced,
                });
            }
        }
        for p in &mut self.parts {
            let _ = p.child.try_wait();
        }
        // Anything the parts started themselves.
        if let Some(group) = self.group {
            let _ = kill_process_group(group, Signal::KILL);
        }
        self.parts.clear();
        if let Some((mut guard, stdin)) = self.guard.take() {
            drop(stdin);
            if wait_bounded(&mut guard, STOP_GRACE + Duration::from_secs(5))
                .await
                .is_none()
            {
                let _ = guard.kill();
                let _ = guard.wait();
            }
        }
    }
}

impl Drop for Children {
    /// Last resort (a panic): nothing may outlive the quickstart.
    fn drop(&mut self) {
        for p in &mut self.parts {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

fn open_log(path: &Path) -> Result<File, QuickstartError> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| QuickstartError::Io {
            what: format!("opening {}", path.display()),
            source,
        })
}

/// `fleet quickstart-guard`: read the process group id from `input`, wait
/// until `input` closes (the quickstart exited, however it ended), then stop
/// what is left of that group: SIGTERM, up to [`STOP_GRACE`], SIGKILL.
pub fn guard(input: impl std::io::Read) {
    let mut reader = BufReader::new(input);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let group = line.trim().parse::<i32>().ok().and_then(Pid::from_raw);
    // Blocks until the quickstart closes the pipe or dies.
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
    let Some(group) = group else { return };
    if kill_process_group(group, Signal::TERM).is_err() {
        return; // Nothing left: the quickstart stopped everything itself.
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if test_kill_process_group(group).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill_process_group(group, Signal::KILL);
}

/// Why a command run by [`output`] gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("cannot start it: {0}")]
    Spawn(std::io::Error),
    #[error("{status}: {stderr}")]
    Failed {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("did not finish within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Run `cmd` to completion within `timeout`; answers its stdout, or the
/// reason it failed (with its stderr).
pub async fn output(cmd: &mut Command, timeout: Duration) -> Result<String, ChildError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ChildError::Spawn)?;
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, timeout).await;
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(stdout),
        Some(status) => Err(ChildError::Failed {
            status,
            stderr: stderr.trim().to_owned(),
        }),
        None => Err(ChildError::Timeout(timeout)),
    }
}
