//! The types that live in shared memory, and the layout of a pool's control segment.
//!
//! Everything here is `#[repr(C)]`, holds no pointers (only offsets and ids), and is
//! valid when every byte is zero, which is how a fresh memfd reads. Such types carry
//! the [`ShmSafe`] marker. Fields that more than one process writes after start-up
//! are atomics; the rest are written once by the creator before any worker maps the
//! segment, and only read afterwards.
//!
//! ```text
//! control segment (one memfd per pool)
//! ┌──────────────────────┐ 0
//! │ ControlHeader        │ magic, version, sizes, offsets, event counts, flags
//! ├──────────────────────┤ slots_off
//! │ WorkerSlot × W       │ pid, generation, state, current task / chunk, deadline
//! ├──────────────────────┤ submit_off
//! │ MpmcHeader + slots   │ the submission ring (TaskRecord per slot)
//! ├──────────────────────┤ completions_off
//! │ (SpscHeader+slots)×W │ one completion ring per worker slot
//! ├──────────────────────┤ jobs_off
//! │ JobEntry × J         │ bulk array jobs
//! ├──────────────────────┤ bitmaps_off
//! │ done-bitmaps × J     │ one bit per chunk, for post-mortem accounting
//! └──────────────────────┘ total_len
//! ```

use crate::ring::mpmc::{MpmcHeader, MpmcRing, MpmcSlot};
use crate::ring::spsc::{SpscHeader, SpscRing};
use crate::slot::WorkerSlot;
use crate::sync::{AtomicU32, AtomicU64, Cell, Ordering, Padded};
use crate::wake::EventCount;

/// Marks a type that may be placed in memory shared between processes.
///
/// # Safety
/// Implementors are `#[repr(C)]`, contain no pointers or references (only integers,
/// atomics and arrays of them), and are valid when all their bytes are zero.
pub(crate) unsafe trait ShmSafe {}

/// "SHMPOOL1" in little-endian: the first word of every control segment.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMPOOL1");
/// Bumped whenever any type in this file changes shape. 2: `Payload::len` is 64 bits
/// and the arena flag is derived from it. 3: a slot's state and generation are one
/// lifecycle word, completions carry their writer's generation, and the result
/// arena's release counter lives in the arena. 4: the header carries the memory
/// controls (`worker_memory_limit`, `max_worker_rss`, `retired_for_memory`) and a
/// slot its `memory_limit_hit` flag. 6: a slot has its kill hold (`src/slot/record.rs`) and
/// `unmapped_through`.
pub(crate) const LAYOUT_VERSION: u32 = 6;

/// Bytes of a payload carried inside a ring record; larger payloads go to an arena.
pub(crate) const INLINE_BYTES: usize = 72;

/// Where a payload is: in the record itself when it fits ([`INLINE_BYTES`] or
/// fewer), else in an arena. The length alone says which, so no size short of the
/// arena's (64 GiB) is refused.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Payload {
    /// Length in bytes. Above [`INLINE_BYTES`], the bytes are at `arena_off`.
    pub len: u64,
    /// Offset in the arena, when the payload is there.
    pub arena_off: u64,
    /// The bytes, when the payload is inline.
    pub inline: [u8; INLINE_BYTES],
}

impl Default for Payload {
    fn default() -> Self {
        Payload {
            len: 0,
            arena_off: 0,
            inline: [0; INLINE_BYTES],
        }
    }
}

impl Payload {
    /// A payload carried in the record: `bytes` must fit ([`INLINE_BYTES`]).
    pub(crate) fn inline(bytes: &[u8]) -> Payload {
        let mut p = Payload {
            len: bytes.len() as u64,
            ..Payload::default()
        };
        p.inline[..bytes.len()].copy_from_slice(bytes);
        p
    }

    /// A payload of `len` bytes (more than [`INLINE_BYTES`]) at `off` in an arena.
    pub(crate) fn in_arena_at(len: usize, off: u64) -> Payload {
        debug_assert!(len > INLINE_BYTES);
        Payload {
            len: len as u64,
            arena_off: off,
            ..Payload::default()
        }
    }

    /// Whether the bytes are in an arena rather than in the record.
    pub(crate) fn in_arena(&self) -> bool {
        self.len > INLINE_BYTES as u64
    }

    /// The inline bytes (clamped, so a corrupt length cannot read past the record).
    pub(crate) fn inline_bytes(&self) -> &[u8] {
        &self.inline[..(self.len.min(INLINE_BYTES as u64)) as usize]
    }
}

/// What a submission record asks a worker to do. The record holds it as a `u32`
/// ([`TaskRecord::kind`]), decoded by whoever pops or recovers the record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// Run one generic task (serialized arguments, serialized result).
    Task = 1,
    /// Join bulk job `id >> 32` of generation `id as u32` and claim its chunks.
    JoinBulk = 2,
}

impl RecordKind {
    /// Decodes [`TaskRecord::kind`]; `None` for a value no version of this file
    /// writes (0, a zeroed record, included).
    pub(crate) fn decode(word: u32) -> Option<RecordKind> {
        match word {
            1 => Some(RecordKind::Task),
            2 => Some(RecordKind::JoinBulk),
            _ => None,
        }
    }
}

/// One record of the submission ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TaskRecord {
    /// A [`RecordKind`], as its `u32`.
    pub kind: u32,
    /// Reserved.
    pub flags: u32,
    /// The task id, or the bulk job (index << 32 | generation).
    pub id: u64,
    /// The trampoline to run, as an offset from the code anchor.
    pub code: i64,
    /// Kill the worker if the task runs longer than this (0: never).
    pub timeout_ns: u64,
    /// Serialized arguments.
    pub payload: Payload,
}

/// What a completion record reports. The record holds it as a `u32`
/// ([`CompletionRecord::outcome`]), decoded by the parent when it pops the record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutcomeCode {
    /// The task returned; the payload is its serialized result.
    Ok = 1,
    /// The task panicked; the payload is the serialized panic report.
    Panicked = 2,
    /// The arguments could not be decoded or the result encoded; payload: message.
    Codec = 3,
    /// The worker's initializer failed; payload: the serialized panic report.
    InitFailed = 4,
}

impl OutcomeCode {
    /// Decodes [`CompletionRecord::outcome`]; `None` for a value no version of this
    /// file writes.
    pub(crate) fn decode(word: u32) -> Option<OutcomeCode> {
        match word {
            1 => Some(OutcomeCode::Ok),
            2 => Some(OutcomeCode::Panicked),
            3 => Some(OutcomeCode::Codec),
            4 => Some(OutcomeCode::InitFailed),
            _ => None,
        }
    }
}

/// One record of a completion ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CompletionRecord {
    /// An [`OutcomeCode`], as its `u32`.
    pub outcome: u32,
    /// The generation of the worker process that pushed it ([`crate::slot`]): the
    /// parent reads an arena payload only from that process's result arena.
    pub generation: u32,
    /// The task id from the [`TaskRecord`].
    pub id: u64,
    /// Serialized result or report.
    pub payload: Payload,
}

/// The segment an array operand lives in, as a job names it.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SegmentRef {
    /// The segment's process-unique id.
    pub id: AtomicU64,
    /// Its index in the liveness table.
    pub live: AtomicU64,
    /// Byte offset of the operand's element 0 from the start of the segment's data.
    pub byte_off: AtomicU64,
    /// Size of one element in bytes.
    pub elem_size: AtomicU64,
    /// Elements the job may touch from element 0 (the worker checks the segment
    /// holds them all).
    pub extent: AtomicU64,
    /// A fingerprint of the element type, for arrays a kernel looks up by position
    /// (context arrays); 0 for the others.
    pub type_tag: AtomicU64,
}

/// Most arrays one bulk job names: inputs, outputs, context arrays and a
/// reduction's partials and identity.
pub(crate) const MAX_OPERANDS: usize = 12;

/// Bytes of kernel parameters a job entry holds inline.
pub(crate) const PARAMS_BYTES: usize = 4096;

/// The alignment of a job entry's parameter block: the largest parameter alignment
/// a kernel may ask for.
pub(crate) const PARAMS_ALIGN: usize = 64;

/// A job's kernel parameters: plain bytes, written by the parent while the entry is
/// free and read by workers only after a successful claim (see `src/job/protocol.rs`).
#[repr(C, align(64))]
pub(crate) struct ParamsBlock(std::cell::UnsafeCell<[u8; PARAMS_BYTES]>);

// SAFETY: the block is written only by the parent that owns the free entry, before it
// publishes the job (SYNC B1), and read by workers only after a successful claim,
// which proves the entry is not being rewritten (`src/job/protocol.rs`). Sharing references
// between threads is no more dangerous than sharing them between processes.
unsafe impl Sync for ParamsBlock {}

impl std::fmt::Debug for ParamsBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParamsBlock")
    }
}

#[cfg(any(test, loom))]
impl Default for ParamsBlock {
    fn default() -> Self {
        ParamsBlock(std::cell::UnsafeCell::new([0; PARAMS_BYTES]))
    }
}

impl ParamsBlock {
    /// The block's first byte.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.0.get().cast()
    }
}

/// What kind of kernel a bulk job runs. The entry holds it as a `u32`
/// ([`JobEntry::kind`]), decoded by a worker when it joins the job. Workers do not
/// branch on it (the trampoline knows its operands); it names the job in traces and
/// lets a worker refuse an entry no parent wrote.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobKind {
    /// Elementwise maps: `out[i] = f(in[i])`, with one to three inputs and one or two
    /// outputs.
    Map = 1,
    /// `f(&in[range], &mut out[range])`.
    Chunks = 2,
    /// `f(&mut data[range])` on one array.
    InPlace = 3,
    /// A reduction: each chunk writes one partial.
    Reduce = 4,
    /// Index-aware kernels that read whole inputs and write their own range.
    Indexed = 5,
    /// Row maps and row stencils over 2-D arrays.
    Rows = 6,
}

impl JobKind {
    /// Decodes [`JobEntry::kind`]; `None` for a value no version of this file
    /// writes.
    pub(crate) fn decode(word: u32) -> Option<JobKind> {
        match word {
            1 => Some(JobKind::Map),
            2 => Some(JobKind::Chunks),
            3 => Some(JobKind::InPlace),
            4 => Some(JobKind::Reduce),
            5 => Some(JobKind::Indexed),
            6 => Some(JobKind::Rows),
            _ => None,
        }
    }
}

/// A bulk job: one entry per `map_into` call in flight.
///
/// The descriptor fields are written by the parent while the entry is free, and read
/// by workers that hold a matching generation (see `src/job/protocol.rs` for the
/// protocol). They are atomics because a worker with a stale generation may read them
/// while the parent rewrites them; the generation check afterwards discards such
/// reads. The parameter block is plain bytes, read only after a successful claim.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct JobEntry {
    /// Bumped each time the entry is reused.
    pub generation: AtomicU32,
    /// A [`JobKind`], as its `u32`.
    pub kind: AtomicU32,
    /// The kernel trampoline, as an offset from the code anchor.
    pub kernel: AtomicU64,
    /// Number of elements.
    pub len: AtomicU64,
    /// Elements per chunk.
    pub chunk_len: AtomicU64,
    /// Number of chunks.
    pub chunks: AtomicU64,
    /// Kill a worker whose chunk runs longer than this (0: never).
    pub chunk_timeout_ns: AtomicU64,
    /// The global index of the job's element 0 (a map over `range` starts there).
    pub origin: AtomicU64,
    /// How many of `operands` the job uses.
    pub operand_count: AtomicU32,
    /// How many of them, at the end, are context arrays the kernel looks up by
    /// position.
    pub context_count: AtomicU32,
    /// Bytes of `params` in use.
    pub params_len: AtomicU32,
    /// Non-zero when the caller awaits the job (an async bulk map): the worker that
    /// finishes it also wakes the collector, which wakes the caller's future.
    pub wake_collector: AtomicU32,
    /// The arrays, in the order the kernel's trampoline expects them.
    pub operands: [SegmentRef; MAX_OPERANDS],
    /// Claim cursor: generation << 32 | next chunk index.
    pub cursor: Padded<AtomicU64>,
    /// Chunks finished (run, failed or skipped).
    pub done: Padded<AtomicU64>,
    /// 0 while running, 1 once finished.
    pub finished: AtomicU32,
    /// The caller sleeps here until `finished` is set.
    pub done_event: EventCount,
    /// Non-zero once a chunk failed: workers stop claiming.
    pub cancel: AtomicU32,
    /// 0: no error; 1: a worker is writing it; 2: written.
    pub error_state: AtomicU32,
    /// The chunk whose kernel panicked.
    pub error_chunk: AtomicU64,
    /// Length of the message in `error_msg`.
    pub error_len: AtomicU32,
    /// The panic message, written by the worker that won `error_state`: whole when
    /// it fits, else shortened by the worker to a complete text that says how much
    /// it leaves out (`src/worker/bulk_exec.rs`, `job_message`).
    pub error_msg: Cell<[u8; ERROR_MSG_BYTES]>,
    /// The kernel's parameters, `params_len` bytes.
    pub params: ParamsBlock,
}

#[cfg(loom)]
impl JobEntry {
    /// The zero state of a job entry (free, generation 0), as a fresh control
    /// segment holds it, for the loom models of the bulk-job protocol
    /// (`src/loom_tests.rs`).
    pub(crate) fn new() -> Self {
        let segment = || SegmentRef {
            id: AtomicU64::new(0),
            live: AtomicU64::new(0),
            byte_off: AtomicU64::new(0),
            elem_size: AtomicU64::new(0),
            extent: AtomicU64::new(0),
            type_tag: AtomicU64::new(0),
        };
        JobEntry {
            generation: AtomicU32::new(0),
            kind: AtomicU32::new(0),
            kernel: AtomicU64::new(0),
            len: AtomicU64::new(0),
            chunk_len: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
            chunk_timeout_ns: AtomicU64::new(0),
            origin: AtomicU64::new(0),
            operand_count: AtomicU32::new(0),
            context_count: AtomicU32::new(0),
            params_len: AtomicU32::new(0),
            wake_collector: AtomicU32::new(0),
            operands: std::array::from_fn(|_| segment()),
            cursor: Padded::new(AtomicU64::new(0)),
            done: Padded::new(AtomicU64::new(0)),
            finished: AtomicU32::new(0),
            done_event: EventCount::new(),
            cancel: AtomicU32::new(0),
            error_state: AtomicU32::new(0),
            error_chunk: AtomicU64::new(0),
            error_len: AtomicU32::new(0),
            error_msg: Cell::new([0; ERROR_MSG_BYTES]),
            params: ParamsBlock::default(),
        }
    }
}

/// Bytes of a panic message kept in a job entry.
pub(crate) const ERROR_MSG_BYTES: usize = 480;

// SAFETY: all of these are #[repr(C)], hold only integers, atomics and byte arrays,
// and are valid when zeroed. (`WorkerSlot` is defined in `src/slot/mod.rs`, whose fields
// are all atomics.)
unsafe impl ShmSafe for WorkerSlot {}
// SAFETY: as above.
unsafe impl ShmSafe for JobEntry {}
// SAFETY: as above.
unsafe impl ShmSafe for TaskRecord {}
// SAFETY: as above.
unsafe impl ShmSafe for CompletionRecord {}
// SAFETY: as above.
unsafe impl ShmSafe for ControlHeader {}

/// The first bytes of a control segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ControlHeader {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// `size_of::<ControlHeader>()`, checked by workers.
    pub header_len: u32,
    /// Total bytes of the segment.
    pub total_len: u64,
    /// The sizes the offsets below were computed from.
    pub dims: Dims,
    /// Offsets of the regions, from the start of the segment.
    pub offsets: Offsets,
    /// Offset of a probe function from the code anchor in the parent; a re-executed
    /// worker compares its own to detect a different binary.
    pub code_fingerprint: i64,
    /// The parent's pid.
    pub parent_pid: u32,
    /// Busy-spin iterations before an idle worker starts yielding.
    pub idle_spins: u32,
    /// Microseconds an idle worker keeps checking, yielding the CPU in between,
    /// before it sleeps.
    pub idle_budget_us: u32,
    /// Tasks a worker runs before it retires (0: unlimited).
    pub max_tasks_per_child: u32,
    /// The initializer trampoline (0 with `has_initializer == 0`: none).
    pub init_code: i64,
    /// 1 when an initializer is configured.
    pub has_initializer: u32,
    /// Reserved.
    pub _reserved: u32,
    /// The initializer's serialized arguments (inline, or in the task arena, where
    /// they stay for workers started later); meaningful with `has_initializer`.
    pub init_payload: Payload,
    /// Private memory (bytes) a worker may add beyond what it holds when it starts,
    /// enforced with `RLIMIT_DATA` (0: no limit).
    pub worker_memory_limit: u64,
    /// Resident private memory (bytes) a worker may add beyond what it held when it
    /// started before it retires after a task (0: never).
    pub max_worker_rss: u64,
    /// Workers that retired because of `max_worker_rss` (all slots, all
    /// generations). Statistics: Relaxed.
    pub retired_for_memory: AtomicU64,
    /// Set by `close`: workers exit once the submission ring is empty.
    pub closing: Padded<AtomicU32>,
    /// Workers sleep here when the submission ring is empty.
    pub submit_ready: Padded<EventCount>,
    /// Producers sleep here when the submission ring is full.
    pub submit_space: Padded<EventCount>,
    /// The collector sleeps here when no completion or death is pending.
    pub completions: Padded<EventCount>,
    /// Non-zero while a parent thread polls the completion rings itself, so workers
    /// can skip waking the collector.
    pub parent_polling: Padded<AtomicU32>,
}

/// The sizes of a control segment's regions.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    /// Worker slots (processes plus spares for overlapping replacements).
    pub slots: u32,
    /// Submission ring capacity (a power of two).
    pub submit_cap: u32,
    /// Completion ring capacity per slot (a power of two).
    pub completion_cap: u32,
    /// Bulk job entries.
    pub jobs: u32,
    /// Chunks a single bulk job may have (a multiple of 64).
    pub max_chunks: u32,
    /// Reserved.
    pub _reserved: u32,
}

/// Byte offsets of the regions.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Offsets {
    /// `WorkerSlot × slots`.
    pub slots: u64,
    /// `MpmcHeader`, then `MpmcSlot<TaskRecord> × submit_cap`.
    pub submit: u64,
    /// `(SpscHeader, Cell<CompletionRecord> × completion_cap) × slots`.
    pub completions: u64,
    /// Stride of one completion ring.
    pub completion_stride: u64,
    /// `JobEntry × jobs`.
    pub jobs: u64,
    /// `[AtomicU64; max_chunks / 64] × jobs`.
    pub bitmaps: u64,
}

const fn align_up(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

impl Dims {
    /// Computes where each region goes, and the total length.
    pub(crate) fn layout(&self) -> (Offsets, usize) {
        use std::mem::size_of;
        let mut at = align_up(size_of::<ControlHeader>(), 128);
        let slots = at;
        at += self.slots as usize * size_of::<WorkerSlot>();
        at = align_up(at, 128);
        let submit = at;
        at += size_of::<MpmcHeader>();
        at = align_up(at, 128);
        at += self.submit_cap as usize * size_of::<MpmcSlot<TaskRecord>>();
        at = align_up(at, 128);
        let completions = at;
        let stride = align_up(
            size_of::<SpscHeader>()
                + self.completion_cap as usize * size_of::<Cell<CompletionRecord>>(),
            128,
        );
        at += stride * self.slots as usize;
        let jobs = at;
        at += self.jobs as usize * size_of::<JobEntry>();
        at = align_up(at, 128);
        let bitmaps = at;
        at += self.jobs as usize * (self.max_chunks as usize / 8);
        let total = align_up(at, 4096);
        (
            Offsets {
                slots: slots as u64,
                submit: submit as u64,
                completions: completions as u64,
                completion_stride: stride as u64,
                jobs: jobs as u64,
                bitmaps: bitmaps as u64,
            },
            total,
        )
    }
}

/// A mapped control segment: typed access to each region.
///
/// Holds the base address of a live mapping; the owner of the mapping keeps it alive
/// for as long as this view exists (see `ControlView::new`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ControlView {
    base: *const u8,
    len: usize,
}

// SAFETY: every field reachable through the view is an atomic or immutable after
// initialisation; sharing the view between threads is what it is for.
unsafe impl Send for ControlView {}
// SAFETY: as above.
unsafe impl Sync for ControlView {}

/// Why a control segment was refused.
#[derive(Debug)]
pub(crate) enum LayoutError {
    /// The magic number or version is not ours.
    Foreign,
    /// The sizes in the header do not fit the mapping.
    Inconsistent,
}

impl ControlView {
    /// A view of a control segment mapped at `base`, `len` bytes long, after checking
    /// its magic, version and sizes.
    ///
    /// # Safety
    /// `base..base+len` must be a mapping of a control segment (or of zeroed memory
    /// about to be initialised with [`ControlView::init`]) that outlives every use of
    /// the view and of references obtained from it.
    pub(crate) unsafe fn open(base: *const u8, len: usize) -> Result<Self, LayoutError> {
        let view = ControlView { base, len };
        let h = view.header();
        if h.magic != MAGIC
            || h.version != LAYOUT_VERSION
            || h.header_len as usize != std::mem::size_of::<ControlHeader>()
        {
            return Err(LayoutError::Foreign);
        }
        let (offsets, total) = h.dims.layout();
        if offsets != h.offsets || total != h.total_len as usize || total > len {
            return Err(LayoutError::Inconsistent);
        }
        Ok(view)
    }

    /// Writes the header and initialises the rings of a fresh (zeroed) segment.
    ///
    /// # Safety
    /// As for [`ControlView::open`]; in addition no other process may map the segment
    /// yet, and `len` must be at least `dims.layout().1`.
    pub(crate) unsafe fn init(
        base: *mut u8,
        len: usize,
        dims: Dims,
        fill: impl FnOnce(&mut ControlHeader),
    ) -> Self {
        let (offsets, total) = dims.layout();
        assert!(total <= len);
        // SAFETY: the caller guarantees exclusive access to a zeroed mapping at least
        // as long as the layout; ControlHeader is ShmSafe, so zeroed bytes are a valid
        // value to overwrite field by field.
        let header = unsafe { &mut *base.cast::<ControlHeader>() };
        header.magic = MAGIC;
        header.version = LAYOUT_VERSION;
        header.header_len = std::mem::size_of::<ControlHeader>() as u32;
        header.total_len = total as u64;
        header.dims = dims;
        header.offsets = offsets;
        fill(header);
        let view = ControlView { base, len };
        view.submit_ring().init();
        for job in 0..dims.jobs {
            view.job(job).cursor.store(0, Ordering::Relaxed);
        }
        view
    }

    /// The header.
    pub(crate) fn header(&self) -> &ControlHeader {
        // SAFETY: the mapping is at least a header long and page-aligned (checked by
        // the constructors' callers), and ControlHeader is ShmSafe.
        unsafe { &*self.base.cast::<ControlHeader>() }
    }

    fn at<T: ShmSafe>(&self, offset: u64, index: usize) -> &T {
        let off = offset as usize + index * std::mem::size_of::<T>();
        assert!(off + std::mem::size_of::<T>() <= self.len);
        // SAFETY: the offset lies inside the mapping (asserted), regions are aligned
        // to 128 bytes by `Dims::layout`, and T is ShmSafe.
        unsafe { &*self.base.add(off).cast::<T>() }
    }

    /// The dimensions.
    pub(crate) fn dims(&self) -> Dims {
        self.header().dims
    }

    /// Worker slot `i`.
    pub(crate) fn slot(&self, i: usize) -> &WorkerSlot {
        assert!(i < self.dims().slots as usize);
        self.at(self.header().offsets.slots, i)
    }

    /// The submission ring.
    pub(crate) fn submit_ring(&self) -> MpmcRing<'_, TaskRecord> {
        let h = self.header();
        let header: &MpmcHeader = self.at_raw(h.offsets.submit);
        let first = align_up(
            h.offsets.submit as usize + std::mem::size_of::<MpmcHeader>(),
            128,
        );
        let slots =
            self.slice_raw::<MpmcSlot<TaskRecord>>(first as u64, h.dims.submit_cap as usize);
        MpmcRing::new(header, slots)
    }

    /// The completion ring of worker slot `i`.
    pub(crate) fn completion_ring(&self, i: usize) -> SpscRing<'_, CompletionRecord> {
        let h = self.header();
        assert!(i < h.dims.slots as usize);
        let start = h.offsets.completions + i as u64 * h.offsets.completion_stride;
        let header: &SpscHeader = self.at_raw(start);
        let slots = self.slice_raw::<Cell<CompletionRecord>>(
            start + std::mem::size_of::<SpscHeader>() as u64,
            h.dims.completion_cap as usize,
        );
        SpscRing::new(header, slots)
    }

    /// Bulk job entry `i`.
    pub(crate) fn job(&self, i: u32) -> &JobEntry {
        assert!(i < self.dims().jobs);
        self.at(self.header().offsets.jobs, i as usize)
    }

    /// The done-bitmap of bulk job entry `i`.
    pub(crate) fn bitmap(&self, i: u32) -> &[AtomicU64] {
        let d = self.dims();
        assert!(i < d.jobs);
        let words = d.max_chunks as usize / 64;
        self.slice_raw(
            self.header().offsets.bitmaps + (i as usize * words * 8) as u64,
            words,
        )
    }

    fn at_raw<T>(&self, offset: u64) -> &T {
        assert!(offset as usize + std::mem::size_of::<T>() <= self.len);
        // SAFETY: in bounds (asserted), aligned by `Dims::layout`; the ring headers
        // consist of atomics only and are valid zeroed.
        unsafe { &*self.base.add(offset as usize).cast::<T>() }
    }

    fn slice_raw<T>(&self, offset: u64, n: usize) -> &[T] {
        assert!(offset as usize + n * std::mem::size_of::<T>() <= self.len);
        // SAFETY: in bounds (asserted), aligned by `Dims::layout`; the element types
        // (ring slots, completion cells, bitmap words) are valid zeroed, and the rings
        // were initialised by `ControlView::init` before the segment was shared.
        unsafe { std::slice::from_raw_parts(self.base.add(offset as usize).cast::<T>(), n) }
    }
}

#[cfg(all(test, not(loom)))]
mod payload_tests {
    use super::{INLINE_BYTES, Payload};

    #[test]
    fn the_length_says_where_the_bytes_are_with_no_4_gib_limit() {
        let small = Payload::inline(b"hello");
        assert!(!small.in_arena());
        assert_eq!(small.inline_bytes(), b"hello");
        let full = Payload::inline(&[7; INLINE_BYTES]);
        assert!(!full.in_arena());
        assert_eq!(full.inline_bytes().len(), INLINE_BYTES);
        let huge = Payload::in_arena_at(5 << 30, 4096);
        assert!(huge.in_arena());
        assert_eq!((huge.len, huge.arena_off), (5 << 30, 4096));
        // A record stays the size the ring slots were laid out for.
        assert_eq!(std::mem::size_of::<Payload>(), 88);
        assert_eq!(std::mem::size_of::<super::TaskRecord>(), 120);
    }

    #[test]
    fn every_code_decodes_to_itself_and_no_other_value_decodes() {
        use super::{JobKind, OutcomeCode, RecordKind};
        for k in [RecordKind::Task, RecordKind::JoinBulk] {
            assert_eq!(RecordKind::decode(k as u32), Some(k));
        }
        for o in [
            OutcomeCode::Ok,
            OutcomeCode::Panicked,
            OutcomeCode::Codec,
            OutcomeCode::InitFailed,
        ] {
            assert_eq!(OutcomeCode::decode(o as u32), Some(o));
        }
        for k in [
            JobKind::Map,
            JobKind::Chunks,
            JobKind::InPlace,
            JobKind::Reduce,
            JobKind::Indexed,
            JobKind::Rows,
        ] {
            assert_eq!(JobKind::decode(k as u32), Some(k));
        }
        for unknown in [0, 7, u32::MAX] {
            assert_eq!(RecordKind::decode(unknown), None);
            assert_eq!(OutcomeCode::decode(unknown), None);
            assert_eq!(JobKind::decode(unknown), None);
        }
    }
}
