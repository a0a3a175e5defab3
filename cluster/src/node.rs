//! One node's side of the sync link, sans-IO: what it sends and what it
//! makes of what it receives. The control plane feeds it the session
//! changes its workers report, the datagrams the socket reads and the
//! time; it answers with datagrams to send and sessions to install or
//! remove. Everything the protocol does (numbering, acknowledging,
//! asking again, resyncing, electing) happens here, so two `Node`s joined
//! by a simulated lossy link show the whole protocol in a test.

use rampart_pipeline::session_sync::SyncRecord;

use crate::ftfw::{self, Arrival, Receiver, Resend, Sender};
use crate::role::{Path, PeerState, Role, Roles, Settings, Why};
use crate::wire::{Closed, Header, Heartbeat, Kind, Message, WireError, MAX_RECORDS};

/// What a received datagram asks of the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apply {
    /// Install these sessions (each in the table of the worker that owns
    /// its flow).
    Install(Vec<SyncRecord>),
    /// Remove these sessions (they ended on the peer, which logged them).
    Remove(Vec<Closed>),
    /// The peer asks for the whole table: walk it and pass every session
    /// to [`Node::bulk`].
    SendBulk,
    /// This node's role changed.
    Role(Role, Why),
    /// The peer's whole table follows: mark what it refreshes ...
    BulkBegins,
    /// ... and it has all come: what it did not refresh is stale (a close
    /// this node missed) and goes.
    BulkEnds,
}

/// Counters of the sync link, beside the FT-FW ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Datagrams that were not messages of this protocol version, or came
    /// from this node's own id (a loop): dropped, never installed.
    pub refused: u64,
    pub records_sent: u64,
    pub records_received: u64,
    pub bulk_requests: u64,
    /// Datagrams of session records sent while a bulk sync was under way
    /// (live updates travel among its pages).
    pub bulk_pages: u64,
}

pub struct Node {
    node: u16,
    epoch: u64,
    tx: Sender,
    rx: Receiver,
    roles: Roles,
    heartbeat_every_ns: u64,
    last_heartbeat_ns: Option<u64>,
    /// Records waiting to fill a datagram.
    pending: Vec<SyncRecord>,
    closing: Vec<Closed>,
    pub counters: LinkCounters,
    /// The last refusal, for the log (one line per kind of problem).
    pub last_refusal: Option<WireError>,
    /// A bulk sync was asked for and has not begun: asked again at every
    /// heartbeat of the peer (the request may be lost).
    bulk_wanted: bool,
    /// Sessions the peer closed lately, by id: a resent update of one of
    /// them (numbered before its close, arriving after it) is not
    /// installed again.
    tombstones: std::collections::HashSet<u64>,
    tombstone_order: std::collections::VecDeque<u64>,
    /// A bulk sync is being sent: datagrams of records count as its pages.
    in_bulk: bool,
    /// The peer's last heartbeat (its config generation and sessions).
    peer_heartbeat: Option<Heartbeat>,
}

/// NACKs a heartbeat answers with at most (one per run of missing
/// numbers).
const NACK_RUNS: usize = 16;

/// Closed sessions remembered against late resends.
const TOMBSTONES: usize = 65_536;

impl Node {
    /// A node with `settings`, in `epoch` (its boot id), keeping at most
    /// `resend_bytes` of unacknowledged datagrams.
    pub fn new(
        settings: Settings,
        epoch: u64,
        heartbeat_every_ns: u64,
        resend_bytes: usize,
        now_ns: u64,
    ) -> Node {
        Node {
            node: settings.node,
            epoch,
            tx: Sender::new(resend_bytes, 1),
            rx: Receiver::default(),
            roles: Roles::new(settings, now_ns),
            heartbeat_every_ns,
            last_heartbeat_ns: None,
            pending: Vec::new(),
            closing: Vec::new(),
            counters: LinkCounters::default(),
            last_refusal: None,
            bulk_wanted: false,
            tombstones: Default::default(),
            tombstone_order: Default::default(),
            in_bulk: false,
            peer_heartbeat: None,
        }
    }

    pub fn role(&self) -> Role {
        self.roles.role()
    }

    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// What the peer said in its last heartbeat (none since it left).
    pub fn peer_heartbeat(&self) -> Option<Heartbeat> {
        self.peer_heartbeat
    }

    pub fn sender_counters(&self) -> ftfw::SenderCounters {
        self.tx.counters
    }

    pub fn receiver_counters(&self) -> ftfw::ReceiverCounters {
        self.rx.counters
    }

    fn header(&self, kind: Kind, seq: u32, a: u32, b: u32, records: u16) -> Header {
        Header {
            kind,
            node: self.node,
            epoch: self.epoch,
            seq,
            a,
            b,
            records,
        }
    }

    /// A session created or changed: sent once a datagram's worth waits,
    /// or at [`Node::flush`].
    pub fn update(&mut self, r: SyncRecord, out: &mut Vec<Vec<u8>>) {
        self.pending.push(r);
        if self.pending.len() == MAX_RECORDS {
            self.flush_updates(out);
        }
    }

    /// A session that ended here (and was logged here).
    pub fn closed(&mut self, c: Closed, out: &mut Vec<Vec<u8>>) {
        self.closing.push(c);
        if self.closing.len() == MAX_RECORDS {
            self.flush_closes(out);
        }
    }

    /// Sends what waits.
    pub fn flush(&mut self, out: &mut Vec<Vec<u8>>) {
        self.flush_updates(out);
        self.flush_closes(out);
    }

    fn sequenced(&mut self, kind: Kind, records: u16, body: &[u8], out: &mut Vec<Vec<u8>>) {
        let mut d = Vec::with_capacity(crate::wire::HEADER + body.len());
        self.header(kind, self.tx.next_seq(), 0, 0, records)
            .encode(&mut d);
        d.extend_from_slice(body);
        out.push(d.clone());
        self.tx.sent(d);
    }

    fn flush_updates(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut body = Vec::new();
        for r in &self.pending {
            r.encode(&mut body);
        }
        let n = self.pending.len();
        self.pending.clear();
        self.counters.bulk_pages += u64::from(self.in_bulk && n > 0);
        self.send_records(Kind::Update, n, &body, out);
    }

    fn flush_closes(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut body = Vec::new();
        for c in &self.closing {
            c.encode(&mut body);
        }
        let n = self.closing.len();
        self.closing.clear();
        self.send_records(Kind::Close, n, &body, out);
    }

    /// A numbered datagram of `n` records (none: nothing to send).
    fn send_records(&mut self, kind: Kind, n: usize, body: &[u8], out: &mut Vec<Vec<u8>>) {
        if n == 0 {
            return;
        }
        self.counters.records_sent += n as u64;
        self.sequenced(kind, n as u16, body, out);
    }

    /// The whole table for a peer that asked ([`Apply::SendBulk`]):
    /// `sessions` are every session, in pages; framed by BulkStart and
    /// BulkEnd.
    pub fn bulk(&mut self, sessions: impl IntoIterator<Item = SyncRecord>, out: &mut Vec<Vec<u8>>) {
        self.begin_bulk(out);
        for r in sessions {
            self.bulk_record(r, out);
        }
        self.end_bulk(out);
    }

    /// [`Node::bulk`] a piece at a time, for a table walked between
    /// bursts: the start (what waited goes first) ...
    pub fn begin_bulk(&mut self, out: &mut Vec<Vec<u8>>) {
        self.flush(out);
        self.sequenced(Kind::BulkStart, 0, &[], out);
        self.in_bulk = true;
    }

    /// ... every session, in pages of a datagram (updates of sessions
    /// that change meanwhile travel among them, as pfsync's) ...
    pub fn bulk_record(&mut self, r: SyncRecord, out: &mut Vec<Vec<u8>>) {
        self.pending.push(r);
        if self.pending.len() == MAX_RECORDS {
            self.flush_updates(out);
        }
    }

    /// ... and the end.
    pub fn end_bulk(&mut self, out: &mut Vec<Vec<u8>>) {
        self.flush_updates(out);
        self.sequenced(Kind::BulkEnd, 0, &[], out);
        self.in_bulk = false;
    }

    /// Time passes: a heartbeat when one is due (carrying this node's
    /// role and the last number it sent), and a takeover if the peer has
    /// been silent on every path.
    pub fn tick(
        &mut self,
        now_ns: u64,
        sessions: u64,
        generation: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<Apply> {
        let due = self
            .last_heartbeat_ns
            .is_none_or(|t| now_ns.saturating_sub(t) >= self.heartbeat_every_ns);
        if due {
            self.last_heartbeat_ns = Some(now_ns);
            let active = self.roles.role() == Role::Active;
            out.push(self.heartbeat(active, false, sessions, generation));
        }
        self.roles.tick(now_ns).map(|(r, w)| Apply::Role(r, w))
    }

    /// A heartbeat now, whenever the last one went (after a role change
    /// the peer should hear of at once).
    pub fn heartbeat_now(
        &mut self,
        now_ns: u64,
        sessions: u64,
        generation: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> Option<Apply> {
        self.last_heartbeat_ns = None;
        self.tick(now_ns, sessions, generation, out)
    }

    /// This node stops: a heartbeat that says so, so the peer takes over
    /// (or stops waiting for it) at once.
    pub fn leave(&mut self, sessions: u64, generation: u32, out: &mut Vec<Vec<u8>>) {
        out.push(self.heartbeat(false, true, sessions, generation));
    }

    /// A heartbeat datagram: this node's role (or that it leaves), and
    /// the last number it sent, for the peer's FT-FW.
    fn heartbeat(&self, active: bool, leaving: bool, sessions: u64, generation: u32) -> Vec<u8> {
        let mut d = Vec::new();
        self.header(Kind::Heartbeat, 0, self.tx.last_sent(), 0, 0)
            .encode(&mut d);
        Heartbeat {
            active,
            leaving,
            priority: self.roles.priority(),
            generation,
            sessions,
        }
        .encode(&mut d);
        d
    }

    /// An operator's failover.
    pub fn manual_failover(&mut self) -> Option<Apply> {
        self.roles.manual_failover().map(|(r, w)| Apply::Role(r, w))
    }

    /// A datagram from the sync link (`path`: the link itself, or a
    /// heartbeat on the second heartbeat link). Answers go to `out`; what the
    /// control plane must do is returned.
    pub fn receive(
        &mut self,
        d: &[u8],
        path: Path,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
    ) -> Vec<Apply> {
        let message = match Message::decode(d) {
            Ok(m) if m.header().node != self.node => m,
            Ok(_) => {
                self.counters.refused += 1;
                return Vec::new();
            }
            Err(e) => {
                self.counters.refused += 1;
                self.last_refusal = Some(e);
                return Vec::new();
            }
        };
        let h = *message.header();
        let mut apply = Vec::new();
        if h.kind.sequenced() {
            match self.rx.arrive(h.epoch, h.seq) {
                Arrival::InOrder { ack } => {
                    if let Some(a) = ack {
                        self.control(Kind::Ack, a, 0, out);
                    }
                }
                Arrival::AfterGap { from, to } => self.control(Kind::Nack, from, to, out),
                Arrival::Recovered => {}
                Arrival::FirstContact | Arrival::TooFarBehind => self.ask_bulk(out),
                Arrival::Duplicate => return apply,
            }
        }
        match message {
            Message::Heartbeat(_, hb) if hb.leaving => {
                self.peer_heartbeat = None;
                if let Some((r, w)) = self.roles.peer_left() {
                    apply.push(Apply::Role(r, w));
                }
            }
            Message::Heartbeat(h, hb) => {
                self.peer_heartbeat = Some(hb);
                let peer = PeerState {
                    node: h.node,
                    priority: hb.priority,
                    active: hb.active,
                };
                if let Some((r, w)) = self.roles.heartbeat(path, peer, now_ns) {
                    apply.push(Apply::Role(r, w));
                    if w == Why::YieldedToPeer {
                        // Both were active: what this node holds is its
                        // own; the active's table replaces it.
                        self.ask_bulk(out);
                    }
                }
                if path == Path::SyncLink {
                    match self.rx.heartbeat(h.epoch, h.a) {
                        ftfw::Heartbeat::Ack(a) => self.control(Kind::Ack, a, 0, out),
                        ftfw::Heartbeat::Nack { .. } => {
                            for (from, to) in self.rx.missing_runs(NACK_RUNS) {
                                self.control(Kind::Nack, from, to, out);
                            }
                        }
                        ftfw::Heartbeat::Unknown => self.ask_bulk(out),
                    }
                    if self.bulk_wanted {
                        self.control(Kind::BulkRequest, 0, 0, out);
                    }
                }
            }
            Message::Update(_, mut records) => {
                self.counters.records_received += records.len() as u64;
                records.retain(|r| !self.tombstones.contains(&r.id));
                apply.push(Apply::Install(records));
            }
            Message::Close(_, closed) => {
                self.counters.records_received += closed.len() as u64;
                for c in &closed {
                    if self.tombstones.insert(c.id) {
                        self.tombstone_order.push_back(c.id);
                    }
                }
                while self.tombstone_order.len() > TOMBSTONES {
                    if let Some(old) = self.tombstone_order.pop_front() {
                        self.tombstones.remove(&old);
                    }
                }
                apply.push(Apply::Remove(closed));
            }
            Message::Control(h) => match h.kind {
                Kind::Ack => self.tx.ack(h.a),
                Kind::Nack => match self.tx.nack(h.a, h.b) {
                    Resend::These(again) => out.extend(again.into_iter().map(<[u8]>::to_vec)),
                    // Older than the resend queue: the whole table.
                    Resend::Resync => apply.push(Apply::SendBulk),
                },
                Kind::BulkRequest => {
                    self.counters.bulk_requests += 1;
                    if self.role() == Role::Active {
                        apply.push(Apply::SendBulk);
                    }
                }
                Kind::BulkStart => {
                    self.bulk_wanted = false;
                    apply.push(Apply::BulkBegins);
                }
                Kind::BulkEnd => apply.push(Apply::BulkEnds),
                _ => {}
            },
        }
        apply
    }

    fn control(&self, kind: Kind, a: u32, b: u32, out: &mut Vec<Vec<u8>>) {
        let mut d = Vec::new();
        self.header(kind, 0, a, b, 0).encode(&mut d);
        out.push(d);
    }

    /// A standby asks the active for its whole table; an active has
    /// nothing to learn from a standby (it forwards nothing, so its table
    /// is what it was sent).
    fn ask_bulk(&mut self, out: &mut Vec<Vec<u8>>) {
        self.rx.give_up_missing();
        if self.role() == Role::Active {
            return;
        }
        self.bulk_wanted = true;
        self.control(Kind::BulkRequest, 0, 0, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_pipeline::flow::{Addr, FlowKey};
    use rampart_pipeline::session::{SessionMeta, SessionTable, TcpState, Timeouts};
    use rampart_pipeline::tcp_window::Windows;

    const MS: u64 = 1_000_000;

    fn record(i: u32) -> SyncRecord {
        SyncRecord {
            id: u64::from(i),
            key: FlowKey {
                src: Addr::from_ipv4([198, 51, 100, (i % 250) as u8]),
                dst: Addr::from_ipv4([192, 0, 2, 80]),
                src_port: 1024 + (i % 60_000) as u16,
                dst_port: 80,
                protocol: 6,
            },
            tcp: TcpState::Established,
            fin: [false; 2],
            last_fin: 0,
            closed: None,
            meta: SessionMeta::default(),
            age_ns: 1,
            idle_ns: 0,
            packets: [u64::from(i), 1],
            bytes: [60, 60],
            windows: Windows::DEFAULT,
            origin: 0,
        }
    }

    fn settings(node: u16, priority: u8) -> Settings {
        Settings {
            node,
            priority,
            preempt: false,
            hold_ns: 1_000 * MS,
            second_path: false,
            takeover_on_sync_loss: true,
        }
    }

    /// A node and its session table (the standby's is what it installs).
    struct Firewall {
        node: Node,
        table: SessionTable,
    }

    impl Firewall {
        fn new(node: u16, priority: u8, epoch: u64, now: u64) -> Firewall {
            Firewall {
                node: Node::new(settings(node, priority), epoch, 100 * MS, 1 << 20, now),
                table: SessionTable::new(4096, 0, Timeouts::default()),
            }
        }

        fn apply(&mut self, what: Vec<Apply>, now: u64, out: &mut Vec<Vec<u8>>) {
            for a in what {
                match a {
                    Apply::Install(rs) => rs.iter().for_each(|r| {
                        self.table.install(r, now).unwrap();
                    }),
                    Apply::Remove(cs) => cs.iter().for_each(|c| {
                        if let Some(h) = self.table.find(&c.key, c.id) {
                            self.table.remove(h);
                        }
                    }),
                    Apply::SendBulk => {
                        let all: Vec<SyncRecord> =
                            self.table.iter().map(|(_, s)| s.sync_record(now)).collect();
                        self.node.bulk(all, out);
                    }
                    Apply::Role(..) | Apply::BulkBegins | Apply::BulkEnds => {}
                }
            }
        }
    }

    /// Moves datagrams between two nodes, losing those `lose` picks.
    fn exchange(
        a: &mut Firewall,
        b: &mut Firewall,
        a_out: &mut Vec<Vec<u8>>,
        b_out: &mut Vec<Vec<u8>>,
        now: u64,
        lose: &mut impl FnMut() -> bool,
    ) {
        for _ in 0..50 {
            if a_out.is_empty() && b_out.is_empty() {
                return;
            }
            for d in std::mem::take(a_out) {
                if !lose() {
                    let got = b.node.receive(&d, Path::SyncLink, now, b_out);
                    b.apply(got, now, b_out);
                }
            }
            for d in std::mem::take(b_out) {
                if !lose() {
                    let got = a.node.receive(&d, Path::SyncLink, now, a_out);
                    a.apply(got, now, a_out);
                }
            }
        }
    }

    /// fw1 is active with sessions before fw2 starts; fw2 joins, gets the
    /// table by bulk sync, then every change through a link that loses a
    /// fifth of all datagrams; fw1 falls silent and fw2 takes over with
    /// the same sessions.
    #[test]
    fn a_standby_joins_by_bulk_sync_follows_every_change_through_loss_and_takes_over() {
        let mut fw1 = Firewall::new(1, 200, 0xaaaa, 0);
        let (mut o1, mut o2) = (Vec::new(), Vec::new());
        assert!(fw1.node.tick(0, 0, 1, &mut o1).is_none());
        fw1.node.tick(1_000 * MS, 0, 1, &mut o1);
        assert_eq!(fw1.node.role(), Role::Active, "alone, it took over");
        for i in 0..500 {
            fw1.table.install(&record(i), 0).unwrap();
        }
        o1.clear();

        let mut fw2 = Firewall::new(2, 100, 0xbbbb, 1_000 * MS);
        let mut x = 7u64;
        let mut lose = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.is_multiple_of(5)
        };
        let mut now = 1_000 * MS;
        for round in 0..60u32 {
            now += 50 * MS;
            // New sessions on fw1, reported to the link.
            for i in 0..20 {
                let r = record(500 + round * 20 + i);
                fw1.table.install(&r, now).unwrap();
                fw1.node.update(r, &mut o1);
            }
            // Some end on fw1.
            let end = record(round * 3);
            if let Some(h) = fw1.table.find(&end.key, end.id) {
                fw1.table.remove(h);
                fw1.node.closed(
                    Closed {
                        id: end.id,
                        key: end.key,
                    },
                    &mut o1,
                );
            }
            fw1.node.flush(&mut o1);
            let (n1, n2) = (fw1.table.len() as u64, fw2.table.len() as u64);
            fw1.node.tick(now, n1, 1, &mut o1);
            fw2.node.tick(now, n2, 1, &mut o2);
            exchange(&mut fw1, &mut fw2, &mut o1, &mut o2, now, &mut lose);
        }
        // A few quiet heartbeats for the last losses, over a clean link.
        for _ in 0..10 {
            now += 100 * MS;
            let (n1, n2) = (fw1.table.len() as u64, fw2.table.len() as u64);
            fw1.node.tick(now, n1, 1, &mut o1);
            fw2.node.tick(now, n2, 1, &mut o2);
            exchange(&mut fw1, &mut fw2, &mut o1, &mut o2, now, &mut || false);
        }
        assert_eq!(fw2.node.role(), Role::Standby);
        let ids = |t: &SessionTable| {
            let mut v: Vec<u64> = t.iter().map(|(_, s)| s.id).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            ids(&fw2.table),
            ids(&fw1.table),
            "the standby holds the active's table"
        );
        assert!(
            fw2.node.receiver_counters().missing > 0,
            "the link lost some"
        );
        assert!(fw2.node.counters.bulk_requests == 0 && fw1.node.counters.bulk_requests >= 1);

        // fw1 dies: fw2 takes over after the hold time, with every session.
        let mut took_over = None;
        for _ in 0..20 {
            now += 100 * MS;
            if let Some(a) = fw2.node.tick(now, 0, 1, &mut o2) {
                took_over = Some(a);
            }
        }
        assert_eq!(took_over, Some(Apply::Role(Role::Active, Why::PeerSilent)));
    }

    #[test]
    fn garbage_and_a_node_hearing_itself_are_refused_and_counted() {
        let mut n = Node::new(settings(1, 100), 1, 100 * MS, 1 << 20, 0);
        let mut out = Vec::new();
        assert!(n
            .receive(
                b"GET / HTTP/1.0\r\n\r\n-----------------",
                Path::SyncLink,
                0,
                &mut out
            )
            .is_empty());
        assert_eq!(n.last_refusal, Some(WireError::Magic));
        let mut other_version = Vec::new();
        n.header(Kind::Ack, 0, 0, 0, 0).encode(&mut other_version);
        other_version[4] = 9;
        n.receive(&other_version, Path::SyncLink, 0, &mut out);
        assert_eq!(n.last_refusal, Some(WireError::Version(9)));
        // Its own heartbeat, looped back.
        n.tick(0, 0, 1, &mut out);
        let own = out.pop().unwrap();
        assert!(n.receive(&own, Path::SyncLink, 0, &mut out).is_empty());
        assert_eq!(n.counters.refused, 3);
        assert!(out.is_empty(), "nothing answered");
    }
}

#[cfg(test)]
mod leaving {
    use super::*;

    const MS: u64 = 1_000_000;

    fn node(id: u16, priority: u8) -> Node {
        let settings = Settings {
            node: id,
            priority,
            preempt: false,
            hold_ns: 1_000 * MS,
            second_path: true,
            takeover_on_sync_loss: false,
        };
        Node::new(settings, u64::from(id), 100 * MS, 1 << 20, 0)
    }

    /// A node that stops says so: its standby takes over at once, not a
    /// hold time later, and no longer counts it as a live peer.
    #[test]
    fn a_leaving_active_hands_the_role_over_at_once() {
        let (mut fw1, mut fw2) = (node(1, 200), node(2, 100));
        let mut out = Vec::new();
        // Both heard each other once: fw1 (higher priority) is active.
        fw1.tick(0, 0, 1, &mut out);
        let hb1 = std::mem::take(&mut out);
        fw2.tick(0, 0, 1, &mut out);
        let hb2 = std::mem::take(&mut out);
        for d in &hb2 {
            fw1.receive(d, Path::SyncLink, MS, &mut out);
        }
        out.clear();
        assert_eq!(fw1.role(), Role::Active);
        for d in &hb1 {
            fw2.receive(d, Path::SyncLink, MS, &mut out);
        }
        fw1.tick(2 * MS, 0, 1, &mut out);
        out.clear();
        assert_eq!(fw2.role(), Role::Standby);
        fw1.leave(0, 1, &mut out);
        let mut took = Vec::new();
        for d in &out {
            took.extend(fw2.receive(d, Path::SyncLink, 3 * MS, &mut Vec::new()));
        }
        assert_eq!(took, vec![Apply::Role(Role::Active, Why::PeerLeft)]);
        assert!(fw2.roles().peer().is_none());
        // A heartbeat flag a node never writes is refused.
        let mut d = out[0].clone();
        d[crate::wire::HEADER] |= 4;
        assert_eq!(Message::decode(&d), Err(WireError::Reserved));
    }
}
