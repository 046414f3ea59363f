//! This process's memory cgroups: where they are mounted, and the memory limit they
//! set. Read from `/proc/self/cgroup` and `/proc/self/mountinfo`; used by the OOM
//! watch (`src/pool/oom.rs`) and by the array cache's default size (`src/shm/recycle.rs`).

use std::path::{Path, PathBuf};

/// The version of a cgroup hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// The unified hierarchy.
    V2,
    /// The v1 `memory` controller.
    V1,
}

/// A memory cgroup of this process, as a directory under a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemoryCgroup {
    pub version: Version,
    /// Where the hierarchy is mounted (the directory above which nothing is ours
    /// to read).
    pub mountpoint: PathBuf,
    /// The cgroup's directory.
    pub dir: PathBuf,
}

/// This process's memory cgroups, v2 first.
pub(crate) fn own() -> Vec<MemoryCgroup> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse(&cgroups, &mounts)
}

/// The lowest memory limit this process's cgroups set, from its own cgroup up to
/// the mount's root (v2 `memory.max`, v1 `memory.limit_in_bytes`); `None` when
/// none is set or none can be read.
pub(crate) fn memory_limit() -> Option<u64> {
    lowest_limit(&own())
}

/// The lowest memory limit that `cgroups` and their ancestors up to each mount set.
fn lowest_limit(cgroups: &[MemoryCgroup]) -> Option<u64> {
    let mut lowest: Option<u64> = None;
    for cgroup in cgroups {
        let file = match cgroup.version {
            Version::V2 => "memory.max",
            Version::V1 => "memory.limit_in_bytes",
        };
        let mut dir = cgroup.dir.as_path();
        loop {
            let limit = std::fs::read_to_string(dir.join(file))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if let Some(limit) = limit {
                lowest = Some(lowest.map_or(limit, |l| l.min(limit)));
            }
            if dir == cgroup.mountpoint {
                break;
            }
            match dir.parent() {
                Some(parent) if parent.starts_with(&cgroup.mountpoint) => dir = parent,
                _ => break,
            }
        }
    }
    // v1 reports "no limit" as a huge number (a page-rounded i64::MAX).
    lowest.filter(|&l| l < 1 << 60)
}

/// The memory cgroups named in `cgroups` (`/proc/self/cgroup`) that a mount in
/// `mountinfo` (`/proc/self/mountinfo`) shows, v2 first.
pub(crate) fn parse(cgroups: &str, mountinfo: &str) -> Vec<MemoryCgroup> {
    let mut v2 = None;
    let mut v1 = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path);
        }
    }
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // id parent major:minor root mountpoint options [optional...] - type source super
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let mut rest = right.split(' ');
        let (Some(fstype), Some(_source), Some(superopts)) =
            (rest.next(), rest.next(), rest.next())
        else {
            continue;
        };
        let (Some(root), Some(mountpoint)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let (version, path) = match fstype {
            "cgroup2" => (Version::V2, v2),
            "cgroup" if superopts.split(',').any(|o| o == "memory") => (Version::V1, v1),
            _ => continue,
        };
        let Some(dir) = path.and_then(|p| inside(mountpoint, root, p)) else {
            continue;
        };
        let cgroup = MemoryCgroup {
            version,
            mountpoint: PathBuf::from(mountpoint),
            dir,
        };
        match version {
            Version::V2 => out.insert(0, cgroup),
            Version::V1 => out.push(cgroup),
        }
    }
    out
}

/// Where cgroup `path` (as `/proc/self/cgroup` names it) is, under a mount of the
/// hierarchy's `root` at `mountpoint`; `None` if the mount does not show it.
fn inside(mountpoint: &str, root: &str, path: &str) -> Option<PathBuf> {
    let rest = if root == "/" {
        path
    } else {
        let rest = path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    Some(Path::new(mountpoint).join(rest.trim_start_matches('/')))
}

#[cfg(all(test, not(loom)))]
pub(crate) mod tests {
    use super::*;

    /// A hybrid v1 and v2 machine's `/proc/self/cgroup` and mounts (also used by
    /// `src/pool/oom.rs`'s tests).
    pub(crate) const HYBRID_CGROUP: &str =
        "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
    pub(crate) const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 25 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn dirs(cgroups: &str, mounts: &str) -> Vec<(Version, PathBuf)> {
        parse(cgroups, mounts)
            .into_iter()
            .map(|c| (c.version, c.dir))
            .collect()
    }

    #[test]
    fn the_limit_is_the_lowest_from_the_cgroup_up_to_its_mount() {
        let root = std::env::temp_dir().join(format!("shmpool-cgroup-{}", std::process::id()));
        let leaf = root.join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.join("a/memory.max"), "1073741824\n").unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        let v2 = MemoryCgroup {
            version: Version::V2,
            mountpoint: root.clone(),
            dir: leaf.clone(),
        };
        assert_eq!(lowest_limit(std::slice::from_ref(&v2)), Some(1 << 30));
        // Above the mount is not ours: a limit there is not read.
        let inner = MemoryCgroup {
            mountpoint: root.join("a/b"),
            ..v2.clone()
        };
        assert_eq!(lowest_limit(&[inner]), None);
        // v1's "unlimited" is a huge number.
        std::fs::write(leaf.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        let v1 = MemoryCgroup {
            version: Version::V1,
            mountpoint: leaf.clone(),
            dir: leaf,
        };
        assert_eq!(lowest_limit(&[v1]), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn memory_cgroups_are_found_v2_first() {
        assert_eq!(
            dirs(HYBRID_CGROUP, HYBRID_MOUNTS),
            [
                (Version::V2, PathBuf::from("/sys/fs/cgroup/unified")),
                (
                    Version::V1,
                    PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
                ),
            ]
        );
        // A v2-only container whose cgroup namespace root is the mount's root.
        assert_eq!(
            dirs(
                "0::/job/7\n",
                "50 40 0:30 /job /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
            ),
            [(Version::V2, PathBuf::from("/sys/fs/cgroup/7"))]
        );
        // A mount of another part of the hierarchy does not show our cgroup.
        assert!(dirs("0::/a\n", "50 40 0:30 /ab /mnt rw - cgroup2 cgroup2 rw\n").is_empty());
    }
}
