//! An operator's `sessions clear` as the pipeline carries it out
//! (`Worker::clear_session`): the session named by flow and id ends with a
//! `cli` close record and leaves the table, so the flow's next packet meets
//! the config as a mid-stream packet does.

use std::sync::Arc;

use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{Event, Ruleset, Verdict, Worker};
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::session::CloseReason;
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{tcp, v4};

const S: u64 = 1_000_000_000;

fn setup(syn_check: bool) -> (Ruleset, ScreenState, Worker) {
    let allow_web = configs::policy("allow-web", ("untrust", "trust"))
        .application("junos-http")
        .then("permit")
        .log(&["session-init", "session-close"]);
    let text = format!(
        "{}\n{}{allow_web}",
        configs::untrust_trust_pair("net_null0", "net_null1"),
        configs::UNTRUST_AND_TRUST_ZONES
    );
    let mut config = Config::from_str_named(&text, "clear.toml").unwrap();
    config.flow.tcp_syn_check = syn_check;
    let rules = Ruleset::compile(Arc::new(config), 1);
    let worker = Worker::new(0, &rules);
    (rules, ScreenState::new(1024), worker)
}

#[test]
fn a_cleared_session_closes_as_cli_once_and_its_flow_starts_over() {
    for syn_check in [true, false] {
        let (rules, screens, mut w) = setup(syn_check);
        let (client, server) = (v4(198, 51, 100, 7), v4(192, 0, 2, 80));
        let syn = tcp(client, server, 40000, 80, TcpFlags::SYN, &[]);
        let d = w.process(&rules, &screens, &syn, 0, S);
        assert!(matches!(d.verdict, Verdict::Forward { .. }));
        let (_, session) = w.sessions.iter().next().unwrap();
        let (key, id) = (session.key(), session.id);
        assert_eq!(w.sessions.len(), 1);

        let mut closes = Vec::new();
        let cleared = w.clear_session(&rules, &screens, &key, id + 1, 2 * S, &mut |e| {
            closes.push(e)
        });
        assert!(!cleared, "another id names another session");
        assert_eq!(w.sessions.len(), 1);

        let cleared = w.clear_session(&rules, &screens, &key.reversed(), id, 2 * S, &mut |e| {
            closes.push(e)
        });
        assert!(cleared, "found from either direction");
        assert_eq!(w.sessions.len(), 0);
        assert_eq!(w.counters.sessions_cleared, 1);
        assert_eq!(w.counters.sessions_closed, 1);
        let [Event::SessionClose(c)] = closes.as_slice() else {
            panic!("one close record: {closes:?}");
        };
        assert_eq!(c.record.reason, CloseReason::Cleared);
        assert_eq!(c.record.session_id, id);
        assert_eq!(c.record.elapsed_ns, S);
        assert_eq!(c.record.reason.junos_text(), "CLI");
        assert!(
            !w.clear_session(&rules, &screens, &key, id, 3 * S, &mut |_| panic!("twice")),
            "gone"
        );

        // The flow's next segment is mid-stream now.
        let ack = tcp(client, server, 40000, 80, TcpFlags::ACK, b"more");
        let d = w.process(&rules, &screens, &ack, 0, 3 * S);
        if syn_check {
            assert_eq!(d.verdict, Verdict::Drop, "tcp-syn-check drops it");
            assert_eq!(w.sessions.len(), 0);
        } else {
            assert!(matches!(d.verdict, Verdict::Forward { .. }), "picked up");
            assert_eq!(w.sessions.len(), 1);
        }
    }
}
