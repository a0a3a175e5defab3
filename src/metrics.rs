//! The Prometheus text endpoint (`GET /metrics`, exposition format 0.0.4),
//! served from the main lcore without blocking it; off unless
//! `[telemetry] prometheus` is set, loopback by default.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use anyhow::Context;

use crate::serve::{self, Answer, Limits, Server};

pub struct MetricsEndpoint {
    server: Server<TcpListener, ()>,
    addr: SocketAddr,
}

impl MetricsEndpoint {
    pub fn bind(addr: SocketAddr) -> anyhow::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("telemetry.prometheus: binding {addr}"))?;
        listener.set_nonblocking(true)?;
        Ok(MetricsEndpoint {
            server: Server::new(listener, Limits::default(), serve::http_head_complete),
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the scrapes that are ready now, without blocking.
    pub fn serve(&mut self, now: Instant, render: impl Fn() -> String) {
        self.server
            .poll(now, |request| Answer::Reply(http_reply(request, &render)));
    }
}

fn http_reply(request: &[u8], render: &impl Fn() -> String) -> String {
    let (status, body) = if request.starts_with(b"GET /metrics ") || request.starts_with(b"GET / ")
    {
        ("200 OK", render())
    } else {
        ("404 Not Found", "try GET /metrics\n".to_string())
    };
    format!(
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
