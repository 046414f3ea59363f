//! Unit tests of the error type: messages, ranges, clones.

use super::messages::human_bytes;
use super::*;

#[test]
fn messages_read_like_sentences() {
    let e = Error::WorkerDied {
        worker: 3,
        pid: 4242,
        cause: DeathCause::Signal(libc::SIGSEGV),
        work: Work::Chunk(96..128),
    };
    assert_eq!(
        e.to_string(),
        "worker 3 (pid 4242) was killed by SIGSEGV while running chunk 96..128"
    );
    let e = Error::TaskPanicked {
        message: "boom".into(),
        location: Some("src/main.rs:3:5".into()),
    };
    assert_eq!(e.to_string(), "the task panicked at src/main.rs:3:5: boom");
    assert_eq!(
        Error::LengthMismatch {
            input: 3,
            output: 4
        }
        .to_string(),
        "array lengths differ: the input has 3 elements, the output 4"
    );
    assert_eq!(
        Error::TooManyProcesses {
            requested: 100_000,
            max: 4096
        }
        .to_string(),
        "100000 worker processes were asked for; a pool can have at most 4096"
    );
    assert_eq!(
        Error::ChunkSkipped {
            chunk: 20..40,
            after: 10..20
        }
        .to_string(),
        "elements 20..40 were not computed: the map stopped after chunk 10..20 failed"
    );
    assert_eq!(
        Error::ChunkLost { chunk: 0..8 }.to_string(),
        "chunk 0..8 was not computed: a worker died while holding it, and which worker \
         is not known"
    );
}

#[test]
fn memory_deaths_say_which_memory_ran_out() {
    let died = |cause| Error::WorkerDied {
        worker: 0,
        pid: 7,
        cause,
        work: Work::Task(3),
    };
    assert_eq!(
        died(DeathCause::MemoryLimit { limit: 256 << 20 }).to_string(),
        "worker 0 (pid 7) exceeded its memory limit of 268435456 bytes (256.0 MiB) while \
         running task 3"
    );
    assert_eq!(
        DeathCause::MemoryLimit { limit: 100 }.to_string(),
        "exceeded its memory limit of 100 bytes"
    );
    assert_eq!(
        died(DeathCause::OutOfMemory).to_string(),
        "worker 0 (pid 7) was killed by the kernel's OOM killer while running task 3"
    );
    assert_eq!(
        died(DeathCause::Signal(libc::SIGKILL)).to_string(),
        "worker 0 (pid 7) was killed by SIGKILL from outside the pool (another process, or \
         an OOM kill the kernel did not count) while running task 3"
    );
    assert_eq!(
        died(DeathCause::KilledByPool(PoolKill::Timeout)).to_string(),
        "worker 0 (pid 7) was killed by the pool: its work ran past its time limit while \
         running task 3"
    );
    assert_eq!(
        died(DeathCause::KilledByPool(PoolKill::Stopped)).to_string(),
        "worker 0 (pid 7) was killed by the pool: the pool stopped while running task 3"
    );
}

fn died(work: Work) -> Error {
    Error::WorkerDied {
        worker: 1,
        pid: 42,
        cause: DeathCause::Signal(libc::SIGKILL),
        work,
    }
}

#[test]
fn a_shape_mismatch_prints_even_when_its_count_overflows() {
    let e = Error::ShapeMismatch {
        len: 6,
        shape: vec![usize::MAX, 2],
    };
    assert_eq!(
        e.to_string(),
        format!(
            "a shape of [{}, 2] holds more than {} elements, but the array has 6",
            usize::MAX,
            usize::MAX
        )
    );
}

#[test]
fn chunks_lost_counts_and_lists_each_chunk() {
    let timeout = Error::Timeout {
        worker: 0,
        pid: 7,
        limit: Duration::from_secs(1),
        work: Work::Chunk(10..20),
    };
    let e = Error::ChunksLost {
        errors: vec![died(Work::Chunk(0..10)), timeout],
    };
    assert_eq!(
        e.to_string(),
        "2 chunks were not computed: worker 1 (pid 42) was killed by SIGKILL from outside the \
         pool (another process, or an OOM kill the kernel did not count) while running chunk \
         0..10; chunk 10..20 ran past its 1s time limit; worker 0 (pid 7) was killed"
    );
    assert_eq!(e.failed_ranges(), [0..10, 10..20]);
    let one = Error::ChunksLost {
        errors: vec![Error::ChunkLost { chunk: 5..6 }],
    };
    assert!(
        one.to_string()
            .starts_with("1 chunk was not computed: chunk 5..6 was not"),
        "{one}"
    );
}

#[test]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "a list of one range is what failed_ranges returns here"
)]
fn failed_ranges_name_array_ranges_only() {
    assert_eq!(died(Work::Chunk(3..9)).failed_ranges(), [3..9]);
    let panicked = Error::KernelPanicked {
        chunk: 4..8,
        message: "boom".into(),
    };
    assert_eq!(panicked.failed_ranges(), [4..8]);
    assert!(died(Work::Items(0..4)).failed_ranges().is_empty());
    assert!(died(Work::Task(3)).failed_ranges().is_empty());
    assert!(Error::ZeroChunkLen.failed_ranges().is_empty());
    let nested = Error::ChunksLost {
        errors: vec![
            panicked,
            died(Work::Items(0..4)),
            Error::ChunkLost { chunk: 9..12 },
        ],
    };
    assert_eq!(nested.failed_ranges(), [4..8, 9..12]);
}

#[test]
fn errors_clone_with_their_io_source() {
    fn is_clone<T: Clone + Send + Sync + 'static>() {}
    is_clone::<Error>();
    let e = Error::io("mapping a file")(std::io::Error::from_raw_os_error(libc::ENOENT));
    let copy = e.clone();
    assert_eq!(copy.to_string(), e.to_string());
    assert!(
        copy.to_string()
            .starts_with("mapping a file: No such file or directory")
    );
    match (&e, &copy) {
        (Error::Io { source: a, .. }, Error::Io { source: b, .. }) => {
            assert!(Arc::ptr_eq(a, b));
            assert_eq!(b.raw_os_error(), Some(libc::ENOENT));
        }
        _ => unreachable!(),
    }
    // The source chain survives the clone.
    let source = std::error::Error::source(&copy).expect("a source");
    let expected = std::io::Error::from_raw_os_error(libc::ENOENT).to_string();
    assert_eq!(source.to_string(), expected);
}

#[test]
fn no_space_names_the_size_the_place_and_the_fix() {
    let e = Error::NoSpace {
        bytes: (8 << 20) + 128,
        filesystem: "/dev/shm".into(),
        free: Some(1 << 20),
    };
    assert_eq!(
        e.to_string(),
        "cannot reserve 8.0 MiB (8388736 bytes) for a named shared-memory segment in \
         /dev/shm, which has 1.0 MiB free: make it larger (Docker: `--shm-size`), or the \
         array smaller"
    );
    let unknown = Error::NoSpace {
        bytes: 100,
        filesystem: "/dev/shm".into(),
        free: None,
    };
    assert!(
        unknown
            .to_string()
            .starts_with("cannot reserve 100 bytes for a named"),
        "{unknown}"
    );
    assert!(
        unknown
            .to_string()
            .contains("which has an unknown amount free")
    );
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(64 << 30), "64.0 GiB");
    assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
}

#[test]
fn cancels_and_full_queues_say_what_and_how_many() {
    let e = Error::Cancelled {
        work: Work::Task(17),
    };
    assert_eq!(e.to_string(), "cancelled before it finished (task 17)");
    // In a map or an imap, the task is named by its chunk's items.
    assert_eq!(
        e.for_items(40..48).to_string(),
        "cancelled before it finished (items 40..48)"
    );
    assert!(matches!(
        Error::Cancelled {
            work: Work::Task(1)
        }
        .for_items(0..3),
        Error::Cancelled {
            work: Work::Items(r)
        } if r == (0..3)
    ));
    assert_eq!(
        Error::QueueFull {
            limit: 4,
            queued: 4,
            requested: 2
        }
        .to_string(),
        "the pool holds 4 unanswered tasks and allows 4 (max_queued); 2 more do not fit"
    );
}

#[test]
fn rebased_errors_name_global_ranges_everywhere_they_name_one() {
    // A rank's block holds global indices 1000.. as local 0..; a grid's padded
    // block holds them from local row 2 (two halo rows).
    let lost = Error::ChunksLost {
        errors: vec![
            died(Work::Chunk(0..10)),
            Error::ChunkSkipped {
                chunk: 10..20,
                after: 0..10,
            },
            Error::ChunkLost { chunk: 20..30 },
            Error::KernelPanicked {
                chunk: 30..40,
                message: "boom".into(),
            },
        ],
    }
    .rebased(0, 1000);
    assert_eq!(
        lost.failed_ranges(),
        [1000..1010, 1010..1020, 1020..1030, 1030..1040]
    );
    let Error::ChunksLost { errors } = &lost else {
        panic!("{lost:?}")
    };
    assert!(matches!(&errors[1], Error::ChunkSkipped { after, .. } if *after == (1000..1010)));
    let cancelled = Error::MapCancelled {
        completed: vec![2..5, 7..9],
        range: 2..12,
    }
    .rebased(2, 40);
    assert_eq!(cancelled.failed_ranges(), [43..45, 47..50]);
    assert!(matches!(
        died(Work::Items(3..6)).rebased(0, 100),
        Error::WorkerDied { work: Work::Items(r), .. } if r == (103..106)
    ));
    // A task id is not a range: unchanged.
    assert!(matches!(
        died(Work::Task(7)).rebased(0, 100),
        Error::WorkerDied {
            work: Work::Task(7),
            ..
        }
    ));
}
