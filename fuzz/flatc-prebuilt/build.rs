//! Finds the flatc that flatc-fork built for the main workspace: the
//! `RAMPART_FLATC` environment variable if set, else the newest
//! `target/*/build/flatc-fork-*/out/bin/flatc` of the main workspace.
//! meson-scripts/fuzz.sh builds `rampart-schema` in the main workspace
//! first, so one is always there.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=RAMPART_FLATC");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let flatc = match std::env::var_os("RAMPART_FLATC") {
        Some(p) => PathBuf::from(p),
        None => find().unwrap_or_else(|| {
            panic!(
                "no flatc built by the main workspace was found: run \
                 `cargo build -p rampart-schema` at the repository root first \
                 (meson-scripts/fuzz.sh does), or set RAMPART_FLATC"
            )
        }),
    };
    assert!(flatc.is_file(), "{} is not a file", flatc.display());
    println!("cargo:rerun-if-changed={}", flatc.display());
    println!("cargo:rustc-env=RAMPART_FUZZ_FLATC={}", flatc.display());
}

fn find() -> Option<PathBuf> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let root = manifest.parent()?.parent()?.to_path_buf();
    let mut dirs = vec![root.join("target")];
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        dirs.push(if t.is_absolute() { t } else { root.join(t) });
    }
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for target in dirs {
        for profile in read_dir(&target) {
            for build in read_dir(&profile.join("build")) {
                let name = build.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let flatc = build.join("out").join("bin").join("flatc");
                if name.starts_with("flatc-fork-") && flatc.is_file() {
                    if let Ok(t) = flatc.metadata().and_then(|m| m.modified()) {
                        found.push((t, flatc));
                    }
                }
            }
        }
    }
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
