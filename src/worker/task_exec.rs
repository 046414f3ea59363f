//! Running generic tasks inside a worker, and reporting their completions.

use std::io;
use std::time::Duration;

use super::segments::ParentGone;
use super::worker_loop::Worker;
use crate::layout::{CompletionRecord, INLINE_BYTES, OutcomeCode, Payload, TaskRecord};
use crate::shm::arena::ArenaMap;
use crate::sync::{Ordering, fence};
use crate::sys;
use crate::task::{codec, trampolines};

impl Worker {
    /// Runs one task record (its claim already released) and pushes its completion.
    pub(super) fn run_task(&mut self, record: &TaskRecord) -> Result<(), ParentGone> {
        let ctrl = self.ctrl;
        let slot = ctrl.slot(self.slot_index);
        // One result buffer, reused from task to task.
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let outcome = match Self::args_in(&self.task_arena, record) {
            Err(message) => {
                out = message.into_bytes();
                OutcomeCode::Codec
            }
            Ok(args) => {
                slot.start_clock(sys::monotonic_ns(), record.timeout_ns);
                if record.timeout_ns != 0 {
                    // A new deadline: the collector sleeps until the nearest one it
                    // knows, so wake it to take this one into account.
                    ctrl.header().completions.notify(1);
                }
                // SAFETY: the offset was produced by `task_offset` in the parent, which
                // runs the same binary (forked, or re-executed and fingerprint-checked).
                let f = unsafe { trampolines::task_from_offset(record.code) };
                // A context task reads its context from a segment of ours.
                let segments = &mut self.segments;
                let mut resolve = |id: u64| {
                    let map = segments.get(id).ok().flatten()?;
                    Some((map.data_ptr().cast_const(), map.data_bytes()))
                };
                codec::take_context_failure(); // none left over from an earlier task
                let ran = crate::unwind::catch(|| {
                    crate::task::context::scope(&mut resolve, || {
                        // SAFETY: `f` is a trampoline of this binary (see above); its
                        // contract asks nothing more of the arguments, which it decodes
                        // and checks.
                        unsafe { f(args, &mut out) }
                    })
                });
                slot.stop_clock();
                match ran {
                    Ok(Ok(())) => OutcomeCode::Ok,
                    Ok(Err(message)) => {
                        out = message.into_bytes();
                        OutcomeCode::Codec
                    }
                    // An `apply` whose context could not be decoded: its codec
                    // failure, not the panic that carried it out.
                    Err(report) => match codec::take_context_failure() {
                        Some(failure) => {
                            out = failure.into_bytes();
                            OutcomeCode::Codec
                        }
                        None => match codec::encode_report(&report) {
                            Ok(b) => {
                                out = b;
                                OutcomeCode::Panicked
                            }
                            Err(m) => {
                                out = m.into_bytes();
                                OutcomeCode::Codec
                            }
                        },
                    },
                }
            }
        };
        // Counted before the completion push, whose Release (SYNC S2) publishes the
        // count with the result: whoever has received a task's result sees it counted
        // in `Pool::stats` (the bulk path counts a chunk before completing it too).
        slot.count_task();
        self.complete(record.id, outcome, &out)?;
        // After the completion push: a death before this is safe (completions drain
        // first). Waits here while the collector decides a kill (SYNC K2).
        slot.leave_task();
        // Keep the allocation for the next task, unless a huge result inflated it.
        if out.capacity() <= 16 << 20 {
            self.out = out;
        }
        Ok(())
    }

    /// The argument bytes of a record: in the record itself, or borrowed from the
    /// task arena. (An associated function, so that it borrows only the arena.)
    fn args_in<'a>(arena: &'a ArenaMap, record: &'a TaskRecord) -> Result<&'a [u8], String> {
        let p = &record.payload;
        if !p.in_arena() {
            return Ok(p.inline_bytes());
        }
        // SAFETY: the parent stored the arguments in this block before pushing the
        // record (Release; our claim was Acquire) and frees the block only after our
        // completion or our death, so it is stable while we read it.
        unsafe { arena.read(p.arena_off, p.len) }
            .map_err(|e| format!("read the task's arguments: {e}"))
    }

    /// Pushes a completion record, the payload inline or in the result arena, and
    /// wakes the collector unless a parent thread is polling. A payload the arena
    /// cannot take is replaced by a whole account of why ([`Self::unstored`]).
    pub(super) fn complete(
        &mut self,
        id: u64,
        outcome: OutcomeCode,
        bytes: &[u8],
    ) -> Result<(), ParentGone> {
        let (outcome, payload) = match self.payload_of(bytes) {
            Ok(payload) => (outcome, payload),
            Err(e) => self.unstored(outcome, bytes.len(), &e),
        };
        self.push_completion(CompletionRecord {
            outcome: outcome as u32,
            generation: self.generation,
            id,
            payload,
        })
    }

    /// `bytes` as a payload: in the record when they fit, else in the result arena.
    fn payload_of(&mut self, bytes: &[u8]) -> io::Result<Payload> {
        if bytes.len() <= INLINE_BYTES {
            return Ok(Payload::inline(bytes));
        }
        let off = self.results.store(bytes)?;
        Ok(Payload::in_arena_at(bytes.len(), off))
    }

    /// What to send instead of a `len`-byte payload that the result arena could not
    /// take (`e`): the reason, whole. A task's outcome becomes a codec failure (the
    /// parent's `Error::Transfer`), an initializer's a report of the same text. The
    /// full text goes through the arena like any payload; if the arena cannot take
    /// even that, a shorter text that fits in the record and is still complete
    /// ([`short_account`]). No text is ever cut to fit.
    fn unstored(
        &mut self,
        outcome: OutcomeCode,
        len: usize,
        e: &io::Error,
    ) -> (OutcomeCode, Payload) {
        let what = match outcome {
            OutcomeCode::InitFailed => "the initializer's panic report",
            OutcomeCode::Panicked => "the task's panic report",
            _ => "the task's result",
        };
        let full =
            format!("the worker could not store {what} ({len} bytes) in its result arena: {e}");
        let short = short_account(len, e);
        match outcome {
            OutcomeCode::InitFailed => {
                let report = |message: &str| {
                    codec::encode_report(&crate::unwind::PanicReport {
                        message: message.to_string(),
                        location: None,
                    })
                    .unwrap_or_default()
                };
                let payload = self
                    .payload_of(&report(&full))
                    .unwrap_or_else(|_| Payload::inline(&report(&short)));
                (OutcomeCode::InitFailed, payload)
            }
            _ => {
                let payload = self
                    .payload_of(full.as_bytes())
                    .unwrap_or_else(|_| Payload::inline(short.as_bytes()));
                (OutcomeCode::Codec, payload)
            }
        }
    }

    fn push_completion(&mut self, mut record: CompletionRecord) -> Result<(), ParentGone> {
        let ctrl = self.ctrl;
        let ring = ctrl.completion_ring(self.slot_index);
        let header = ctrl.header();
        loop {
            match ring.push(record) {
                Ok(()) => break,
                Err(back) => {
                    // The parent is behind: make sure it is awake, then give it time.
                    record = back;
                    header.completions.notify_always(1);
                    if sys::getppid() != self.server_pid {
                        return Err(ParentGone);
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
        // SYNC(P2): SeqCst fence between the push and the read of the polling flag;
        // pairs with SYNC P1/P3 in the parent (`src/pool/task_rings.rs`).
        fence(Ordering::SeqCst);
        if header.parent_polling.load(Ordering::Relaxed) == 0 {
            header.completions.notify(1);
        }
        Ok(())
    }

    /// Runs the pool's initializer, if any. On a panic, reports it and returns the
    /// exit code.
    pub(super) fn run_initializer(&mut self) -> Result<(), i32> {
        let ctrl = self.ctrl;
        let header = ctrl.header();
        if header.has_initializer == 0 {
            return Ok(());
        }
        let record = TaskRecord {
            code: header.init_code,
            payload: header.init_payload,
            ..TaskRecord::default()
        };
        let args = Self::args_in(&self.task_arena, &record)
            .map_err(|_| super::exit_code::INIT_FAILED)?
            .to_vec();
        // SAFETY: as in `run_task`: a trampoline offset from the parent's binary.
        let f = unsafe { trampolines::task_from_offset(record.code) };
        let mut out = Vec::new();
        // SAFETY: as in `run_task`.
        match crate::unwind::catch(|| unsafe { f(&args, &mut out) }) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => {
                let report = crate::unwind::PanicReport {
                    message: message.to_string(),
                    location: None,
                };
                self.report_init_failure(&report);
                Err(super::exit_code::INIT_FAILED)
            }
            Err(report) => {
                self.report_init_failure(&report);
                Err(super::exit_code::INIT_FAILED)
            }
        }
    }

    fn report_init_failure(&mut self, report: &crate::unwind::PanicReport) {
        if let Ok(bytes) = codec::encode_report(report) {
            let _ = self.complete(0, OutcomeCode::InitFailed, &bytes);
        }
    }
}

/// The longest account of an unstored payload [`short_account`] gives: it fits in a
/// completion record as text, and as a panic report (postcard adds a length byte
/// and the location's tag).
const SHORT_ACCOUNT_BYTES: usize = INLINE_BYTES - 8;

/// A complete account of a `len`-byte payload that could not be stored (`e`), of
/// at most [`SHORT_ACCOUNT_BYTES`]: sent when the result arena cannot take even the
/// full one. Shorter for being less specific, never cut.
fn short_account(len: usize, e: &io::Error) -> String {
    let with_kind = format!("{len}-byte result not stored: {}", e.kind());
    if with_kind.len() <= SHORT_ACCOUNT_BYTES {
        with_kind
    } else {
        // At most 46 bytes: a u64 has at most 20 digits.
        format!("{len}-byte result not stored")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_account_is_complete_and_fits_a_record_as_text_and_as_a_report() {
        let kinds = [
            io::ErrorKind::FileTooLarge,
            io::ErrorKind::OutOfMemory,
            io::ErrorKind::StorageFull,
            io::ErrorKind::InvalidInput,
            io::ErrorKind::Other,
        ];
        for kind in kinds {
            for len in [73, 1 << 30, usize::MAX] {
                let text = short_account(len, &io::Error::from(kind));
                assert!(text.len() <= SHORT_ACCOUNT_BYTES, "{text:?}");
                assert!(text.starts_with(&format!("{len}-byte result not stored")));
                let report = codec::encode_report(&crate::unwind::PanicReport {
                    message: text.clone(),
                    location: None,
                })
                .unwrap();
                assert!(report.len() <= INLINE_BYTES, "{} bytes", report.len());
            }
        }
        let text = short_account(1 << 30, &io::Error::from(io::ErrorKind::FileTooLarge));
        assert_eq!(text, "1073741824-byte result not stored: file too large");
    }
}
