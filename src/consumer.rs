//! `rampart events`: follow the event socket like `tail -F`, decode each
//! record, print it in the chosen format or forward it as syslog.

use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rampart_events::{self as ev, syslog, ConsumeEvent, ConsumeOptions, Format, Record};

pub struct Options {
    pub format: Format,
    /// Only these event types (all when `None`); in-band stats and loss
    /// records always pass, they explain gaps.
    pub types: Option<HashSet<ev::EventType>>,
    pub syslog: Option<syslog::SyslogTarget>,
    /// RFC 5424 or BSD (RFC 3164) syslog messages.
    pub syslog_framing: syslog::Framing,
    /// Return when the dataplane closes the socket instead of waiting for
    /// it to come back.
    pub once: bool,
    pub stop: Option<Arc<AtomicBool>>,
    /// Prefix for printed lines (the demo tags them).
    pub prefix: &'static str,
}

pub fn parse_types(list: &str) -> anyhow::Result<HashSet<ev::EventType>> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            ev::EventType::from_name(t).with_context(|| {
                let known: Vec<&str> = ev::EventType::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "--types: unknown event type {t:?} (known: {})",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// Bytes of output gathered before a write.
const OUTPUT_BUFFER: usize = 256 << 10;

pub fn run(socket: &Path, opts: Options) -> anyhow::Result<()> {
    let mut forwarder = match &opts.syslog {
        Some(target) => Some(
            syslog::SyslogForwarder::connect(target).context("connecting to the syslog target")?,
        ),
        None => None,
    };
    let syslog_opts = syslog::SyslogOptions::default();
    // Lines are buffered and written in large chunks, flushed whenever the
    // stream has nothing more to give right now (so a quiet stream still
    // shows each line at once) and at the end.
    let mut out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER, std::io::stdout().lock());
    let mut line = String::new();
    // A closed stdout (`rampart events | head`) ends the command; the
    // error goes up to `main`, which exits quietly.
    let mut write_error = None;
    let consume_opts = ConsumeOptions {
        retry_interval: Duration::from_millis(100),
        once: opts.once,
        stop: opts.stop.clone(),
    };
    let result = ev::consume(socket, &consume_opts, |event| {
        let (rec, names) = match event {
            ConsumeEvent::Record(rec, names) => (rec, names),
            ConsumeEvent::Idle | ConsumeEvent::Disconnected(_) => {
                if let Some(Err(e)) = forwarder.as_mut().map(|f| f.flush()) {
                    eprintln!("rampart events: syslog: {e}");
                }
                if let Err(e) = out.flush() {
                    write_error = Some(e);
                    return ControlFlow::Break(());
                }
                return ControlFlow::Continue(());
            }
            _ => return ControlFlow::Continue(()),
        };
        if let (Record::Event(e), Some(types)) = (rec, &opts.types) {
            if !types.contains(&e.event.event_type()) {
                return ControlFlow::Continue(());
            }
        }
        line.clear();
        match forwarder.as_mut() {
            Some(f) => {
                let format = if opts.format == Format::Junos {
                    Format::Junos
                } else {
                    Format::JunosSd
                };
                if syslog::write_syslog_message(
                    format,
                    opts.syslog_framing,
                    rec,
                    names,
                    &syslog_opts,
                    &mut line,
                ) {
                    if let Err(e) = f.send(&line) {
                        eprintln!("rampart events: syslog: {e}");
                    }
                }
            }
            None => {
                if ev::render(opts.format, rec, names, &mut line) {
                    let written = out
                        .write_all(opts.prefix.as_bytes())
                        .and_then(|()| out.write_all(line.trim_end().as_bytes()))
                        .and_then(|()| out.write_all(b"\n"));
                    if let Err(e) = written {
                        write_error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    if write_error.is_none() {
        write_error = out.flush().err();
    }
    result.with_context(|| format!("reading {}", socket.display()))?;
    match write_error {
        Some(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
        None => Ok(()),
    }
}
