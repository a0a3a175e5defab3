//! Non-blocking request/reply serving for the control socket and the
//! Prometheus endpoint: the main lcore polls it between drains, so no
//! client can hold the control plane.
//!
//! Every connection is non-blocking and has one deadline for its whole
//! request (a client sending a byte every 90 ms is cut off like one that
//! sends nothing) and one for its reply. At most `max_connections` are
//! open; beyond that the one that has waited longest without sending a
//! whole request is closed to make room (evicted), or else the one whose
//! reply has waited longest on a full socket (a client that asks for a
//! large reply and never reads it); only when every one has sent its
//! request and is taking its reply (or waits on a reload) is the newcomer
//! refused; accepts per poll are
//! bounded, so a flood of connections neither stalls the drain nor locks
//! out a client that sends its request at once. Every refusal, eviction
//! and timeout is counted; the caller logs them.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// A listening socket that hands out non-blocking streams.
pub trait Listen {
    type Stream: Read + Write;
    /// The next pending connection, already non-blocking; `WouldBlock`
    /// when there is none.
    fn accept_nonblocking(&self) -> io::Result<Self::Stream>;
}

impl Listen for std::os::unix::net::UnixListener {
    type Stream = std::os::unix::net::UnixStream;
    fn accept_nonblocking(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

impl Listen for rampart_events::SocketFile {
    type Stream = std::os::unix::net::UnixStream;
    fn accept_nonblocking(&self) -> io::Result<Self::Stream> {
        let s = self.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

impl Listen for std::net::TcpListener {
    type Stream = std::net::TcpStream;
    fn accept_nonblocking(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// From accept to the whole request.
    pub request_deadline: Duration,
    /// From the reply being ready to its last byte written.
    pub reply_deadline: Duration,
    pub max_request_bytes: usize,
    /// Connections accepted per poll at most.
    pub accepts_per_poll: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 32,
            request_deadline: Duration::from_secs(1),
            reply_deadline: Duration::from_secs(1),
            max_request_bytes: 4096,
            accepts_per_poll: 64,
        }
    }
}

/// What happened to connections since start (all monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeCounters {
    pub accepted: u64,
    pub answered: u64,
    /// Closed to make room for a new connection: it had not sent a whole
    /// request, or was not reading its reply.
    pub evicted: u64,
    /// Closed at once: every slot held a request being answered.
    pub refused: u64,
    /// Request or reply not done by its deadline.
    pub timed_out: u64,
    /// Request longer than `max_request_bytes`, or the client went away.
    pub failed: u64,
}

/// What the handler makes of a complete request.
pub enum Answer<T> {
    Reply(String),
    /// The reply comes later: [`Server::complete`] with the same ticket.
    Later(T),
}

enum State<T> {
    Reading(Vec<u8>),
    Waiting(T),
    Writing {
        reply: Vec<u8>,
        written: usize,
        /// Since when the socket has been full (the client not reading).
        blocked_since: Option<Instant>,
    },
}

struct Conn<S, T> {
    stream: S,
    state: State<T>,
    deadline: Instant,
    /// Seen since the connection opened (eviction picks the oldest).
    opened: Instant,
}

pub struct Server<L: Listen, T> {
    listener: L,
    conns: Vec<Conn<L::Stream, T>>,
    limits: Limits,
    /// Whether the buffered bytes hold a whole request.
    complete: fn(&[u8]) -> bool,
    pub counters: ServeCounters,
}

/// A request line ends with a newline.
pub fn line_complete(buf: &[u8]) -> bool {
    buf.contains(&b'\n')
}

/// An HTTP request head ends with an empty line.
pub fn http_head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

impl<L: Listen, T: PartialEq> Server<L, T> {
    pub fn new(listener: L, limits: Limits, complete: fn(&[u8]) -> bool) -> Self {
        Server {
            listener,
            conns: Vec::new(),
            limits,
            complete,
            counters: ServeCounters::default(),
        }
    }

    pub fn listener(&self) -> &L {
        &self.listener
    }

    #[cfg(test)]
    fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Accepts, reads, answers and writes what is ready now, never
    /// blocking. `handle` gets each complete request once.
    pub fn poll(&mut self, now: Instant, mut handle: impl FnMut(&[u8]) -> Answer<T>) {
        for _ in 0..self.limits.accepts_per_poll {
            match self.listener.accept_nonblocking() {
                Ok(stream) => {
                    self.counters.accepted += 1;
                    if self.conns.len() >= self.limits.max_connections && !self.evict_one() {
                        // Every slot holds a request being answered.
                        self.counters.refused += 1;
                        continue;
                    }
                    self.conns.push(Conn {
                        stream,
                        state: State::Reading(Vec::new()),
                        deadline: now + self.limits.request_deadline,
                        opened: now,
                    });
                    // A client usually sends its request with its connect:
                    // serve it now, before later connections could evict it.
                    let last = self.conns.len() - 1;
                    if !self.step(last, now, &mut handle) {
                        self.conns.swap_remove(last);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.step_all(now, &mut handle);
    }

    /// Reads, answers and writes every open connection once.
    fn step_all(&mut self, now: Instant, handle: &mut impl FnMut(&[u8]) -> Answer<T>) {
        let mut i = 0;
        while i < self.conns.len() {
            if self.step(i, now, handle) {
                i += 1;
            } else {
                self.conns.swap_remove(i);
            }
        }
    }

    /// Gives the deferred reply of `ticket` to every connection waiting on it.
    pub fn complete(&mut self, ticket: &T, reply: &str, now: Instant) {
        self.reply_waiting(|t| t == ticket, reply, now);
    }

    /// At shutdown: answers every open request (deferred, or arriving now)
    /// with `reply`, accepts no one new, and writes what the sockets take.
    pub fn complete_all(&mut self, reply: &str, now: Instant) {
        self.reply_waiting(|_| true, reply, now);
        self.step_all(now, &mut |_| Answer::Reply(reply.to_owned()));
    }

    fn reply_waiting(&mut self, which: impl Fn(&T) -> bool, reply: &str, now: Instant) {
        for c in &mut self.conns {
            if matches!(&c.state, State::Waiting(t) if which(t)) {
                c.state = State::Writing {
                    reply: reply.as_bytes().to_vec(),
                    written: 0,
                    blocked_since: None,
                };
                c.deadline = now + self.limits.reply_deadline;
            }
        }
    }

    /// Closes the connection that has waited longest without sending a
    /// whole request, or else the one whose reply has waited longest on a
    /// full socket; false if every connection is waiting on a reload or
    /// taking its reply.
    fn evict_one(&mut self) -> bool {
        let idle = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.state, State::Reading(_)))
            .min_by_key(|(_, c)| c.opened);
        let not_reading = || {
            self.conns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| match c.state {
                    State::Writing {
                        blocked_since: Some(t),
                        ..
                    } => Some((i, t)),
                    _ => None,
                })
                .min_by_key(|&(_, t)| t)
        };
        let victim = idle
            .map(|(i, _)| i)
            .or_else(|| not_reading().map(|(i, _)| i));
        if let Some(i) = victim {
            self.conns.swap_remove(i);
            self.counters.evicted += 1;
        }
        victim.is_some()
    }

    /// Advances connection `i`; false when it is finished (closed).
    fn step(
        &mut self,
        i: usize,
        now: Instant,
        handle: &mut impl FnMut(&[u8]) -> Answer<T>,
    ) -> bool {
        let limits = self.limits;
        let complete = self.complete;
        let c = &mut self.conns[i];
        if let State::Reading(buf) = &mut c.state {
            let mut chunk = [0u8; 512];
            loop {
                let r = c.stream.read(&mut chunk);
                match outcome(r, now, c.deadline, &mut self.counters) {
                    Io::Did(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        // Too long: answered by the handler as malformed.
                        if complete(buf) || buf.len() > limits.max_request_bytes {
                            break;
                        }
                    }
                    Io::Later => return true,
                    Io::Closed => return false,
                }
            }
            let request = std::mem::take(buf);
            c.state = match handle(&request) {
                Answer::Reply(r) => State::Writing {
                    reply: r.into_bytes(),
                    written: 0,
                    blocked_since: None,
                },
                Answer::Later(ticket) => State::Waiting(ticket),
            };
            c.deadline = now + limits.reply_deadline;
        }
        match &mut c.state {
            State::Reading(_) => true,
            // Waiting has no deadline of its own: what it waits for
            // (a reload) is bounded, and shutdown drops every connection.
            State::Waiting(_) => true,
            State::Writing {
                reply,
                written,
                blocked_since,
            } => {
                while *written < reply.len() {
                    let r = c.stream.write(&reply[*written..]);
                    match outcome(r, now, c.deadline, &mut self.counters) {
                        Io::Did(n) => {
                            *written += n;
                            *blocked_since = None;
                        }
                        Io::Later => {
                            blocked_since.get_or_insert(now);
                            return true;
                        }
                        Io::Closed => return false,
                    }
                }
                self.counters.answered += 1;
                false
            }
        }
    }
}

/// What a non-blocking read or write means for its connection.
enum Io {
    Did(usize),
    /// Nothing now; try again next poll.
    Later,
    Closed,
}

fn outcome(
    r: io::Result<usize>,
    now: Instant,
    deadline: Instant,
    counters: &mut ServeCounters,
) -> Io {
    match r {
        Ok(0) => {
            // The client went away (or a zero-length read at end of stream).
            counters.failed += 1;
            Io::Closed
        }
        Ok(n) => Io::Did(n),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Io::Did(0),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            if now >= deadline {
                counters.timed_out += 1;
                Io::Closed
            } else {
                Io::Later
            }
        }
        Err(_) => {
            counters.failed += 1;
            Io::Closed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    fn server(
        limits: Limits,
    ) -> (
        Server<UnixListener, u32>,
        std::path::PathBuf,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        (Server::new(l, limits, line_complete), path, dir)
    }

    fn echo(req: &[u8]) -> Answer<u32> {
        if req.starts_with(b"later") {
            Answer::Later(7)
        } else {
            Answer::Reply(String::from_utf8_lossy(req).to_uppercase())
        }
    }

    fn read_all(mut s: &UnixStream) -> String {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn a_request_sent_with_the_connect_is_answered_in_one_poll() {
        let (mut srv, path, _d) = server(Limits::default());
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"stats\n").unwrap();
        srv.poll(Instant::now(), echo);
        assert_eq!(read_all(&c), "STATS\n");
        assert_eq!(srv.open_connections(), 0);
        assert_eq!(srv.counters.answered, 1);
    }

    #[test]
    fn a_dripping_client_is_cut_off_at_the_request_deadline_not_per_read() {
        let limits = Limits {
            request_deadline: Duration::from_millis(300),
            ..Limits::default()
        };
        let (mut srv, path, _d) = server(limits);
        let mut c = UnixStream::connect(&path).unwrap();
        let t0 = Instant::now();
        srv.poll(t0, echo);
        // One byte every 90 ms (simulated clock): each read succeeds, the
        // request never completes, and the deadline counts from accept.
        for k in 1..=4u32 {
            c.write_all(b"s").unwrap();
            srv.poll(t0 + Duration::from_millis(90 * k as u64), echo);
        }
        assert_eq!(srv.open_connections(), 0);
        assert_eq!(srv.counters.timed_out, 1);
        assert_eq!(read_all(&c), "");
    }

    #[test]
    fn idle_connections_beyond_the_cap_are_evicted_oldest_first_and_a_real_client_gets_in() {
        let limits = Limits {
            max_connections: 4,
            ..Limits::default()
        };
        let (mut srv, path, _d) = server(limits);
        let t0 = Instant::now();
        let idle: Vec<UnixStream> = (0..10)
            .map(|k| {
                let s = UnixStream::connect(&path).unwrap();
                srv.poll(t0 + Duration::from_millis(k), echo);
                s
            })
            .collect();
        assert_eq!(srv.open_connections(), 4);
        assert_eq!(srv.counters.evicted, 6);
        let mut real = UnixStream::connect(&path).unwrap();
        real.write_all(b"stats\n").unwrap();
        srv.poll(t0 + Duration::from_millis(20), echo);
        assert_eq!(read_all(&real), "STATS\n");
        // The evicted ones were closed: they read end of stream.
        assert_eq!(read_all(&idle[0]), "");
    }

    #[test]
    fn with_every_slot_waiting_on_a_reload_a_newcomer_is_refused() {
        let limits = Limits {
            max_connections: 2,
            ..Limits::default()
        };
        let (mut srv, path, _d) = server(limits);
        let now = Instant::now();
        let waiting: Vec<UnixStream> = (0..2)
            .map(|_| {
                let mut c = UnixStream::connect(&path).unwrap();
                c.write_all(b"later\n").unwrap();
                srv.poll(now, echo);
                c
            })
            .collect();
        let mut extra = UnixStream::connect(&path).unwrap();
        extra.write_all(b"later\n").unwrap();
        srv.poll(now, echo);
        assert_eq!((srv.open_connections(), srv.counters.refused), (2, 1));
        assert_eq!(read_all(&extra), "");
        srv.complete(&7, "done", now);
        srv.poll(now, echo);
        for c in &waiting {
            assert_eq!(read_all(c), "done");
        }
    }

    #[test]
    fn a_deferred_reply_is_written_when_completed() {
        let (mut srv, path, _d) = server(Limits::default());
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"later\n").unwrap();
        let now = Instant::now();
        srv.poll(now, echo);
        assert_eq!(srv.open_connections(), 1);
        srv.complete(&8, "not yours", now);
        srv.complete(&7, "done", now);
        srv.poll(now, echo);
        assert_eq!(read_all(&c), "done");
        assert_eq!(srv.open_connections(), 0);
    }

    /// Every slot held by a client that asked for a large reply and never
    /// reads it: a newcomer takes the slot of the one blocked longest and
    /// is answered. Before, it was refused until a reply deadline passed,
    /// so clients reconnecting as fast as they were cut kept `rampart
    /// stats` out.
    #[test]
    fn clients_not_reading_large_replies_give_way_to_a_newcomer() {
        let limits = Limits {
            max_connections: 4,
            ..Limits::default()
        };
        let (mut srv, path, _d) = server(limits);
        let t0 = Instant::now();
        let big = |req: &[u8]| {
            if req.starts_with(b"rules") {
                Answer::Reply("x".repeat(4 << 20))
            } else {
                echo(req)
            }
        };
        let hogs: Vec<UnixStream> = (0..4)
            .map(|k| {
                let mut c = UnixStream::connect(&path).unwrap();
                c.write_all(b"rules\n").unwrap();
                srv.poll(t0 + Duration::from_millis(k), big);
                c
            })
            .collect();
        assert_eq!(srv.open_connections(), 4);
        let mut real = UnixStream::connect(&path).unwrap();
        real.write_all(b"stats\n").unwrap();
        srv.poll(t0 + Duration::from_millis(10), big);
        assert_eq!(read_all(&real), "STATS\n");
        assert_eq!((srv.counters.evicted, srv.counters.refused), (1, 0));
        assert_eq!(srv.open_connections(), 3);
        // The oldest hog went: its reply ends short.
        hogs[0].set_nonblocking(false).unwrap();
        assert!(read_all(&hogs[0]).len() < 4 << 20);
    }

    #[test]
    fn a_reply_the_client_does_not_read_is_abandoned_at_its_deadline() {
        let limits = Limits {
            reply_deadline: Duration::from_millis(100),
            ..Limits::default()
        };
        let (mut srv, path, _d) = server(limits);
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"big\n").unwrap();
        let now = Instant::now();
        // A reply far larger than the socket buffer.
        srv.poll(now, |_| Answer::Reply("x".repeat(8 << 20)));
        assert_eq!(srv.open_connections(), 1);
        srv.poll(now + Duration::from_millis(150), echo);
        assert_eq!(srv.open_connections(), 0);
        assert_eq!(srv.counters.timed_out, 1);
    }
}
