//! Observability: tracing spans and events for pool start, bulk jobs, task submit
//! and complete, worker death and respawn, and the counters of `Pool::stats`. In its own binary, because it
//! installs a process-wide tracing subscriber (the collector thread emits too).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, SharedArray};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records span names and event messages.
struct Recorder;

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Every event at WARN or ERROR: (level, message).
static LOUD: Mutex<Vec<(tracing::Level, String)>> = Mutex::new(Vec::new());
static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("shmpool")
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        SEEN.lock()
            .unwrap()
            .push(format!("span {}", span.metadata().name()));
        Id::from_u64(NEXT_SPAN.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        let level = *event.metadata().level();
        if level <= tracing::Level::WARN {
            LOUD.lock().unwrap().push((level, m.0.clone()));
        }
        SEEN.lock().unwrap().push(format!("event {}", m.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn seen(what: &str) -> bool {
    SEEN.lock().unwrap().iter().any(|s| s == what)
}

fn die() -> u8 {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGKILL) };
    0
}

#[test]
fn spans_events_and_stats() {
    tracing::subscriber::set_global_default(Recorder).unwrap();
    let pool = Pool::new(2).unwrap();
    assert!(seen("span shmpool.pool.start"));
    assert!(seen("event pool started"));

    let xs = SharedArray::filled(100_000, 3.0f64).unwrap();
    let mut ys = SharedArray::zeroed(100_000).unwrap();
    pool.bulk()
        .chunk_len(1000)
        .map_into(&xs, &mut ys, |v: f64| v * 2.0)
        .unwrap();
    assert!(seen("span shmpool.bulk"));
    assert!(seen("event bulk job submitted"));
    assert!(seen("event bulk job complete"));

    let tasks: u64 = 50;
    for i in 0..tasks {
        assert_eq!(pool.apply(|x: u64| x + 1, (i,)).unwrap(), i + 1);
    }
    assert!(seen("span shmpool.task.submit"));
    assert!(seen("span shmpool.task.complete"));
    assert!(seen("event task submitted"));
    assert!(seen("event task completed"));
    assert!(matches!(pool.apply(die, ()), Err(Error::WorkerDied { .. })));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen("event worker died")
        && seen("event starting a replacement worker")
        && seen("span shmpool.worker.exit")
        && seen("span shmpool.worker.respawn"))
    {
        assert!(Instant::now() < deadline, "{:?}", SEEN.lock().unwrap());
        std::thread::sleep(Duration::from_millis(5));
    }

    let stats = pool.stats();
    assert_eq!(
        stats.workers.iter().map(|w| w.chunks_done).sum::<u64>(),
        100
    );
    // 50 successful tasks; the one that killed its worker never completed.
    assert_eq!(
        stats.workers.iter().map(|w| w.tasks_done).sum::<u64>(),
        tasks
    );
    assert!(stats.respawns >= 1);
    assert_eq!(stats.segments_shipped, 4, "two arrays, two workers");
    assert_eq!(stats.bytes_mapped, 4 * 100_000 * 8);
    // The replacement is up shortly: two live workers again.
    while pool
        .stats()
        .workers
        .iter()
        .filter(|w| w.pid.is_some())
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    // The worker killed from outside was worth a warning; nothing after it is.
    LOUD.lock().unwrap().clear();
    drop(pool);
    normal_use_and_drop_log_nothing_at_warn();
}

/// A pool used normally and then dropped logs nothing at WARN or above, under every
/// start method: the kills that `terminate` and the drop order are the pool's own
/// (issue 22, defect 5). Nor does one whose cancels (both modes) killed workers.
fn normal_use_and_drop_log_nothing_at_warn() {
    for method in [
        shmpool::StartMethod::Fork,
        shmpool::StartMethod::ForkServer,
        shmpool::StartMethod::Spawn,
    ] {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let xs = SharedArray::filled(10_000, 1.5f64).unwrap();
        let mut ys = SharedArray::zeroed(10_000).unwrap();
        pool.bulk()
            .chunk_len(100)
            .map_into(&xs, &mut ys, |v: f64| v * 2.0)
            .unwrap();
        assert!(ys.iter().all(|&y| y == 3.0));
        assert_eq!(pool.map(|x: u32| x + 1, 0..100u32).unwrap()[99], 100);
        // A cancelled running task (Kill): the pool kills its worker, on purpose.
        let slow = pool
            .apply_async(
                || {
                    std::thread::sleep(Duration::from_secs(5));
                    1u8
                },
                (),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        slow.cancel();
        assert!(matches!(slow.get(), Err(Error::Cancelled { .. })));
        drop(pool);
        let loud = LOUD.lock().unwrap().clone();
        assert!(
            loud.is_empty(),
            "{method:?}: logged at WARN or above: {loud:?}"
        );
    }
    // Terminate, then drop.
    let pool = Pool::new(2).unwrap();
    pool.terminate();
    pool.join().unwrap();
    drop(pool);
    let loud = LOUD.lock().unwrap().clone();
    assert!(
        loud.is_empty(),
        "terminate: logged at WARN or above: {loud:?}"
    );
}
