//! The memory behind an array, as the kernel counts it: for the tests and the
//! benchmark of the array cache (`tests/array_cache.rs`, `benches/first_touch.rs`),
//! which include this file by path.

use std::os::unix::fs::MetadataExt;

use shmpool::SharedArray;

/// The bytes of memory the file behind `array` holds (its `st_blocks`): the pages
/// anyone allocated, whichever process maps them, swapped out or not. Found through
/// the descriptor this process holds for the array's memfd, named in the line of
/// `/proc/self/maps` that holds the array.
pub fn file_bytes<T: bytemuck::Pod>(array: &SharedArray<T>) -> u64 {
    let at = array.as_ptr() as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let name = maps
        .lines()
        .find_map(|line| {
            let (range, rest) = line.split_once(' ')?;
            let (a, b) = range.split_once('-')?;
            let (a, b) = (
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            );
            let path = rest
                .split_whitespace()
                .skip(4)
                .collect::<Vec<_>>()
                .join(" ");
            (a..b).contains(&at).then_some(path)
        })
        .expect("the array's mapping");
    assert!(
        name.contains("shmpool-array-"),
        "not an array segment: {name}"
    );
    let fd = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == name))
        .unwrap_or_else(|| panic!("no descriptor for {name}"));
    std::fs::metadata(fd.path()).expect("stat").blocks() * 512
}
