//! Who forwards: active/standby election between the two nodes, sans-IO
//! (the caller passes the time and what it heard).
//!
//! Each node hears its peer's heartbeats on up to two paths: the sync
//! link (where sessions travel, as pfsync's) and a second heartbeat link
//! on a network of its own (as a Junos chassis cluster's control and
//! fabric links: one cable or switch failing does not look like a dead
//! peer).
//! A standby takes over only when every path it listens on has been
//! silent for the hold time: if the sync link alone fails while the second
//! link still hears the active, both keep their roles (no split brain:
//! two active bump-in-the-wire nodes on one segment would loop), and the
//! loss is reported ([`Roles::paths_down`]). A node configured with the
//! sync link as its only path takes over when that is silent, and says in
//! its config that it accepts the risk (`takeover_on_sync_loss`).
//!
//! Both active (after a partition heals, or two nodes started alone): the
//! one with the lower priority yields, the lower node id on a tie.
//! `preempt` lets a node with a higher priority take the active role back
//! from a healthy peer; a manual failover hands it over whatever the
//! priorities, and holds until the next manual failover.

/// A path a heartbeat can come by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    SyncLink = 0,
    HeartbeatLink = 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Standby,
    Active,
}

/// Why the role changed, for the log and `cluster status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Every path was silent for the hold time.
    PeerSilent,
    /// Both were active: this node has the lower priority (or id).
    YieldedToPeer,
    /// `preempt`: this node has the higher priority and the peer is well.
    Preempted,
    /// An operator's `rampart cluster failover`.
    Manual,
    /// The peer handed the role over (it went standby).
    PeerYielded,
    /// The peer said it is stopping.
    PeerLeft,
}

/// This node's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub node: u16,
    pub priority: u8,
    pub preempt: bool,
    pub hold_ns: u64,
    /// Heartbeats are expected on a second heartbeat link too.
    pub second_path: bool,
    /// With the sync link as the only path: take over when it is silent.
    pub takeover_on_sync_loss: bool,
}

/// What the peer's last heartbeat said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerState {
    pub node: u16,
    pub priority: u8,
    pub active: bool,
}

pub struct Roles {
    settings: Settings,
    role: Role,
    peer: Option<PeerState>,
    /// When each path last brought a heartbeat.
    heard: [Option<u64>; 2],
    /// A manual failover holds the roles it set until the next one.
    manual: bool,
    pub failovers: u64,
}

impl Roles {
    /// A node starts standby: it forwards nothing until it has heard its
    /// peer (or the hold time has passed in silence).
    pub fn new(settings: Settings, now_ns: u64) -> Roles {
        Roles {
            settings,
            role: Role::Standby,
            peer: None,
            heard: [Some(now_ns), Some(now_ns)],
            manual: false,
            failovers: 0,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn priority(&self) -> u8 {
        self.settings.priority
    }

    pub fn peer(&self) -> Option<PeerState> {
        self.peer
    }

    fn paths(&self) -> &'static [Path] {
        if self.settings.second_path {
            &[Path::SyncLink, Path::HeartbeatLink]
        } else {
            &[Path::SyncLink]
        }
    }

    fn silent(&self, p: Path, now_ns: u64) -> bool {
        self.heard[p as usize].is_none_or(|t| now_ns.saturating_sub(t) >= self.settings.hold_ns)
    }

    /// The paths listened on that have been silent for the hold time.
    pub fn paths_down(&self, now_ns: u64) -> Vec<Path> {
        self.paths()
            .iter()
            .copied()
            .filter(|&p| self.silent(p, now_ns))
            .collect()
    }

    fn become_(&mut self, role: Role, why: Why) -> Option<(Role, Why)> {
        if self.role == role {
            return None;
        }
        self.role = role;
        self.failovers += 1;
        Some((role, why))
    }

    /// The peer's heartbeat, by `path`; a change of this node's role, if
    /// it makes one.
    pub fn heartbeat(&mut self, path: Path, peer: PeerState, now_ns: u64) -> Option<(Role, Why)> {
        self.heard[path as usize] = Some(now_ns);
        let before = self.peer.replace(peer);
        let me = (self.settings.priority, u16::MAX - self.settings.node);
        let them = (peer.priority, u16::MAX - peer.node);
        match (self.role, peer.active) {
            (Role::Active, true) if self.manual => None,
            (Role::Active, true) if me < them => self.become_(Role::Standby, Why::YieldedToPeer),
            (Role::Active, true) => None,
            (Role::Standby, false) if before.is_some_and(|b| b.active) && !self.manual => {
                self.become_(Role::Active, Why::PeerYielded)
            }
            (Role::Standby, false) if !self.manual && me > them => {
                self.become_(Role::Active, Why::PeerYielded)
            }
            (Role::Standby, true) if self.settings.preempt && !self.manual && me > them => {
                self.become_(Role::Active, Why::Preempted)
            }
            _ => None,
        }
    }

    /// The peer said it is stopping: it is gone at once (no hold time to
    /// wait out), and a standby takes over.
    pub fn peer_left(&mut self) -> Option<(Role, Why)> {
        self.peer = None;
        self.heard = [None, None];
        self.manual = false;
        self.become_(Role::Active, Why::PeerLeft)
    }

    /// Time passes: a standby whose every path has been silent for the
    /// hold time takes over (with the sync link as its only path, only if
    /// configured to).
    pub fn tick(&mut self, now_ns: u64) -> Option<(Role, Why)> {
        if self.role == Role::Active {
            return None;
        }
        let all_silent = self.paths().iter().all(|&p| self.silent(p, now_ns));
        let allowed = self.settings.second_path || self.settings.takeover_on_sync_loss;
        if all_silent && allowed {
            self.manual = false;
            return self.become_(Role::Active, Why::PeerSilent);
        }
        None
    }

    /// An operator's failover: the active hands the role to its peer (it
    /// goes standby; the peer takes over on its next heartbeat), a standby
    /// takes it (the peer yields on ours). Held until the next one.
    pub fn manual_failover(&mut self) -> Option<(Role, Why)> {
        self.manual = true;
        let other = match self.role {
            Role::Active => Role::Standby,
            Role::Standby => Role::Active,
        };
        self.become_(other, Why::Manual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn settings(node: u16, priority: u8) -> Settings {
        Settings {
            node,
            priority,
            preempt: false,
            hold_ns: 1_000 * MS,
            second_path: true,
            takeover_on_sync_loss: false,
        }
    }

    fn peer(node: u16, priority: u8, active: bool) -> PeerState {
        PeerState {
            node,
            priority,
            active,
        }
    }

    #[test]
    fn the_standby_takes_over_only_when_every_path_is_silent() {
        let mut fw2 = Roles::new(settings(2, 100), 0);
        let active_fw1 = peer(1, 200, true);
        for t in (0..3_000).step_by(200) {
            assert_eq!(fw2.heartbeat(Path::SyncLink, active_fw1, t * MS), None);
            assert_eq!(fw2.heartbeat(Path::HeartbeatLink, active_fw1, t * MS), None);
            assert_eq!(fw2.tick(t * MS), None);
        }
        assert_eq!(fw2.role(), Role::Standby);
        // The sync link alone fails: fw1 is still heard on the wire.
        for t in (3_000..10_000).step_by(200) {
            fw2.heartbeat(Path::HeartbeatLink, active_fw1, t * MS);
            assert_eq!(fw2.tick(t * MS), None, "no split brain");
        }
        assert_eq!(fw2.paths_down(10_000 * MS), [Path::SyncLink]);
        // fw1 dies: both paths fall silent; after the hold time, fw2 forwards.
        assert_eq!(fw2.tick(10_799 * MS), None);
        assert_eq!(fw2.tick(10_800 * MS), Some((Role::Active, Why::PeerSilent)));
        assert_eq!(fw2.failovers, 1);
    }

    #[test]
    fn with_the_sync_link_alone_takeover_is_a_stated_choice() {
        let only_sync = Settings {
            second_path: false,
            ..settings(2, 100)
        };
        let mut cautious = Roles::new(only_sync, 0);
        assert_eq!(cautious.tick(60_000 * MS), None, "keeps its role");
        let mut bold = Roles::new(
            Settings {
                takeover_on_sync_loss: true,
                ..only_sync
            },
            0,
        );
        assert_eq!(bold.tick(1_000 * MS), Some((Role::Active, Why::PeerSilent)));
    }

    #[test]
    fn two_actives_settle_on_the_higher_priority_and_manual_failover_holds() {
        let mut fw1 = Roles::new(settings(1, 200), 0);
        let mut fw2 = Roles::new(settings(2, 100), 0);
        // Both started alone and took over.
        fw1.tick(2_000 * MS);
        fw2.tick(2_000 * MS);
        assert_eq!((fw1.role(), fw2.role()), (Role::Active, Role::Active));
        // They meet: fw2 (lower priority) yields; fw1 stays.
        assert_eq!(
            fw1.heartbeat(Path::SyncLink, peer(2, 100, true), 2_100 * MS),
            None
        );
        assert_eq!(
            fw2.heartbeat(Path::SyncLink, peer(1, 200, true), 2_100 * MS),
            Some((Role::Standby, Why::YieldedToPeer))
        );
        // Maintenance: fw1 hands over; fw2 takes over on fw1's next heartbeat.
        assert_eq!(fw1.manual_failover(), Some((Role::Standby, Why::Manual)));
        assert_eq!(
            fw2.heartbeat(Path::SyncLink, peer(1, 200, false), 2_300 * MS),
            Some((Role::Active, Why::PeerYielded))
        );
        // fw1, standby by hand, does not take the role back though it
        // has the higher priority, even with preempt.
        fw1.settings.preempt = true;
        assert_eq!(
            fw1.heartbeat(Path::SyncLink, peer(2, 100, true), 2_400 * MS),
            None
        );
        assert_eq!(fw1.role(), Role::Standby);
        // Equal priorities: the lower node id stays active.
        let mut a = Roles::new(settings(1, 100), 0);
        let mut b = Roles::new(settings(2, 100), 0);
        a.tick(2_000 * MS);
        b.tick(2_000 * MS);
        assert_eq!(
            a.heartbeat(Path::SyncLink, peer(2, 100, true), 2_100 * MS),
            None
        );
        assert_eq!(
            b.heartbeat(Path::SyncLink, peer(1, 100, true), 2_100 * MS),
            Some((Role::Standby, Why::YieldedToPeer))
        );
    }

    #[test]
    fn preempt_takes_the_role_back_from_a_healthy_peer() {
        let mut fw1 = Roles::new(
            Settings {
                preempt: true,
                ..settings(1, 200)
            },
            0,
        );
        assert_eq!(
            fw1.heartbeat(Path::SyncLink, peer(2, 100, true), 100 * MS),
            Some((Role::Active, Why::Preempted))
        );
        let mut fw2 = Roles::new(settings(2, 100), 0);
        assert_eq!(
            fw2.heartbeat(Path::SyncLink, peer(1, 200, true), 100 * MS),
            None
        );
        assert_eq!(
            fw2.role(),
            Role::Standby,
            "no preempt for the lower priority"
        );
    }
}
