//! Running the chunks of a bulk job inside a worker.

use super::Worker;
use super::segments::ParentGone;
use crate::job::protocol::{self as bulk, Joined, Operand};
use crate::layout::{JobKind, WorkerSlot};
use crate::sync::Ordering;
use crate::sys;

/// Claims and runs chunks of job `index`/`generation` until none is left.
pub(super) fn run(w: &mut Worker, index: u32, generation: u32) -> Result<(), ParentGone> {
    let ctrl = w.ctrl;
    let slot = ctrl.slot(w.slot_index);
    let Some(joined) = bulk::join(ctrl.job(index), ctrl.bitmap(index), generation) else {
        return Ok(());
    };
    // Claim before mapping anything: a stale record for a finished job costs nothing.
    let Some(first) = joined.claim(slot) else {
        return Ok(());
    };
    let (input, output) = match operands(w, &joined)? {
        Ok(ptrs) => ptrs,
        Err(message) => {
            joined.fail(first, &message);
            joined.complete(first);
            return Ok(());
        }
    };
    // SAFETY: a successful claim proves the descriptor belongs to this job (bulk.rs),
    // and the parent wrote the kernel offset with `bulk_offset` in the same binary
    // (forked, or re-executed and fingerprint-checked at start-up).
    let kernel = unsafe { crate::kernel::bulk_from_offset(joined.desc.kernel) };
    let (in_size, out_size) = (
        joined.desc.input.elem_size as usize,
        joined.desc.output.elem_size as usize,
    );
    let mut chunk = first;
    loop {
        let range = joined.range(chunk);
        start_clock(slot, joined.desc.chunk_timeout_ns);
        let outcome = crate::unwind::catch(|| {
            // SAFETY: `operands` checked that both arrays hold `len` elements from
            // their offsets, so `range` is in bounds of both mappings. The output range
            // is this worker's alone: chunk indices are handed out once by the cursor
            // CAS. The input is not written during the job: the parent holds a shared
            // borrow of it (and an exclusive one of the output) until the job
            // finishes, and other workers write only their own output chunks.
            unsafe {
                kernel(
                    input.add(range.start * in_size),
                    output.add(range.start * out_size),
                    range.len(),
                )
            }
        });
        slot.deadline_ns.store(0, Ordering::Relaxed);
        slot.started_ns.store(0, Ordering::Relaxed);
        if let Err(report) = outcome {
            joined.fail(chunk, &report.to_string());
        }
        slot.chunks_done.fetch_add(1, Ordering::Relaxed);
        joined.complete(chunk);
        match joined.claim(slot) {
            Some(c) => chunk = c,
            None => return Ok(()),
        }
    }
}

fn start_clock(slot: &WorkerSlot, timeout_ns: u64) {
    let now = sys::monotonic_ns();
    slot.started_ns.store(now, Ordering::Relaxed);
    let deadline = if timeout_ns == 0 {
        0
    } else {
        now.saturating_add(timeout_ns)
    };
    slot.deadline_ns.store(deadline, Ordering::Relaxed);
}

/// Resolves the job's arrays to pointers, checking that they are large enough.
fn operands(
    w: &mut Worker,
    joined: &Joined<'_>,
) -> Result<Result<(*const u8, *mut u8), String>, ParentGone> {
    let d = &joined.desc;
    let output = match resolve(w, d.output, d.len)? {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    if d.kind == JobKind::InPlace {
        return Ok(Ok((output.cast_const(), output)));
    }
    let input = match resolve(w, d.input, d.len)? {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok((input.cast_const(), output)))
}

fn resolve(w: &mut Worker, op: Operand, len: u64) -> Result<Result<*mut u8, String>, ParentGone> {
    let Some(map) = w.segments.get(op.id)? else {
        return Ok(Err(format!(
            "worker could not map array segment {} (not received, or out of memory)",
            op.id
        )));
    };
    let needed = len
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
