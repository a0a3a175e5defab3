//! The control socket: a Unix stream socket for operators (mode 0600 by
//! default, its own group; readers of events have another socket) that
//! answers one command per connection (`stats`, `reload`, `rules`,
//! `sessions`, `sessions-clear`; the
//! request format is [`rampart_events::request`]). Served from the main
//! lcore by [`crate::serve`]: non-blocking, a deadline per request, a cap
//! on connections, so no client can hold the control plane.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rampart_events::request::{parse_request, ControlCommand, MAX_REQUEST_BYTES};
use rampart_events::SocketFile;

use crate::serve::{self, Answer, Limits, ServeCounters, Server};

/// A reload request's place in line: the reload job that will answer it.
pub type ReloadTicket = u64;

/// A request answered later: by a reload job, or by the session desk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticket {
    Reload(ReloadTicket),
    Sessions(u64),
}

pub struct ControlSocket {
    /// Serves on the socket file (removed when dropped).
    server: Server<SocketFile, Ticket>,
    gid: Option<u32>,
}

impl ControlSocket {
    /// Serves on `file`, a socket given group `gid` (if any).
    pub fn new(file: SocketFile, gid: Option<u32>) -> ControlSocket {
        let limits = Limits {
            max_request_bytes: MAX_REQUEST_BYTES,
            ..Limits::default()
        };
        ControlSocket {
            server: Server::new(file, limits, serve::line_complete),
            gid,
        }
    }

    /// Changes the socket's mode and group (a reload), on its inode.
    pub fn set_access(&mut self, mode: u32, gid: Option<u32>) -> anyhow::Result<()> {
        self.server.listener().set_access(mode, gid)?;
        self.gid = gid;
        Ok(())
    }

    pub fn gid(&self) -> Option<u32> {
        self.gid
    }

    /// Answers what is ready now without blocking. `handle` answers a
    /// command at once or defers it (a reload) with a ticket that
    /// [`ControlSocket::complete`] answers later; requests that are not a
    /// command get an `{"error": ...}` reply without reaching `handle`.
    pub fn serve(
        &mut self,
        now: Instant,
        mut handle: impl FnMut(ControlCommand) -> Answer<Ticket>,
    ) {
        self.server
            .poll(now, |request| match parse_request(request) {
                Ok(command) => match handle(command) {
                    Answer::Reply(r) => Answer::Reply(r + "\n"),
                    later => later,
                },
                Err(e) => Answer::Reply(e.to_json() + "\n"),
            });
    }

    /// Answers every client waiting on `ticket`.
    pub fn complete(&mut self, ticket: Ticket, reply: &str, now: Instant) {
        self.server.complete(&ticket, &format!("{reply}\n"), now);
    }

    /// Answers every client still waiting for a reload (at shutdown).
    pub fn abandon_waiting(&mut self, why: &str, now: Instant) {
        let reply = serde_json::json!({"ok": false, "error": why});
        self.server.complete_all(&format!("{reply}\n"), now);
    }

    pub fn counters(&self) -> ServeCounters {
        self.server.counters
    }
}

/// Client side: sends `command`, returns the reply.
pub fn request(path: &Path, command: &str) -> anyhow::Result<String> {
    let mut s = UnixStream::connect(path)
        .with_context(|| format!("connecting to {} (is rampart running?)", path.display()))?;
    // A reload compiles the whole config before it answers; a clear walks
    // every session table.
    let patience = if command == "reload" || command.starts_with("sessions") {
        120
    } else {
        5
    };
    s.set_read_timeout(Some(Duration::from_secs(patience)))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}
