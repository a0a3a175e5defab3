//! The control plane's side of `rampart sessions` and `sessions clear`:
//! one request at a time, carried out through each worker's mailbox
//! ([`crate::sessions`]) a page at a time. A listing answers one page of
//! at most `limit` sessions and the cursor to go on from; a clear walks
//! every worker's table, ends what the filter matches in each page, and
//! answers with the counts. The filter sees names (policy, zones,
//! interfaces, application) as the session's own config generation named
//! them, so it is applied here, where every live generation's names are.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rampart_events::{FlowFacts, Names, SessionCursor, SessionRequest};
use rampart_pipeline::session::WalkCursor;
use rampart_vocab::protocol_name;
use serde_json::{json, Value};

use crate::sessions::{SessionJob, SessionLink, SessionSnapshot, PAGE_SESSIONS};

/// Requests waiting behind the one being carried out; more are refused.
const MAX_QUEUED: usize = 8;

/// How long one request may take before it is answered with an error
/// (a worker that does not answer its mailbox is stuck or stopping).
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);

pub type DeskTicket = u64;

pub struct SessionDesk {
    links: Vec<SessionLink>,
    /// The names of every generation sessions may still have been
    /// created in.
    names: BTreeMap<u32, Names>,
    queue: VecDeque<(DeskTicket, SessionRequest)>,
    active: Option<Active>,
    next_ticket: DeskTicket,
}

/// The request being carried out.
struct Active {
    ticket: DeskTicket,
    request: SessionRequest,
    started: Instant,
    worker: usize,
    /// Where the walk of `worker`'s table goes on (`None`: it is done).
    cursor: Option<WalkCursor>,
    /// A job is with the worker.
    waiting: bool,
    rows: Vec<Value>,
    /// Where the next page starts, once `rows` is full.
    next: Option<SessionCursor>,
    scanned: u64,
    matched: u64,
    cleared: u64,
}

/// A refusal that comes back at once.
pub enum Refused {
    Busy,
}

impl SessionDesk {
    pub fn new(links: Vec<SessionLink>) -> SessionDesk {
        SessionDesk {
            links,
            names: BTreeMap::new(),
            queue: VecDeque::new(),
            active: None,
            next_ticket: 1,
        }
    }

    /// The names of `generation`; generations older than `oldest` (no
    /// session can name them any more) are forgotten.
    pub fn set_names(&mut self, generation: u32, names: &Names, oldest: u32) {
        self.names.insert(generation, names.clone());
        self.names.retain(|g, _| *g >= oldest.min(generation));
    }

    /// A request is under way or waiting.
    pub fn busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    /// Queues a request; its answer comes from [`SessionDesk::poll`].
    pub fn request(&mut self, request: SessionRequest) -> Result<DeskTicket, Refused> {
        if self.queue.len() >= MAX_QUEUED {
            return Err(Refused::Busy);
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queue.push_back((ticket, request));
        Ok(ticket)
    }

    /// Moves the request along without waiting; returns its answer (one
    /// line of JSON) once it is done.
    pub fn poll(&mut self, now: Instant) -> Option<(DeskTicket, String)> {
        if self.active.is_none() {
            let (ticket, request) = self.queue.pop_front()?;
            let after = request.after;
            self.active = Some(Active {
                ticket,
                request,
                started: now,
                worker: after.worker as usize,
                cursor: Some(WalkCursor(after.slot)),
                waiting: false,
                rows: Vec::new(),
                next: None,
                scanned: 0,
                matched: 0,
                cleared: 0,
            });
        }
        let a = self.active.as_mut()?;
        if now.duration_since(a.started) > REQUEST_DEADLINE {
            let reply = json!({"error": "the workers did not answer in time (stopping?)"});
            return self.finish(reply);
        }
        loop {
            if a.waiting {
                let job = self.links.get(a.worker).and_then(SessionLink::answer)?;
                a.waiting = false;
                match job {
                    SessionJob::List { cursor, page } => {
                        a.cursor = cursor;
                        let to_clear = take_page(a, &self.names, &page);
                        if !to_clear.is_empty() {
                            let job = SessionJob::Clear {
                                sessions: to_clear,
                                done: 0,
                                cleared: 0,
                            };
                            if !self.links[a.worker].send(job) {
                                return self.finish(gone());
                            }
                            a.waiting = true;
                            continue;
                        }
                    }
                    SessionJob::Clear { cleared, .. } => a.cleared += cleared as u64,
                }
            }
            if a.next.is_some() {
                return self.finish_active();
            }
            if a.cursor.is_none() {
                a.worker += 1;
                a.cursor = Some(WalkCursor::START);
            }
            if a.worker >= self.links.len() {
                return self.finish_active();
            }
            let job = SessionJob::List {
                cursor: a.cursor,
                page: Vec::with_capacity(PAGE_SESSIONS),
            };
            if !self.links[a.worker].send(job) {
                return self.finish(gone());
            }
            a.waiting = true;
        }
    }

    fn finish_active(&mut self) -> Option<(DeskTicket, String)> {
        let a = self.active.as_mut()?;
        let reply = if a.request.clear {
            json!({"ok": true, "matched": a.matched, "cleared": a.cleared, "scanned": a.scanned})
        } else {
            json!({
                "sessions": std::mem::take(&mut a.rows),
                "next": a.next.map(|c| c.to_string()),
                "scanned": a.scanned,
            })
        };
        self.finish(reply)
    }

    fn finish(&mut self, reply: Value) -> Option<(DeskTicket, String)> {
        let a = self.active.take()?;
        Some((a.ticket, reply.to_string()))
    }
}

fn gone() -> Value {
    json!({"error": "a worker has stopped"})
}

/// Takes what the filter passes from a worker's page: rows of a listing
/// (up to its limit, noting where the next page starts) or the sessions
/// a clear ends.
fn take_page(
    a: &mut Active,
    names: &BTreeMap<u32, Names>,
    page: &[SessionSnapshot],
) -> Vec<(rampart_pipeline::flow::FlowKey, u64)> {
    let mut to_clear = Vec::new();
    for snap in page {
        a.scanned += 1;
        let view = View::of(snap, names.get(&snap.session.meta.generation));
        if !a.request.filter.matches(&view.facts()) {
            continue;
        }
        a.matched += 1;
        if a.request.clear {
            to_clear.push((snap.session.key(), snap.session.id));
        } else if a.rows.len() < a.request.limit as usize {
            a.rows.push(view.json(a.worker));
        } else {
            a.next = Some(SessionCursor {
                worker: a.worker as u16,
                slot: snap.slot,
            });
            break;
        }
    }
    if !a.request.clear && a.next.is_none() && a.rows.len() == a.request.limit as usize {
        // Full at the page's end: the next page starts where the walk
        // goes on.
        a.next = Some(match a.cursor {
            Some(c) => SessionCursor {
                worker: a.worker as u16,
                slot: c.0,
            },
            None => SessionCursor {
                worker: a.worker as u16 + 1,
                slot: 0,
            },
        });
    }
    to_clear
}

/// A snapshot with its names resolved.
struct View<'a> {
    snap: &'a SessionSnapshot,
    names: Option<&'a Names>,
}

impl<'a> View<'a> {
    fn of(snap: &'a SessionSnapshot, names: Option<&'a Names>) -> View<'a> {
        View { snap, names }
    }

    fn policy(&self) -> Option<&'a str> {
        self.names?.policy(self.snap.session.meta.policy)
    }

    fn zone(&self, id: u16) -> Option<&'a str> {
        self.names?.zone(id)
    }

    fn interface(&self, id: u16) -> Option<&'a str> {
        self.names?.interface(id)
    }

    fn application(&self) -> Option<&'a str> {
        self.names?.application(self.snap.session.meta.application)
    }

    fn facts(&self) -> FlowFacts<'a> {
        let s = &self.snap.session;
        let key = s.key();
        let m = &s.meta;
        FlowFacts {
            source: Some(key.src.to_ip_addr()),
            destination: Some(key.dst.to_ip_addr()),
            source_port: key.src_port,
            destination_port: key.dst_port,
            protocol: key.protocol,
            application: self.application(),
            policy: self.policy(),
            zones: [self.zone(m.from_zone), self.zone(m.to_zone)],
            interfaces: [self.interface(m.ingress), self.interface(m.egress)],
        }
    }

    /// The session as `rampart sessions --json` shows it: Junos's `In`
    /// and `Out` wings (the initiator's direction and the answer's), with
    /// each wing's interface and counts.
    fn json(&self, worker: usize) -> Value {
        let s = &self.snap.session;
        let key = s.key();
        let m = &s.meta;
        let secs = |ns: u64| ns as f64 / 1e9;
        let now = self.snap.now_ns;
        let idle = now.saturating_sub(s.last_seen_ns);
        let wing = |src: IpAddr, sport, dst: IpAddr, dport, iface, d: usize| {
            json!({
                "source": src.to_string(), "source_port": sport,
                "destination": dst.to_string(), "destination_port": dport,
                "interface": self.interface(iface), "packets": s.packets[d], "bytes": s.bytes[d],
            })
        };
        json!({
            "session_id": s.id,
            "worker": worker,
            "protocol": protocol_name(key.protocol).map_or_else(|| key.protocol.to_string(), str::to_owned),
            "policy": self.policy(),
            "policy_id": m.policy,
            "generation": m.generation,
            "application": self.application(),
            "from_zone": self.zone(m.from_zone),
            "to_zone": self.zone(m.to_zone),
            "state": s.tcp.name(),
            "closed": s.closed().map(|r| r.name()),
            "age_s": secs(now.saturating_sub(s.created_ns)),
            "idle_s": secs(idle),
            "timeout_s": secs(self.snap.timeout_ns.saturating_sub(idle)),
            "in": wing(key.src.to_ip_addr(), key.src_port, key.dst.to_ip_addr(), key.dst_port, m.ingress, 0),
            "out": wing(key.dst.to_ip_addr(), key.dst_port, key.src.to_ip_addr(), key.src_port, m.egress, 1),
        })
    }
}
