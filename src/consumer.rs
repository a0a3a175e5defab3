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

pub fn run(socket: &Path, opts: Options) -> anyhow::Result<()> {
    let mut forwarder = match &opts.syslog {
        Some(target) => Some(
            syslog::SyslogForwarder::connect(target).context("connecting to the syslog target")?,
        ),
        None => None,
    };
    let syslog_opts = syslog::SyslogOptions::default();
    let stdout = std::io::stdout();
    let mut line = String::new();
    // A closed stdout (`rampart events | head`) ends the command; the
    // error goes up to `main`, which exits quietly.
    let mut write_error = None;
    let consume_opts = ConsumeOptions {
        retry_interval: Duration::from_millis(100),
        once: opts.once,
        stop: opts.stop.clone(),
    };
    ev::consume(socket, &consume_opts, |event| {
        let ConsumeEvent::Record(rec, names) = event else {
            return ControlFlow::Continue(());
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
                    let mut out = stdout.lock();
                    if let Err(e) = writeln!(out, "{}{}", opts.prefix, line.trim_end()) {
                        write_error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    })
    .with_context(|| format!("reading {}", socket.display()))?;
    match write_error {
        Some(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
        None => Ok(()),
    }
}
