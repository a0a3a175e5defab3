//! Listing and clearing sessions without a lock on the hot path: the
//! control plane hands a worker one job at a time through a mailbox (two
//! bounded channels, polled with one `try_recv` per loop iteration), and
//! the worker works on it between bursts within a small budget: a page
//! of its table's walk ([`SessionTable::walk`]) copied out, or a list of
//! sessions ended with a `cli` close record. The control plane resolves
//! names, applies the operator's filter and pages the answer
//! (`super::dataplane::sessions`), so memory stays bounded by a page
//! whatever the table holds.
//!
//! [`SessionTable::walk`]: rampart_pipeline::session::SessionTable::walk

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};

use rampart_pipeline::engine::{self, Event, Ruleset};
use rampart_pipeline::flow::FlowKey;
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::session::{Session, WalkCursor};

/// Table slots a worker looks at per loop iteration, and sessions it
/// copies out at most (each 192 bytes: 32 of them, 6 KiB, leave the
/// worker's hot lines in the L1 cache): well under a microsecond.
pub const WALK_SLOTS: usize = 256;
pub const COPIES_PER_ROUND: usize = 32;

/// Sessions a worker ends per loop iteration (each may encode a record).
pub const CLEARS_PER_ROUND: usize = 32;

/// Sessions in one page a worker copies out.
pub const PAGE_SESSIONS: usize = 256;

/// A session as a worker saw it, with what only the worker knows.
#[derive(Clone, Copy, Debug)]
pub struct SessionSnapshot {
    pub session: Session,
    /// Its slot in the worker's table (where a listing goes on after it).
    pub slot: u32,
    /// The idle timeout of its state, and the worker's clock then.
    pub timeout_ns: u64,
    pub now_ns: u64,
}

/// One job of a worker's mailbox; the worker sends it back done.
#[derive(Debug)]
pub enum SessionJob {
    /// Copy sessions from `cursor` on into `page` (up to its capacity);
    /// `cursor` comes back where the walk goes on (`None`: the table's end).
    List {
        cursor: Option<WalkCursor>,
        page: Vec<SessionSnapshot>,
    },
    /// End each session named by flow and id that is still there;
    /// `done` of them looked at, `cleared` of them ended.
    Clear {
        sessions: Vec<(FlowKey, u64)>,
        done: usize,
        cleared: usize,
    },
}

/// The control plane's end of a worker's mailbox.
pub struct SessionLink {
    jobs: SyncSender<SessionJob>,
    answers: Receiver<SessionJob>,
}

/// A worker's end of its mailbox, and the job it is working on.
pub struct SessionMailbox {
    jobs: Receiver<SessionJob>,
    answers: SyncSender<SessionJob>,
    current: Option<SessionJob>,
}

/// A mailbox between the control plane and one worker: one job in flight.
pub fn mailbox() -> (SessionLink, SessionMailbox) {
    let (jobs_tx, jobs_rx) = sync_channel(1);
    let (answers_tx, answers_rx) = sync_channel(1);
    (
        SessionLink {
            jobs: jobs_tx,
            answers: answers_rx,
        },
        SessionMailbox {
            jobs: jobs_rx,
            answers: answers_tx,
            current: None,
        },
    )
}

impl SessionLink {
    /// Hands the worker a job; false if its mailbox is gone (the worker
    /// stopped).
    pub fn send(&self, job: SessionJob) -> bool {
        self.jobs.try_send(job).is_ok()
    }

    /// The job the worker finished, if it has.
    pub fn answer(&self) -> Option<SessionJob> {
        self.answers.try_recv().ok()
    }
}

impl SessionMailbox {
    /// Between bursts: takes the job waiting, if any, and works on it
    /// within [`WALK_SLOTS`] and [`COPIES_PER_ROUND`], or
    /// [`CLEARS_PER_ROUND`]; a job done goes
    /// back. Ended sessions' close records go to `emit`.
    #[inline]
    pub fn serve(
        &mut self,
        pipeline: &mut engine::Worker,
        rules: &Ruleset,
        screens: &ScreenState,
        now_ns: u64,
        emit: &mut impl FnMut(Event),
    ) {
        if self.current.is_none() {
            match self.jobs.try_recv() {
                Ok(job) => self.current = Some(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
        let finished = match self.current.as_mut() {
            Some(SessionJob::List { cursor, page }) => {
                let Some(from) = *cursor else {
                    return self.answer();
                };
                let room = (page.capacity() - page.len()).min(COPIES_PER_ROUND);
                let timeouts = *pipeline.sessions.timeouts();
                let step = pipeline.sessions.walk(from, WALK_SLOTS, room, |h, s| {
                    page.push(SessionSnapshot {
                        session: *s,
                        slot: h.index() as u32,
                        timeout_ns: timeouts.for_session(s),
                        now_ns,
                    })
                });
                *cursor = step.next;
                step.next.is_none() || page.len() == page.capacity()
            }
            Some(SessionJob::Clear {
                sessions,
                done,
                cleared,
            }) => {
                let end = (*done + CLEARS_PER_ROUND).min(sessions.len());
                for (key, id) in &sessions[*done..end] {
                    if pipeline.clear_session(rules, screens, key, *id, now_ns, emit) {
                        *cleared += 1;
                    }
                }
                *done = end;
                end == sessions.len()
            }
            None => false,
        };
        if finished {
            self.answer();
        }
    }

    fn answer(&mut self) {
        if let Some(job) = self.current.take() {
            // The control plane sends one job at a time and takes its
            // answer before the next, so there is room; if it is gone the
            // job is dropped with it.
            let _ = self.answers.try_send(job);
        }
    }
}
