//! Compiles `events.fbs` with the flatc built by `flatc-fork` (the
//! Debian flatc is too old for flatbuffers 25) into `OUT_DIR`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let schema = manifest.join("events.fbs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed={}", schema.display());
    let flatc = flatc_fork::flatc();
    let status = Command::new(flatc)
        .arg("--rust")
        .arg("-o")
        .arg(&out)
        .arg(&schema)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", flatc.display()));
    assert!(status.success(), "flatc failed on {}", schema.display());
    // Tests (the Python reader test) generate other languages with the same flatc.
    println!("cargo:rustc-env=RAMPART_FLATC={}", flatc.display());
    println!(
        "cargo:rustc-env=RAMPART_SCHEMA={}",
        schema.canonicalize().unwrap_or(schema).display()
    );
}
