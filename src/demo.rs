//! The embedded demo: a deterministic capture replayed through the full
//! dataplane on `net_pcap` vdevs, so `rampart run` with no config shows
//! every stage on any machine.

use anyhow::Context;
use rampart_pipeline::config::Config;
use rampart_pipeline::pcap;

mod capture;
pub use capture::{demo, Frame};

const DEMO_CONFIG: &str = include_str!("demo.toml");

pub struct Demo {
    pub config: Config,
    dir: tempfile::TempDir,
    count: usize,
}

impl Demo {
    /// Writes the demo capture to a temporary directory and loads the demo
    /// config pointing at it.
    pub fn prepare() -> anyhow::Result<Demo> {
        let dir = tempfile::Builder::new()
            .prefix("rampart-demo-")
            .tempdir()
            .context("creating the demo directory")?;
        let input = dir.path().join("untrust-in.pcap");
        let empty = dir.path().join("trust-in.pcap");
        let frames = demo(1_795_000_000_000_000_000);
        let count = frames.len();
        write_capture(&input, &frames)?;
        write_capture(&empty, &[])?;
        let text = DEMO_CONFIG.replace("@DIR@", &dir.path().display().to_string());
        let config = Config::from_str_named(&text, "<embedded demo>")
            .map_err(|e| anyhow::anyhow!("the embedded demo config is invalid:\n{e}"))?;
        Ok(Demo { config, dir, count })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} frames replayed from {}",
            self.count,
            self.dir.path().display()
        )
    }
}

fn write_capture(path: &std::path::Path, frames: &[Frame]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = pcap::Writer::new(std::io::BufWriter::new(file))?;
    for f in frames {
        w.write(f.ts_ns, &f.bytes)?;
    }
    w.finish()?;
    Ok(())
}
