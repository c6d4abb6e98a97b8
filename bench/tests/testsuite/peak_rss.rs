//! `bench peak-rss`: the kernel's own peak RSS of a finished command, which
//! every memory figure of the benchmark suite comes from.

use std::process::Command;

const PREFIX: &str = "bench peak-rss: peak RSS ";

fn peak_rss(args: &[&str]) -> (Option<i32>, Option<u64>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("peak-rss")
        .arg("--")
        .args(args)
        .output()
        .expect("run bench peak-rss");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let kb = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(PREFIX))
        .and_then(|r| r.trim_end_matches(" kB").parse().ok());
    (out.status.code(), kb, err)
}

#[test]
fn a_command_that_touches_64_mib_peaks_above_it_and_a_small_one_does_not() {
    let (code, big, err) = peak_rss(&[
        "python3",
        "-c",
        "b = b'x' * (64 * 1024 * 1024); print(len(b))",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let big = big.unwrap_or_else(|| panic!("no peak RSS line: {err}"));
    assert!(big >= 64 * 1024, "64 MiB written, peak RSS {big} kB");

    let (code, small, err) = peak_rss(&["sh", "-c", "true"]);
    assert_eq!(code, Some(0), "{err}");
    let small = small.unwrap_or_else(|| panic!("no peak RSS line: {err}"));
    assert!(
        small < big / 4,
        "sh -c true peaked at {small} kB, python at {big} kB"
    );
}

#[test]
fn the_exit_status_of_the_command_is_passed_on() {
    let (code, kb, err) = peak_rss(&["sh", "-c", "exit 3"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        kb.is_some(),
        "the peak is printed for a failing command too: {err}"
    );
}

#[test]
fn a_missing_program_is_an_error_that_names_it() {
    let (code, kb, err) = peak_rss(&["/nonexistent/program"]);
    assert_ne!(code, Some(0));
    assert!(kb.is_none());
    assert!(err.contains("/nonexistent/program"), "{err}");
}
