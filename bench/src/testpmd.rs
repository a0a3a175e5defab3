//! An interactive `dpdk-testpmd` driven over its stdin/stdout: the
//! pcap-replay baseline, the vhost topology's traffic generator and its
//! `io` baseline are all one of these.
//!
//! Counters come from `show port stats all` (every port's RX-packets and
//! TX-packets, sampled at one instant); cycles per packet from
//! `--record-core-cycles`, printed by `stop`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::util::{tail, wait_child};

/// One port's counters in one `show port stats all`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PortCounters {
    pub rx: u64,
    pub tx: u64,
    /// Received but not delivered (ring full on the device side).
    pub rx_missed: u64,
}

/// Every port's counters, sampled at `at` (the middle of the request).
#[derive(Clone, Debug)]
pub struct PortSample {
    pub at: Instant,
    pub ports: Vec<PortCounters>,
}

impl PortSample {
    /// Packets per second on `port` between `self` and a later sample.
    pub fn rate(&self, later: &PortSample, port: usize, f: fn(&PortCounters) -> u64) -> f64 {
        let dt = (later.at - self.at).as_secs_f64();
        let (a, b) = (self.ports.get(port), later.ports.get(port));
        match (a, b) {
            (Some(a), Some(b)) if dt > 0.0 => f(b).saturating_sub(f(a)) as f64 / dt,
            _ => 0.0,
        }
    }
}

#[derive(Debug)]
enum Line {
    Port(usize, PortCounters),
    Cycles(f64),
    /// The end of `stop`'s report.
    Done,
}

/// Parses testpmd's output one line at a time (a port block spans lines).
#[derive(Default)]
struct Parser {
    port: Option<usize>,
    current: PortCounters,
}

fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

impl Parser {
    fn line(&mut self, line: &str) -> Option<Line> {
        const HEADER: &str = "NIC statistics for port";
        if let Some(i) = line.find(HEADER) {
            self.port = line[i + HEADER.len()..]
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok());
            self.current = PortCounters::default();
            return None;
        }
        if let Some(n) = number_after(line, "RX-packets:") {
            self.current.rx = n;
        }
        if let Some(n) = number_after(line, "RX-missed:") {
            self.current.rx_missed = n;
        }
        if let Some(n) = number_after(line, "TX-packets:") {
            self.current.tx = n;
            // TX-packets is the block's last counter line.
            if let Some(p) = self.port.take() {
                return Some(Line::Port(p, self.current));
            }
        }
        if line.trim() == "Done." {
            return Some(Line::Done);
        }
        const CYCLES: &str = "CPU cycles/packet=";
        if let Some(i) = line.find(CYCLES) {
            return line[i + CYCLES.len()..]
                .split(char::is_whitespace)
                .next()
                .and_then(|s| s.parse().ok())
                .map(Line::Cycles);
        }
        None
    }
}

/// A running interactive testpmd.
pub struct Testpmd {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Line>,
    transcript: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    ports: usize,
    stderr: tempfile::NamedTempFile,
}

impl Testpmd {
    /// Starts `testpmd` with EAL arguments `eal` and application arguments
    /// `app` (`-i` is added), expecting `ports` ports; returns once it
    /// answers a stats request.
    pub fn start(
        testpmd: &Path,
        eal: &[String],
        app: &[&str],
        ports: usize,
    ) -> anyhow::Result<Self> {
        let stderr = tempfile::Builder::new().prefix("rb-testpmd-").tempfile()?;
        // testpmd's stdout is a pipe here: make it line-buffered so that
        // each stats block arrives when it is printed.
        let mut cmd = if Path::new("/usr/bin/stdbuf").exists() {
            let mut c = Command::new("stdbuf");
            c.arg("-oL").arg(testpmd);
            c
        } else {
            Command::new(testpmd)
        };
        cmd.args(eal)
            .arg("--")
            .arg("-i")
            .args(app)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen()?);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", testpmd.display()))?;
        let stdin = child.stdin.take().context("testpmd stdin")?;
        let stdout = child.stdout.take().context("testpmd stdout")?;
        let (tx, lines) = mpsc::channel();
        let transcript = Arc::new(Mutex::new(String::new()));
        let tr = transcript.clone();
        let reader = std::thread::spawn(move || {
            let mut parser = Parser::default();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut t) = tr.lock() {
                    if t.len() < 200_000 {
                        t.push_str(&line);
                        t.push('\n');
                    }
                }
                if let Some(l) = parser.line(&line) {
                    let _ = tx.send(l);
                }
            }
        });
        let mut tp = Testpmd {
            child,
            stdin,
            lines,
            transcript,
            reader: Some(reader),
            ports,
            stderr,
        };
        tp.sample()
            .map_err(|e| tp.explain(e.context("testpmd did not come up")))?;
        Ok(tp)
    }

    pub fn send(&mut self, command: &str) -> anyhow::Result<()> {
        self.stdin.write_all(command.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Every port's counters at one instant.
    pub fn sample(&mut self) -> anyhow::Result<PortSample> {
        while self.lines.try_recv().is_ok() {}
        let t0 = Instant::now();
        self.send("show port stats all")?;
        let mut ports = vec![None; self.ports];
        let deadline = Instant::now() + Duration::from_secs(10);
        while ports.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Port(p, c)) if p < ports.len() => ports[p] = Some(c),
                Ok(_) => {}
                Err(_) => bail!("no statistics for all {} ports from testpmd", self.ports),
            }
        }
        let t1 = Instant::now();
        Ok(PortSample {
            at: t0 + (t1 - t0) / 2,
            ports: ports.into_iter().map(Option::unwrap_or_default).collect(),
        })
    }

    /// `stop`s forwarding; returns the cycles per packet it reports
    /// (`--record-core-cycles`), if any.
    pub fn stop_forwarding(&mut self) -> anyhow::Result<Option<f64>> {
        while self.lines.try_recv().is_ok() {}
        self.send("stop")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut cycles = None;
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            match l {
                Line::Cycles(c) => cycles = Some(c),
                Line::Done => break,
                Line::Port(..) => {}
            }
        }
        Ok(cycles)
    }

    /// The error, with the last lines testpmd printed.
    pub fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        let t = self
            .transcript
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        e.context(format!(
            "testpmd said: {}\n{}",
            lines[lines.len().saturating_sub(10)..].join("\n"),
            tail(self.stderr.path(), 10)
        ))
    }

    /// `quit`, then waits for the process (killing it after 20 s).
    pub fn quit(mut self) -> anyhow::Result<()> {
        let _ = self.send("quit");
        let status = wait_child(&mut self.child, Duration::from_secs(20));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        status.map(|_| ())
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        // A testpmd left behind busy-polls a CPU: never leave one.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What testpmd 22.11 prints for `show port stats all` (one port) and
    /// for `stop` with `--record-core-cycles`.
    const OUTPUT: &str = "
  ######################## NIC statistics for port 1  ########################
  RX-packets: 123456     RX-missed: 7          RX-bytes:  7407360
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 654321     TX-errors: 0          TX-bytes:  39259260

  Throughput (since last show)
  Rx-pps:            0          Rx-bps:            0
  Tx-pps:            0          Tx-bps:            0
  ############################################################################
  CPU cycles/packet=80.42 (busy cycles=123 / Total io packets=456) at 2994 MHz Clock

Done.
";

    #[test]
    fn parses_port_block_and_cycles() {
        let mut p = Parser::default();
        let got: Vec<Line> = OUTPUT.lines().filter_map(|l| p.line(l)).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        match &got[0] {
            Line::Port(1, c) => assert_eq!(
                *c,
                PortCounters {
                    rx: 123456,
                    tx: 654321,
                    rx_missed: 7
                }
            ),
            other => panic!("{other:?}"),
        }
        match got[1] {
            Line::Cycles(c) => assert!((c - 80.42).abs() < 1e-9),
            ref other => panic!("{other:?}"),
        }
        assert!(matches!(got[2], Line::Done));
    }

    #[test]
    fn rate_between_samples() {
        let t = Instant::now();
        let a = PortSample {
            at: t,
            ports: vec![PortCounters {
                rx: 100,
                tx: 0,
                rx_missed: 0,
            }],
        };
        let b = PortSample {
            at: t + Duration::from_secs(2),
            ports: vec![PortCounters {
                rx: 2_000_100,
                tx: 0,
                rx_missed: 0,
            }],
        };
        assert_eq!(a.rate(&b, 0, |c| c.rx), 1e6);
        assert_eq!(a.rate(&b, 5, |c| c.rx), 0.0, "a port it does not have");
    }
}
