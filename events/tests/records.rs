//! Encode -> decode round trips, slot limits and garbage input.

mod common;

use common::*;
use proptest::prelude::*;
use rampart_events::*;

#[test]
fn every_type_round_trips() {
    let mut enc = Encoder::new();
    let mut slot = EventSlot::EMPTY;
    for (i, (meta, ev, snippet)) in all_events().into_iter().enumerate() {
        let seq = 1000 + i as u64;
        assert!(enc.encode(seq, &meta, &ev, &snippet, &mut slot));
        assert_eq!(slot.event_type(), Some(ev.event_type()));
        let (rec, used) = decode_size_prefixed(slot.as_bytes()).unwrap();
        assert_eq!(used, slot.len());
        let Record::Event(pe) = rec else {
            panic!("not an event")
        };
        assert_eq!(pe.seq, seq);
        assert_eq!(pe.meta, meta);
        assert_eq!(pe.event, ev);
        assert_eq!(pe.snippet, &snippet[..]);
        assert_eq!(
            decode(slot.as_bytes()).unwrap().event_type(),
            Some(ev.event_type())
        );
    }
}

#[test]
fn every_screen_option_and_reason_round_trips() {
    let mut enc = Encoder::new();
    let meta = meta_v4(1, 0, 0);
    for option in ScreenOption::ALL {
        for alarm_only in [false, true] {
            let ev = Event::ScreenDrop(ScreenDrop {
                screen: 7,
                option,
                alarm_only,
            });
            let bytes = enc.encode_bytes(1, &meta, &ev, &[]).to_vec();
            let (Record::Event(pe), _) = decode_size_prefixed(&bytes).unwrap() else {
                panic!()
            };
            assert_eq!(pe.event, ev);
        }
    }
    for reason in [
        CloseReason::TcpFin,
        CloseReason::TcpRst,
        CloseReason::IdleTimeout,
        CloseReason::Shutdown,
        CloseReason::PolicyReload,
    ] {
        let ev = Event::SessionClose(SessionClose {
            session_id: u64::MAX,
            policy: u32::MAX - 1,
            reason,
            packets_client: 1,
            bytes_client: 2,
            packets_server: 3,
            bytes_server: 4,
            elapsed_ns: 5,
            session_generation: u32::MAX,
            application: NO_ID16,
            origin: u64::MAX,
        });
        let bytes = enc.encode_bytes(u64::MAX, &meta, &ev, &[]).to_vec();
        let (Record::Event(pe), _) = decode_size_prefixed(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(pe.event, ev);
        assert_eq!(pe.seq, u64::MAX);
    }
}

#[test]
fn max_snippet_fits_every_type_and_longer_is_clamped() {
    let mut enc = Encoder::new();
    let mut slot = EventSlot::EMPTY;
    let big = vec![0xabu8; 2000];
    let mut largest = 0;
    let aggregated = Repeat {
        count: u32::MAX,
        last_ts_ns: u64::MAX,
    };
    for (meta, ev, _) in all_events() {
        for n in 0..=MAX_SNIPPET {
            for repeat in [Repeat::ONE, aggregated] {
                assert!(
                    enc.encode_repeated(1, &meta, &ev, &big[..n], repeat, &mut slot),
                    "{ev:?} n={n} {repeat:?}"
                );
                largest = largest.max(slot.len());
            }
        }
        assert!(enc.encode(1, &meta, &ev, &big, &mut slot));
        let (Record::Event(pe), _) = decode_size_prefixed(slot.as_bytes()).unwrap() else {
            panic!()
        };
        if matches!(
            ev,
            Event::SessionOpen(_) | Event::SessionClose(_) | Event::ScreenEpisode(_)
        ) {
            assert!(pe.snippet.is_empty());
        } else {
            assert_eq!(pe.snippet.len(), MAX_SNIPPET);
        }
    }
    assert!(largest <= SLOT_CAPACITY);
    // MAX_SNIPPET is tight: 8 more bytes would not fit a policy deny.
    assert!(
        largest + 8 > SLOT_CAPACITY,
        "largest record {largest}B: raise MAX_SNIPPET"
    );
    let small = Encoder::with_max_snippet(64);
    assert_eq!(small.max_snippet(), 64);
}

#[test]
fn control_records_round_trip() {
    let mut ctl = ControlEncoder::new();
    let bytes = ctl.hello(3, TS, "rampart test").to_vec();
    let (rec, _) = decode_size_prefixed(&bytes).unwrap();
    assert_eq!(
        rec,
        Record::Hello(Hello {
            schema_version: SCHEMA_VERSION,
            generation: 3,
            start_time_ns: TS,
            producer: "rampart test".into(),
            oldest_generation: 0,
            node: String::new(),
            boot_id: 0,
            cluster: String::new(),
        })
    );
    ctl.set_identity("fw1", 42);
    let bytes = ctl.hello_referencing(5, 2, TS, "rampart test").to_vec();
    let (Record::Hello(h), _) = decode_size_prefixed(&bytes).unwrap() else {
        panic!("a hello")
    };
    assert_eq!((h.generation, h.oldest_generation), (5, 2));
    assert_eq!((h.node.as_str(), h.boot_id), ("fw1", 42));
    let bytes = ctl.names(3, &names()).to_vec();
    let (rec, _) = decode_size_prefixed(&bytes).unwrap();
    assert_eq!(
        rec,
        Record::Names(NameTable {
            generation: 3,
            names: names()
        })
    );
    let mut totals = [TypeCounters::default(); EventType::COUNT];
    totals[0] = TypeCounters {
        generated: 10,
        rate_limited: 1,
        ring_overflow: 2,
        drained: 7,
        aggregating: 0,
        aggregate_full: 0,
    };
    let workers = vec![WorkerCountersSnapshot {
        worker: 0,
        counters: totals,
    }];
    let bytes = ctl
        .stats(
            TS,
            3,
            &totals,
            &workers,
            9,
            &[7, 0, 0, 0, 0, 0],
            &[1, 0, 0, 0, 0, 0],
        )
        .to_vec();
    let (Record::Stats(s), _) = decode_size_prefixed(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(s.totals, totals);
    assert_eq!(s.workers, workers);
    assert_eq!((s.consumer_id, s.delivered[0], s.dropped[0]), (9, 7, 1));
    let bytes = ctl.loss(TS, 9, &[0, 3, 0, 0, 1, 0]).to_vec();
    let (rec, _) = decode_size_prefixed(&bytes).unwrap();
    assert_eq!(
        rec,
        Record::Loss(LossRecord {
            ts_ns: TS,
            consumer_id: 9,
            dropped: [0, 3, 0, 0, 1, 0]
        })
    );
    let mut cache = NameCache::new();
    cache.observe(&rec);
    cache.observe(&Record::Names(NameTable {
        generation: 3,
        names: names(),
    }));
    assert_eq!(cache.names(3).policy(1), Some("deny-all"));
    assert_eq!(cache.names(4).policy(1), None);
}

#[test]
fn truncated_and_corrupted_records_are_errors() {
    let mut enc = Encoder::new();
    for (meta, ev, snippet) in all_events() {
        let bytes = enc.encode_bytes(1, &meta, &ev, &snippet).to_vec();
        for n in 0..bytes.len() {
            let _ = decode_size_prefixed(&bytes[..n]);
            let _ = decode(&bytes[..n]);
        }
        for i in 4..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = decode(&b);
            let _ = decode_unprefixed(&b[4..]);
        }
    }
    assert!(decode(&[]).is_err());
    assert!(decode_size_prefixed(&[1, 0, 0]).is_err());
}

proptest! {
    /// The hub checks a consumer has room for a loss record before it
    /// builds one: the bound must hold for any counts.
    #[test]
    fn a_loss_record_never_exceeds_its_bound(
        ts in any::<u64>(),
        id in any::<u64>(),
        dropped in proptest::array::uniform6(prop_oneof![Just(0u64), any::<u64>()]),
    ) {
        let mut ctl = ControlEncoder::new();
        prop_assert!(ctl.loss(ts, id, &dropped).len() <= ControlEncoder::loss_len_bound());
    }

    /// Every field value of every event type survives encode -> verified
    /// decode (the encoder writes its own flatbuffer layout).
    #[test]
    fn any_field_values_round_trip(
        kind in 0usize..5,
        a in any::<u64>(),
        b in any::<u64>(),
        c in any::<u64>(),
        small in any::<u32>(),
        flag in any::<bool>(),
        snippet in proptest::collection::vec(any::<u8>(), 0..400),
        seq in any::<u64>(),
    ) {
        let (mut meta, _, _) = all_events()[kind % all_events().len()];
        meta.ts_ns = a;
        meta.generation = small;
        meta.worker = b as u16;
        meta.src_port = (b >> 16) as u16;
        meta.dst_port = (b >> 32) as u16;
        meta.ingress = (b >> 48) as u16;
        meta.egress = c as u16;
        meta.from_zone = (c >> 16) as u16;
        meta.to_zone = (c >> 32) as u16;
        meta.protocol = (c >> 48) as u8;
        let ev = match kind {
            0 => Event::PolicyDeny(PolicyDeny {
                policy: small,
                reject: flag,
                audit: false,
                session_id: a,
                application: NO_ID16,
            }),
            1 => Event::ScreenDrop(ScreenDrop {
                screen: small as u16,
                option: ScreenOption::ALL[(a % ScreenOption::ALL.len() as u64) as usize],
                alarm_only: flag,
            }),
            2 => Event::FilterLog(FilterLog {
                filter: small as u16,
                term: (small >> 16) as u16,
                action: if flag { FilterAction::Accept } else { FilterAction::Reject },
                direction: if a & 1 == 0 { FilterDirection::Input } else { FilterDirection::Output },
            }),
            3 => Event::SessionOpen(SessionOpen { session_id: a, policy: small, application: NO_ID16, origin: b }),
            _ => Event::SessionClose(SessionClose {
                session_id: a,
                policy: small,
                reason: if flag { CloseReason::IdleTimeout } else { CloseReason::TcpRst },
                packets_client: b,
                bytes_client: c,
                packets_server: a ^ b,
                bytes_server: b ^ c,
                elapsed_ns: a.wrapping_add(c),
                session_generation: small,
                application: NO_ID16,
                origin: c,
            }),
        };
        let mut enc = Encoder::new();
        let mut slot = EventSlot::EMPTY;
        prop_assert!(enc.encode(seq, &meta, &ev, &snippet, &mut slot));
        let Record::Event(pe) = decode(slot.as_bytes()).unwrap() else { panic!("not an event") };
        prop_assert_eq!(pe.seq, seq);
        prop_assert_eq!(pe.meta, meta);
        prop_assert_eq!(pe.event, ev);
        let kept = if kind >= 3 { 0 } else { snippet.len().min(MAX_SNIPPET) };
        prop_assert_eq!(pe.snippet, &snippet[..kept]);
    }

    /// The consumer's fast path for packet events answers exactly as the
    /// flatbuffers verifier does: on intact records of every type (plain
    /// and aggregated, with snippets of every length) and on records with
    /// up to three bytes changed anywhere, both accept with the same
    /// record or both refuse.
    #[test]
    fn the_fast_decoder_agrees_with_the_verifier(
        kind in 0usize..5,
        a in any::<u64>(),
        small in any::<u32>(),
        aggregated in any::<bool>(),
        snippet_len in 0usize..400,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
    ) {
        let events = all_events();
        let (mut meta, ev, _) = events[kind % events.len()];
        meta.ts_ns = a;
        meta.generation = small;
        let repeat = if aggregated { Repeat { count: small | 2, last_ts_ns: a | 1 } } else { Repeat::ONE };
        let snippet: Vec<u8> = (0..snippet_len).map(|i| i as u8).collect();
        let mut enc = Encoder::new();
        let mut slot = EventSlot::EMPTY;
        prop_assert!(enc.encode_repeated(a, &meta, &ev, &snippet, repeat, &mut slot));
        let mut bytes = slot.as_bytes().to_vec();
        for (pos, val) in edits {
            let p = usize::from(pos) % bytes.len();
            bytes[p] = val;
        }
        match (decode_size_prefixed(&bytes), decode_size_prefixed_verified(&bytes)) {
            (Ok(fast), Ok(verified)) => prop_assert_eq!(fast, verified),
            (Err(_), Err(_)) => {}
            (fast, verified) => prop_assert!(false, "fast {fast:?}, verified {verified:?}"),
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
        let _ = decode_size_prefixed(&bytes);
        if let Ok(rec) = decode(&bytes) {
            let cache = NameCache::new();
            for f in Format::ALL {
                let mut s = String::new();
                render(f, &rec, &cache, &mut s);
            }
        }
    }

    #[test]
    fn mutated_records_never_panic(i in 0usize..4, pos in 0usize..400, val in any::<u8>()) {
        let events = all_events();
        let (meta, ev, snippet) = &events[i];
        let mut enc = Encoder::new();
        let mut bytes = enc.encode_bytes(7, meta, ev, snippet).to_vec();
        let p = pos % bytes.len();
        bytes[p] = val;
        if let Ok((rec, _)) = decode_size_prefixed(&bytes) {
            let cache = cache();
            for f in Format::ALL {
                let mut s = String::new();
                render(f, &rec, &cache, &mut s);
            }
        }
    }

    #[test]
    fn snippets_of_any_bytes_render(snippet in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut enc = Encoder::new();
        let ev = Event::PolicyDeny(PolicyDeny {
            policy: 0,
            reject: true,
            audit: false,
            session_id: 1,
            application: NO_ID16,
        });
        let bytes = enc.encode_bytes(1, &meta_v4(6, 1, 2), &ev, &snippet).to_vec();
        let (rec, _) = decode_size_prefixed(&bytes).unwrap();
        let mut s = String::new();
        prop_assert!(render(Format::Droplog, &rec, &cache(), &mut s));
    }
}

/// A cluster node's session records carry the session's identity as their
/// event id, whichever node writes them; packet records keep the place in
/// their stream; a producer that runs alone keeps stream ids for all.
#[test]
fn session_records_of_a_cluster_node_carry_the_sessions_identity() {
    let close = Event::SessionClose(SessionClose {
        session_id: 0x0100_0000_0000_002a,
        policy: 0,
        reason: CloseReason::TcpFin,
        packets_client: 1,
        bytes_client: 2,
        packets_server: 3,
        bytes_server: 4,
        elapsed_ns: 5,
        session_generation: 1,
        application: NO_ID16,
        origin: 0xfeed,
    });
    let deny = Event::PolicyDeny(PolicyDeny {
        policy: 1,
        reject: false,
        audit: false,
        session_id: 3,
        application: NO_ID16,
    });
    let id_of = |cluster: Option<&str>, ev: &Event| {
        let mut ctl = ControlEncoder::new();
        ctl.set_identity("fw2", 7);
        if let Some(c) = cluster {
            ctl.set_cluster(c);
        }
        let mut names = NameCache::new();
        names.observe(&decode_size_prefixed(ctl.hello(1, TS, "t")).unwrap().0);
        let bytes = Encoder::new()
            .encode_bytes(9, &meta_v4(6, 40000, 80), ev, &[])
            .to_vec();
        let (Record::Event(e), _) = decode_size_prefixed(&bytes).unwrap() else {
            panic!("an event")
        };
        let mut id = String::new();
        assert!(names.write_record_id(&e, &mut id));
        id
    };
    assert_eq!(
        id_of(Some("edge"), &close),
        format!("edge:000000000000feed:{}:close", 0x0100_0000_0000_002au64)
    );
    assert_eq!(id_of(None, &close), "fw2:0000000000000007:1:9");
    assert_eq!(id_of(Some("edge"), &deny), "fw2:0000000000000007:1:9");
}
