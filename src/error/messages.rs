//! How errors read: sizes as people read them, shapes, and the advice of a full
//! filesystem.

/// The number of elements a shape holds, for messages: a shape whose count
/// overflows `usize` (which `reshape` refuses) must not panic when printed.
pub(super) fn shape_elements(shape: &[usize]) -> String {
    match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) => n.to_string(),
        None => format!("more than {}", usize::MAX),
    }
}

/// The message of [`Error::NoSpace`]: what was asked, where, what is free, and
/// what to do about it.
pub(super) fn no_space_message(
    bytes: u64,
    filesystem: &std::path::Path,
    free: Option<u64>,
) -> String {
    let free = match free {
        Some(f) => format!("{} free", human_bytes(f)),
        None => "an unknown amount free".to_string(),
    };
    let asked = match human_bytes(bytes) {
        exact if bytes < 1024 => exact,
        rounded => format!("{rounded} ({bytes} bytes)"),
    };
    format!(
        "cannot reserve {asked} for a named shared-memory segment in {}, which has \
         {free}: make it larger (Docker: `--shm-size`), or the array smaller",
        filesystem.display(),
    )
}

/// A size in bytes as people read it: `512 bytes`, `1.5 KiB`, `8.0 MiB`.
pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
