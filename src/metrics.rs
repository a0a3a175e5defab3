//! The Prometheus text endpoint (`GET /metrics`, exposition format 0.0.4),
//! served from the main lcore without blocking it; off unless
//! `[telemetry] prometheus` is set, loopback by default.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::Context;

pub struct MetricsEndpoint {
    listener: TcpListener,
}

impl MetricsEndpoint {
    pub fn bind(addr: SocketAddr) -> anyhow::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("telemetry.prometheus: binding {addr}"))?;
        listener.set_nonblocking(true)?;
        Ok(MetricsEndpoint { listener })
    }

    /// Answers the scrapes waiting now.
    pub fn serve(&self, render: impl Fn() -> String) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = answer(stream, &render);
        }
    }
}

fn answer(mut stream: TcpStream, render: &impl Fn() -> String) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.set_write_timeout(Some(Duration::from_millis(500)))?;
    let mut request = [0u8; 1024];
    let n = stream.read(&mut request)?;
    let head = String::from_utf8_lossy(&request[..n]);
    let (status, body) = if head.starts_with("GET /metrics ") || head.starts_with("GET / ") {
        ("200 OK", render())
    } else {
        ("404 Not Found", "try GET /metrics\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Builds exposition text family by family (`# HELP`, `# TYPE`, samples).
#[derive(Default)]
pub struct Exposition {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}
