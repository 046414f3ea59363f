//! A crate that depends on shmpool alone can derive `Pod` for its kernel
//! parameters: compiled here with rustc against the shmpool library this test
//! binary was built with, and no `--extern bytemuck`.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn pod_derives_work_without_a_bytemuck_dependency() {
    let deps = std::env::current_exe()
        .expect("test binary path")
        .parent()
        .expect("deps dir")
        .to_path_buf();
    // The newest shmpool rlib in the deps directory is the one this binary links.
    let rlib: PathBuf = std::fs::read_dir(&deps)
        .expect("read deps")
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("libshmpool-") && name.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .expect("the shmpool rlib next to this test binary");
    let dir = std::env::temp_dir().join(format!("shmpool-reexports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("user.rs");
    std::fs::write(
        &src,
        r#"
#[derive(Clone, Copy, shmpool::Pod, shmpool::Zeroable)]
#[bytemuck(crate = "shmpool::bytemuck")]
#[repr(C)]
pub struct Params {
    pub scale: f64,
    pub offset: f64,
}

pub fn scaled(pool: &shmpool::Pool, x: &shmpool::SharedArray<f64>) -> shmpool::Result<shmpool::SharedArray<f64>> {
    pool.bulk()
        .with(Params { scale: 2.0, offset: 1.0 })
        .map_array(x, |p: &Params, v: f64| v * p.scale + p.offset)
}
"#,
    )
    .expect("write the user crate");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "lib",
            "--crate-name",
            "user",
        ])
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("--extern")
        .arg(format!("shmpool={}", rlib.display()))
        .arg("--out-dir")
        .arg(&dir)
        .arg(&src)
        .output()
        .expect("run rustc");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "a crate with no bytemuck dependency could not derive Pod:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
