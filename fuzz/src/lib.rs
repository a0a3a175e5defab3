//! The bodies of Rampart's fuzz targets and their seed corpora.
//!
//! Each `fuzz_targets/<name>.rs` is a one-line libFuzzer entry point calling
//! the function of the same name here; the functions panic on any broken
//! invariant, which libFuzzer reports as a crash. Seeds are generated, not
//! committed: with `RAMPART_FUZZ_SEED_DIR=<dir>` set, a target's init writes
//! its seeds into `<dir>` before fuzzing starts (meson-scripts/fuzz.sh does
//! this for every target's corpus).

pub mod config;
pub mod control;
pub mod events;
pub mod pipeline;
pub mod seeds;
pub mod sync;
pub mod trace;
pub mod wire;

/// Called from every target's `init`: writes the target's seeds when
/// `RAMPART_FUZZ_SEED_DIR` is set.
pub fn init(target: &str) {
    if let Some(dir) = std::env::var_os("RAMPART_FUZZ_SEED_DIR") {
        let dir = std::path::PathBuf::from(dir);
        match seeds::write(target, &dir) {
            Ok(n) => eprintln!("{target}: wrote {n} seeds to {}", dir.display()),
            Err(e) => {
                eprintln!("{target}: cannot write seeds to {}: {e}", dir.display());
                std::process::exit(2);
            }
        }
    }
}
