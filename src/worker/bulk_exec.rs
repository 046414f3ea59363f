//! Running the chunks of a bulk job inside a worker.

use super::segments::ParentGone;
use super::worker_loop::Worker;
use crate::job::protocol::{self as bulk, Joined, Operand};
use crate::kernel::{ChunkCall, OperandPtr};
use crate::layout::{ERROR_MSG_BYTES, MAX_OPERANDS};
use crate::sys;
use crate::unwind::PanicReport;

/// Claims and runs chunks of job `index`/`generation` until none is left.
pub(super) fn run(w: &mut Worker, index: u32, generation: u32) -> Result<(), ParentGone> {
    let ctrl = w.ctrl;
    let slot = ctrl.slot(w.slot_index);
    let Some(joined) = bulk::join(
        ctrl.job(index),
        ctrl.bitmap(index),
        generation,
        &ctrl.header().completions,
    ) else {
        return Ok(());
    };
    // Claim before mapping anything: a stale record for a finished job costs nothing.
    let Some(first) = joined.claim(slot) else {
        return Ok(());
    };
    let resolved = match operands(w, &joined)? {
        Ok(ops) => ops,
        Err(message) => {
            joined.fail(
                first,
                &job_message(&PanicReport {
                    message,
                    location: None,
                }),
            );
            joined.complete(first);
            return Ok(());
        }
    };
    // SAFETY: a successful claim proves the descriptor belongs to this job (`src/job/protocol.rs`),
    // and the parent wrote the kernel offset with `bulk_offset` in the same binary
    // (forked, or re-executed and fingerprint-checked at start-up), for a SIMD level
    // it checked this CPU supports.
    let kernel = unsafe { crate::kernel::bulk_from_offset(joined.desc.kernel) };
    let mut call = ChunkCall {
        params: joined.params_ptr(first),
        start: 0,
        len: 0,
        chunk: 0,
        origin: joined.desc.origin as usize,
        operands: resolved,
        context_count: joined.desc.context_count as usize,
        operand_count: joined.desc.operand_count as usize,
    };
    let mut chunk = first;
    loop {
        let range = joined.range(chunk);
        (call.start, call.len, call.chunk) = (range.start, range.len(), chunk.index as usize);
        slot.start_clock(sys::monotonic_ns(), joined.desc.chunk_timeout_ns);
        if joined.desc.chunk_timeout_ns != 0 {
            // A new deadline: wake the collector, which sleeps until the nearest one
            // it knows (a wake costs a system call only while it sleeps).
            ctrl.header().completions.notify(1);
        }
        let outcome = crate::unwind::catch(|| {
            // SAFETY: `operands` checked that every array holds its `extent` elements
            // from its offset, and chunk ranges and slots lie within the extents the
            // parent computed for this job. Output ranges are this worker's alone:
            // chunk indices are handed out once by the cursor CAS. Inputs are not
            // written during the job: the parent holds shared borrows of them (and
            // exclusive ones of the outputs) until the job finishes, and other
            // workers write only their own chunks' ranges and slots. The parameter
            // block holds the kernel's parameters and is not rewritten while we hold
            // a chunk (`src/job/protocol.rs`).
            unsafe { kernel(&call) }
        });
        slot.stop_clock();
        if let Err(report) = outcome {
            joined.fail(chunk, &job_message(&report));
        }
        slot.count_chunk();
        joined.complete(chunk);
        // Holds no chunk now; waits here while the collector decides a kill (SYNC K2).
        slot.leave_chunk();
        match joined.claim(slot) {
            Some(c) => chunk = c,
            None => return Ok(()),
        }
    }
}

/// Resolves the job's arrays to pointers, checking that each segment holds the
/// elements the job may touch.
fn operands(
    w: &mut Worker,
    joined: &Joined<'_>,
) -> Result<Result<[OperandPtr; MAX_OPERANDS], String>, ParentGone> {
    let mut resolved = [OperandPtr::NONE; MAX_OPERANDS];
    for (slot, &op) in resolved.iter_mut().zip(joined.desc.operands()) {
        match resolve(w, op)? {
            Ok(ptr) => {
                *slot = OperandPtr {
                    ptr,
                    extent: op.extent as usize,
                    elem_size: op.elem_size as usize,
                    type_tag: op.type_tag,
                }
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(resolved))
}

fn resolve(w: &mut Worker, op: Operand) -> Result<Result<*mut u8, String>, ParentGone> {
    let Some(map) = w.segments.get(op.id)? else {
        return Ok(Err(format!(
            "worker could not map array segment {} (not received, or out of memory)",
            op.id
        )));
    };
    let needed = op
        .extent
        .checked_mul(op.elem_size)
        .and_then(|b| b.checked_add(op.byte_off));
    match needed {
        Some(n) if n <= map.data_bytes() as u64 => {
            // SAFETY: byte_off is within the mapping's data (checked just above).
            Ok(Ok(unsafe { map.data_ptr().add(op.byte_off as usize) }))
        }
        _ => Ok(Err(format!(
            "array segment {} is smaller than the job says",
            op.id
        ))),
    }
}

/// `report` as a bulk job records it, in at most [`ERROR_MSG_BYTES`]: whole when
/// it fits. A longer one keeps its location whole and as much of its message as
/// fits before a note of how many bytes are left out, so the text is complete and
/// says what it lacks, never cut mid-word where the record ends.
fn job_message(report: &PanicReport) -> String {
    let whole = report.to_string();
    if whole.len() <= ERROR_MSG_BYTES {
        return whole;
    }
    let at = report
        .location
        .as_ref()
        .map(|l| format!(" (at {l})"))
        .unwrap_or_default();
    let message = &report.message;
    let note = |left: usize| {
        format!(
            " [... {left} more bytes of the panic message not shown: a bulk job keeps \
             {ERROR_MSG_BYTES} bytes of it]"
        )
    };
    // The note for the longest count it could state.
    let room = ERROR_MSG_BYTES.saturating_sub(at.len() + note(message.len()).len());
    let mut keep = room.min(message.len());
    while !message.is_char_boundary(keep) {
        keep -= 1;
    }
    // End at a word's end when one is in the second half of what fits.
    if let Some(space) = message[..keep].rfind(char::is_whitespace) {
        if space > keep / 2 {
            keep = space;
        }
    }
    let text = format!("{}{}{at}", &message[..keep], note(message.len() - keep));
    if text.len() <= ERROR_MSG_BYTES {
        text
    } else {
        // Only a location of hundreds of bytes gets here.
        format!(
            "a kernel panicked with a message of {} bytes at a location of {} bytes, more \
             than a bulk job keeps ({ERROR_MSG_BYTES} bytes)",
            message.len(),
            at.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(message: &str, location: Option<&str>) -> PanicReport {
        PanicReport {
            message: message.to_string(),
            location: location.map(str::to_string),
        }
    }

    #[test]
    fn a_message_that_fits_is_kept_whole() {
        let r = report("index out of bounds", Some("src/lib.rs:3:9"));
        assert_eq!(job_message(&r), "index out of bounds (at src/lib.rs:3:9)");
        let exact = "x".repeat(ERROR_MSG_BYTES);
        assert_eq!(job_message(&report(&exact, None)), exact);
    }

    #[test]
    fn a_long_message_keeps_its_location_and_says_what_it_left_out() {
        // Words of 9 bytes and multi-byte characters, longer than a job keeps.
        let words: Vec<String> = (0..200).map(|i| format!("wörd{i:04}")).collect();
        let message = words.join(" ");
        let r = report(&message, Some("src/kernels/stencil.rs:120:17"));
        let text = job_message(&r);
        assert!(text.len() <= ERROR_MSG_BYTES, "{} bytes", text.len());
        assert!(
            text.ends_with(" (at src/kernels/stencil.rs:120:17)"),
            "{text}"
        );
        let (head, rest) = text.split_once(" [... ").expect("the note");
        assert!(message.starts_with(head), "{head:?}");
        // Cut between words, not inside one.
        assert!(message[head.len()..].starts_with(' '), "{head:?}");
        let left: usize = rest.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(head.len() + left, message.len());
        assert!(rest.contains("more bytes of the panic message not shown"));
    }

    #[test]
    fn a_pathological_location_still_gives_a_complete_text() {
        let location = "l".repeat(ERROR_MSG_BYTES);
        let text = job_message(&report(&"m".repeat(1000), Some(&location)));
        assert!(text.len() <= ERROR_MSG_BYTES);
        assert!(text.starts_with("a kernel panicked with a message of 1000 bytes"));
    }
}
