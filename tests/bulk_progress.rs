//! `Bulk::progress` (feature `progress`): a bar of chunks run, drawn on a terminal
//! while the caller waits, full when the operation succeeds, where it got to when
//! it fails, its line ended either way; nothing where standard error is not a
//! terminal.
//!
//! The terminal is `script`'s pseudo-terminal (util-linux): the test runs its own
//! binary's `child` under `script`, and reads what the child drew. Without
//! `script` the terminal half says so and passes.
#![cfg(feature = "progress")]

#[macro_use]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use shmpool::{CancelMode, CancelOutcome, CancelToken, Error, Pool, SharedArray};

const CHILD: &str = "BULK_PROGRESS_CHILD";
const CHUNKS: usize = 64;
const CHUNK_LEN: usize = 1000;

/// What the child runs with a bar, each followed by a line of its own: a slow map
/// of 64 chunks, a reduction, a map that fails at chunk 40 on one worker, and a
/// map cancelled part way.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let pool = Pool::new(2).unwrap();
    let x = SharedArray::<f64>::filled(CHUNKS * CHUNK_LEN, 4.0).unwrap();
    let mut y = SharedArray::zeroed(x.len()).unwrap();
    pool.bulk()
        .progress(true)
        .chunk_len(CHUNK_LEN)
        .map_chunks_into(&x, &mut y, |x: &[f64], y: &mut [f64]| {
            std::thread::sleep(Duration::from_millis(10));
            for (y, x) in y.iter_mut().zip(x) {
                *y = x.sqrt();
            }
        })
        .unwrap();
    println!("after the map: y[0] = {}", y[0]);
    let total = pool
        .bulk()
        .progress(true)
        .chunk_len(CHUNK_LEN)
        .sum(&y)
        .unwrap();
    println!("after the sum: {total}");
    y[40 * CHUNK_LEN] = 2.5;
    let one = Pool::new(1).unwrap();
    let failed = one
        .bulk()
        .progress(true)
        .chunk_len(CHUNK_LEN)
        .for_each_chunk_mut(&mut y, |c: &mut [f64]| {
            assert!(c[0] != 2.5, "chunk 40 fails");
            c[0] = 1.0;
        });
    // Chunk 40 panicked, and the chunks after it were skipped.
    let panicked = match &failed {
        Err(Error::ChunksLost { errors }) => {
            matches!(&errors[0], Error::KernelPanicked { chunk, .. } if chunk.start == 40 * CHUNK_LEN)
        }
        _ => false,
    };
    println!("after the failure: {panicked}");
    // Cancelled part way from another thread: the bar stays at the chunks that
    // ran to their end, which the error names.
    let token = CancelToken::new();
    let canceller = token.clone();
    let cancel = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        canceller.cancel_with(CancelMode::LetFinish)
    });
    let r = pool
        .bulk()
        .progress(true)
        .chunk_len(CHUNK_LEN)
        .cancel_token(&token)
        .for_each_chunk_mut(&mut y, |c: &mut [f64]| {
            std::thread::sleep(Duration::from_millis(20));
            c[0] = 3.0;
        });
    assert_eq!(cancel.join().unwrap(), CancelOutcome::Cancelled);
    let Err(Error::MapCancelled { completed, .. }) = r else {
        panic!("{r:?}")
    };
    let ran: usize = completed.iter().map(|r| r.len() / CHUNK_LEN).sum();
    println!("after the cancel: {ran}");
}

/// Runs `child` under `script` (a terminal), or `None` without `script`.
fn child_on_a_terminal() -> Option<String> {
    let exe = std::env::current_exe().unwrap();
    let command = format!(
        "{} --exact child --nocapture --test-threads=1",
        exe.display()
    );
    let out = match Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: no `script` to give the child a terminal: {e}");
            return None;
        }
    };
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The positions the bar was drawn at in `text` (`k/64 chunks`), in order.
fn positions(text: &str) -> Vec<usize> {
    let tail = format!("/{CHUNKS} chunks");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&tail) {
        let digits: String = rest[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        found.push(digits.parse().expect("a position before the total"));
        rest = &rest[at + tail.len()..];
    }
    found
}

/// `text[..line]` ends the bar's line before `line` starts, and the bar's last
/// position there is returned.
fn last_bar_before(text: &str, line: &str) -> usize {
    let next = text
        .find(line)
        .unwrap_or_else(|| panic!("{line:?} in {text:?}"));
    let bar = text[..next]
        .rfind(" chunks")
        .unwrap_or_else(|| panic!("no bar before {line:?}: {text:?}"));
    let between = &text[bar..next];
    assert!(
        between.ends_with('\n'),
        "the line after the bar starts on the bar's line: {between:?}"
    );
    *positions(&text[..next]).last().unwrap()
}

#[test]
fn the_bar_counts_chunks_and_ends_its_line_on_a_terminal() {
    let Some(text) = child_on_a_terminal() else {
        return;
    };
    // The map: drawn part way while it ran, then full.
    let map = text.find("after the map").expect("the map's line");
    let drawn = positions(&text[..map]);
    assert!(
        drawn.iter().any(|&p| p > 0 && p < CHUNKS),
        "no position between 0 and {CHUNKS} was drawn while the map ran: {drawn:?}"
    );
    assert!(drawn.windows(2).all(|w| w[0] <= w[1]), "{drawn:?}");
    assert_eq!(last_bar_before(&text, "after the map"), CHUNKS, "{text}");
    // The reduction: full.
    assert_eq!(last_bar_before(&text, "after the sum"), CHUNKS, "{text}");
    // The failure on one worker: chunks 0 to 40 ran (40 panicked), the rest were
    // skipped; the bar stays there.
    assert!(text.contains("after the failure: true"), "{text}");
    assert_eq!(last_bar_before(&text, "after the failure"), 41, "{text}");
    // The cancel: the bar stays at the chunks that ran, as many as the error
    // names, part way.
    let line = text.find("after the cancel: ").expect("the cancel's line");
    let ran: usize = text[line + "after the cancel: ".len()..]
        .lines()
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("the chunks the cancel let run");
    assert!(
        ran > 0 && ran < CHUNKS,
        "{ran} of {CHUNKS} chunks ran: {text}"
    );
    assert_eq!(last_bar_before(&text, "after the cancel"), ran, "{text}");
}

/// Without a terminal nothing is drawn, and nothing is written for the bar.
#[test]
fn no_bar_is_written_where_standard_error_is_not_a_terminal() {
    let out = common::rerun_self("child", CHILD, Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("after the failure: true"), "{stdout}");
    assert!(stdout.contains("after the cancel: "), "{stdout}");
    assert!(!stderr.contains("chunks"), "{stderr}");
    assert!(!stdout.contains(" chunks"), "{stdout}");
}
