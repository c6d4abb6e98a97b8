//! Timing whole commands, reading their peak RSS from the kernel, and the
//! statistics every table of the suite prints.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::Runs;

/// Repeated measurements of one quantity (seconds, reports/s, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.0.clone();
        s.sort_by(f64::total_cmp);
        s
    }

    /// The median (NaN when empty).
    pub fn median(&self) -> f64 {
        let s = self.sorted();
        match s.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// The nearest-rank percentile `p` (0–100).
    pub fn percentile(&self, p: f64) -> f64 {
        let s = self.sorted();
        if s.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
        s[rank.clamp(1, s.len()) - 1]
    }

    /// The spread of durations in seconds, in the unit [`super::secs`]
    /// gives their median: `22.6–31.6 ms (n=5)`.
    pub fn spread_secs(&self) -> String {
        if self.median() < 1.0 {
            self.spread(1000.0, 1, " ms")
        } else {
            self.spread(1.0, 3, " s")
        }
    }

    /// The spread as `min–max` in `unit`, scaled by `scale`, with the count.
    pub fn spread(&self, scale: f64, decimals: usize, unit: &str) -> String {
        format!(
            "{:.d$}–{:.d$}{unit} (n={})",
            self.min() * scale,
            self.max() * scale,
            self.len(),
            d = decimals
        )
    }
}

/// A command to run repeatedly: program, arguments, working directory and
/// extra environment. Cheap to clone, so the timing loop builds a fresh
/// [`Command`] for every run.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn dir(mut self, dir: &Path) -> Cmd {
        self.dir = Some(dir.to_path_buf());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Cmd {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// How the command reads in an error: the program's file name and the
    /// arguments.
    pub fn display(&self) -> String {
        let name = self
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut out = name;
        for a in &self.args {
            out.push(' ');
            out.push_str(&a.to_string_lossy());
        }
        out
    }

    /// Run once with no input, stdout discarded and stderr captured.
    fn run_quiet(&self) -> anyhow::Result<std::process::Output> {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("starting {}", self.program.display()))
    }

    /// The error of a run that exited with `status`: the command, the
    /// status and the end of what it printed.
    fn failed(&self, status: &std::process::ExitStatus, printed: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "{} failed ({status}): {}",
            self.display(),
            tail(printed, 20)
        )
    }

    /// Run once, output discarded except for the error message: the wall
    /// time, or an error naming the command, its status and its stderr.
    pub fn time_once(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let out = self.run_quiet()?;
        let took = started.elapsed();
        if !out.status.success() {
            return Err(self.failed(&out.status, &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(took)
    }

    /// Run once and answer stdout; an error if it fails.
    pub fn output(&self) -> anyhow::Result<String> {
        let out = self
            .command()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting {}", self.program.display()))?;
        if !out.status.success() {
            let text = format!(
                "{}\n{}",
                tail(&String::from_utf8_lossy(&out.stdout), 10),
                String::from_utf8_lossy(&out.stderr)
            );
            return Err(self.failed(&out.status, &text));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The peak RSS of one run, kB, as the kernel accounts it: the command
    /// runs under `bench peak-rss`, a fresh process whose only child it is,
    /// which reads `getrusage(RUSAGE_CHILDREN)` after the child exits.
    pub fn peak_rss_kb(&self, bench: &Path) -> anyhow::Result<u64> {
        let mut wrapped = Cmd::new(bench).arg("peak-rss").arg("--");
        wrapped.args.push(self.program.clone().into_os_string());
        wrapped.args.extend(self.args.iter().cloned());
        wrapped.dir.clone_from(&self.dir);
        wrapped.env.clone_from(&self.env);
        let out = wrapped.run_quiet()?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(self.failed(&out.status, &err));
        }
        parse_peak_rss(&err).with_context(|| format!("no peak RSS line in: {}", tail(&err, 5)))
    }
}

/// The prefix of the line `bench peak-rss` prints last on stderr.
pub const PEAK_RSS_PREFIX: &str = "bench peak-rss: peak RSS ";

fn parse_peak_rss(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(PEAK_RSS_PREFIX))
        .and_then(|rest| rest.trim_end_matches(" kB").trim().parse().ok())
}

/// `bench peak-rss -- PROGRAM ARGS…`: run the program, wait, print its peak
/// RSS (the kernel's `ru_maxrss` of the waited-for children of this fresh
/// process, which is the program and whatever it waited for) and exit with
/// its status.
pub fn peak_rss_main(argv: &[OsString]) -> anyhow::Result<i32> {
    let (program, args) = argv
        .split_first()
        .context("usage: bench peak-rss -- PROGRAM [ARGS…]")?;
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("starting {}", program.to_string_lossy()))?;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .context("getrusage(RUSAGE_CHILDREN)")?;
    // Linux reports ru_maxrss in kilobytes.
    eprintln!("{PEAK_RSS_PREFIX}{} kB", usage.max_rss());
    Ok(status.code().unwrap_or(1))
}

/// Time several commands, each its own number of warm-ups and timed runs,
/// interleaved (A B A B …, a command dropping out when it has had its
/// runs) so that the machine's drifting load falls on all of them alike.
pub fn time_interleaved(cmds: &[(&Cmd, Runs)]) -> anyhow::Result<Vec<Samples>> {
    let most = |f: fn(&Runs) -> usize| cmds.iter().map(|(_, r)| f(r)).max().unwrap_or(0);
    for i in 0..most(|r| r.warmup) {
        for (c, r) in cmds {
            if i < r.warmup {
                c.time_once()?;
            }
        }
    }
    let mut out = vec![Samples::default(); cmds.len()];
    for i in 0..most(|r| r.runs) {
        for ((c, r), s) in cmds.iter().zip(out.iter_mut()) {
            if i < r.runs {
                s.push(c.time_once()?.as_secs_f64());
            }
        }
    }
    Ok(out)
}

/// Two sample sets from [`time_interleaved`] of two commands.
pub fn two(mut v: Vec<Samples>) -> anyhow::Result<[Samples; 2]> {
    match (v.pop(), v.pop(), v.is_empty()) {
        (Some(b), Some(a), true) => Ok([a, b]),
        _ => anyhow::bail!("expected the samples of two commands"),
    }
}

/// The log line of a subject against its baseline.
pub fn compared(
    what: &str,
    subject: (&str, &Samples),
    base: (&str, &Samples),
    rss_kb: u64,
) -> String {
    format!(
        "{what}: {} {}, {} {}, ratio {:.3}, peak RSS {:.1} MB",
        subject.0,
        super::secs(subject.1.median()),
        base.0,
        super::secs(base.1.median()),
        subject.1.median() / base.1.median(),
        rss_kb as f64 / 1024.0
    )
}

/// The last `n` lines of `s`, trimmed.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A child process that is killed when dropped (servers: the edge, the git
/// daemon).
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    /// What it announced on stdout (`listening on ADDR`), if it does.
    pub addr: Option<String>,
}

impl Server {
    /// Start `cmd` with stdout piped; when `announce` is set, wait for its
    /// `listening on ADDR` line. stderr goes to `log`.
    pub fn start(cmd: &Cmd, log: &Path, announce: bool) -> anyhow::Result<Server> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = cmd
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("starting {}", cmd.program.display()))?;
        let addr = if announce {
            match testkit::listening_addr(&mut child, Duration::from_secs(30)) {
                Ok(a) => Some(a),
                Err(line) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "{} did not announce its address (printed {line:?}); log {}:\n{}",
                        cmd.program.display(),
                        log.display(),
                        tail(&std::fs::read_to_string(log).unwrap_or_default(), 20)
                    );
                }
            }
        } else {
            None
        };
        Ok(Server { child, addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_percentile_and_spread() {
        let s = Samples(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!(s.median(), 2.5);
        assert_eq!(s.min(), 1.0);
        assert_eq!(s.max(), 10.0);
        assert_eq!(s.percentile(50.0), 2.0);
        assert_eq!(s.percentile(99.0), 10.0);
        assert_eq!(s.spread(1000.0, 0, " ms"), "1000–10000 ms (n=4)");
        assert!(Samples::default().median().is_nan());
    }

    #[test]
    fn peak_rss_line_is_read_from_the_end() {
        let err = format!("noise\n{PEAK_RSS_PREFIX}1234 kB\n");
        assert_eq!(parse_peak_rss(&err), Some(1234));
        assert_eq!(parse_peak_rss("nothing"), None);
    }
}
