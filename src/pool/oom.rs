//! Telling the kernel's OOM killer from any other SIGKILL.
//!
//! A process killed by the OOM killer dies of SIGKILL like one killed by `kill -9`;
//! its exit status cannot tell them apart. But the kernel counts OOM kills, and
//! raises the count *before* it sends the signal ("task reaper must see this", in
//! `mm/oom_kill.c`), so by the time the collector handles the death the count has
//! risen. The count is read from the most precise place Linux offers:
//!
//! 1. cgroup v2: `oom_kill` in `memory.events.local` (kills of processes in this
//!    cgroup itself; `memory.events`, which adds its descendants, on kernels before
//!    5.2) of the cgroup this process is in;
//! 2. cgroup v1: `oom_kill` in `memory.oom_control` of this process's memory cgroup
//!    (Linux 4.13 and later; counts kills of processes in that cgroup);
//! 3. otherwise `oom_kill` in `/proc/vmstat`: every OOM kill on the machine.
//!
//! The cgroup is resolved from `/proc/self/cgroup` and `/proc/self/mountinfo` when
//! the pool starts; workers are in the parent's cgroup (they inherit it), unless
//! something moves them.
//!
//! Each kill the count shows is given to at most one death: a SIGKILL the collector
//! did not send is `OutOfMemory` when the count is above the kills already
//! explained, and that kill is then explained. A rise that no death claims within
//! [`GRACE`] (another process of the cgroup was killed) is forgotten, so it cannot
//! turn a later `kill -9` into an OOM kill.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::sys::cgroup;

/// How long a rise of the count waits for a worker's death to claim it.
const GRACE: Duration = Duration::from_secs(5);
/// How often the collector reads the count while nothing dies.
const REFRESH: Duration = Duration::from_millis(250);

/// Where the OOM-kill count is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    /// The file.
    pub path: PathBuf,
}

impl Source {
    /// The most precise count this process can read, if any.
    pub(crate) fn find() -> Option<Source> {
        let candidates = cgroup_candidates(&cgroup::own())
            .into_iter()
            .chain([PathBuf::from("/proc/vmstat")]);
        candidates
            .map(|path| Source { path })
            .find(|s| s.read().is_some())
    }

    /// The count now.
    pub(crate) fn read(&self) -> Option<u64> {
        oom_kill_count(&std::fs::read_to_string(&self.path).ok()?)
    }
}

/// The `oom_kill N` line of a cgroup's `memory.events(.local)`, `memory.oom_control`
/// or `/proc/vmstat`.
fn oom_kill_count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// The count files of this process's cgroups, most precise first: v2's
/// `memory.events.local` and `memory.events`, then v1's `memory.oom_control`.
fn cgroup_candidates(cgroups: &[cgroup::MemoryCgroup]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for cgroup in cgroups {
        match cgroup.version {
            cgroup::Version::V2 => {
                out.push(cgroup.dir.join("memory.events.local"));
                out.push(cgroup.dir.join("memory.events"));
            }
            cgroup::Version::V1 => out.push(cgroup.dir.join("memory.oom_control")),
        }
    }
    out
}

/// The collector's account of OOM kills.
#[derive(Debug)]
pub(crate) struct OomWatch {
    source: Option<Source>,
    /// Kills counted so far that are explained: given to a worker's death, or
    /// forgotten after [`GRACE`].
    explained: u64,
    /// When the count was first seen above `explained`.
    rose_at: Option<Instant>,
    last_read: Instant,
}

impl OomWatch {
    /// Finds the count and takes it as the baseline.
    pub(crate) fn new() -> OomWatch {
        let source = Source::find();
        let explained = source.as_ref().and_then(Source::read).unwrap_or(0);
        OomWatch {
            source,
            explained,
            rose_at: None,
            last_read: Instant::now(),
        }
    }

    /// Called on every turn of the collector's loop; reads the count at most every
    /// [`REFRESH`], and forgets kills no death claimed within [`GRACE`].
    pub(crate) fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_read) < REFRESH {
            return;
        }
        self.last_read = now;
        let Some(count) = self.source.as_ref().and_then(Source::read) else {
            return;
        };
        if count <= self.explained {
            self.explained = count;
            self.rose_at = None;
            return;
        }
        match self.rose_at {
            None => self.rose_at = Some(now),
            Some(at) if now.duration_since(at) >= GRACE => {
                self.explained = count;
                self.rose_at = None;
            }
            Some(_) => {}
        }
    }

    /// A worker died of a SIGKILL the pool did not send: whether an OOM kill not yet
    /// explained accounts for it (and is now explained).
    pub(crate) fn explains_a_kill(&mut self) -> bool {
        let Some(count) = self.source.as_ref().and_then(Source::read) else {
            return false;
        };
        if count <= self.explained {
            return false;
        }
        self.explained += 1;
        if self.explained == count {
            self.rose_at = None;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_count_files_are_found_most_precise_first() {
        use crate::sys::cgroup::tests::{HYBRID_CGROUP, HYBRID_MOUNTS};
        assert_eq!(
            cgroup_candidates(&cgroup::parse(HYBRID_CGROUP, HYBRID_MOUNTS)),
            [
                PathBuf::from("/sys/fs/cgroup/unified/memory.events.local"),
                PathBuf::from("/sys/fs/cgroup/unified/memory.events"),
                PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/memory.oom_control"),
            ]
        );
    }

    #[test]
    fn the_count_is_read_from_each_format() {
        assert_eq!(
            oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(
            oom_kill_count("low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n"),
            Some(2)
        );
        assert_eq!(oom_kill_count("pgfault 10\noom_kill 0\n"), Some(0));
        assert_eq!(oom_kill_count("oom 1\n"), None);
        // This machine has some count to read, if only /proc/vmstat's.
        assert!(Source::find().is_some());
    }

    #[test]
    fn each_kill_explains_one_death_and_unclaimed_kills_are_forgotten() {
        let dir = std::env::temp_dir().join(format!("shmpool-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("memory.oom_control");
        let set = |n: u64| std::fs::write(&path, format!("oom_kill_disable 0\noom_kill {n}\n"));
        set(4).unwrap();
        let mut watch = OomWatch {
            source: Some(Source { path: path.clone() }),
            explained: 4,
            rose_at: None,
            last_read: Instant::now(),
        };
        assert!(!watch.explains_a_kill(), "no rise: a plain SIGKILL");
        set(6).unwrap();
        assert!(watch.explains_a_kill());
        assert!(watch.explains_a_kill(), "two kills explain two deaths");
        assert!(!watch.explains_a_kill(), "but not three");
        // A kill no death claims is forgotten after the grace period.
        set(7).unwrap();
        watch.last_read -= REFRESH;
        watch.tick();
        assert!(watch.rose_at.is_some());
        watch.rose_at = Some(Instant::now() - GRACE);
        watch.last_read -= REFRESH;
        watch.tick();
        assert!(!watch.explains_a_kill(), "an old kill of another process");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
