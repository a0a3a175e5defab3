//! Hub drain and fan-out over real Unix sockets: exact accounting with a
//! stalled consumer, removal of dead consumers, socket file handling,
//! reloads, and the `consume` client loop.

mod common;

use std::collections::VecDeque;
use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rampart_events::*;

const N: usize = EventType::COUNT;

#[derive(Default, Debug)]
struct Received {
    events: [u64; N],
    loss: [u64; N],
    hellos: Vec<u32>,
    /// `oldest_generation` of each hello.
    hello_oldest: Vec<u32>,
    names: Vec<u32>,
    stats: usize,
    last_seq: Vec<Option<u64>>,
    first_types: Vec<String>,
    /// Each config reject with the number of events received before it.
    rejects: Vec<(u64, ConfigReject)>,
}

fn reader(stream: UnixStream) -> thread::JoinHandle<Received> {
    thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        let mut got = Received {
            last_seq: vec![None; 4],
            ..Default::default()
        };
        while let Ok(true) = read_frame(&mut r, &mut buf) {
            let rec = decode(&buf).expect("valid record");
            if got.first_types.len() < 2 {
                got.first_types.push(rec.type_name().to_owned());
            }
            match rec {
                Record::Event(e) => {
                    got.events[e.event.event_type().index()] += 1;
                    let w = usize::from(e.meta.worker);
                    if let Some(prev) = got.last_seq[w] {
                        assert!(e.seq > prev, "seq must increase per worker");
                    }
                    got.last_seq[w] = Some(e.seq);
                }
                Record::Loss(l) => {
                    for i in 0..N {
                        got.loss[i] += l.dropped[i];
                    }
                }
                Record::Hello(h) => {
                    got.hellos.push(h.generation);
                    got.hello_oldest.push(h.oldest_generation);
                }
                Record::Names(n) => got.names.push(n.generation),
                Record::Stats(_) => got.stats += 1,
                Record::ConfigReject(r) => got.rejects.push((got.events.iter().sum(), r)),
                Record::Unknown(_) => {}
            }
        }
        got
    })
}

/// A simulated worker: encoder, counters, rate limiter, bounded ring.
struct Worker {
    id: u16,
    seq: u64,
    enc: Encoder,
    counters: WorkerEventCounters,
    shared: Arc<SharedCounters>,
    limiter: RateLimiter,
    ring: VecDeque<EventSlot>,
    ring_size: usize,
}

impl Worker {
    fn new(id: u16, ring_size: usize, limiter: RateLimiter) -> Self {
        Worker {
            id,
            seq: 0,
            enc: Encoder::new(),
            counters: WorkerEventCounters::default(),
            shared: Arc::new(SharedCounters::new(id)),
            limiter,
            ring: VecDeque::new(),
            ring_size,
        }
    }

    fn emit(&mut self, meta: &PacketMeta, ev: &Event, snippet: &[u8], now: u64) {
        let t = ev.event_type();
        self.counters.generated(t);
        if !self.limiter.allow(t, now) {
            self.counters.rate_limited(t);
            return;
        }
        if self.ring.len() >= self.ring_size {
            self.counters.ring_overflow(t);
            return;
        }
        let mut slot = EventSlot::EMPTY;
        let mut m = *meta;
        m.worker = self.id;
        assert!(self.enc.encode(self.seq, &m, ev, snippet, &mut slot));
        self.seq += 1;
        self.ring.push_back(slot);
        self.shared.publish(&self.counters);
    }
}

fn socket_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("events.sock")
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn stalled_consumer_loses_only_its_own_records_and_counts_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let config = HubConfig {
        consumer_buffer_bytes: 1 << 20, // a whole drain pass fits: the fast reader never drops
        stats_interval_ns: 1_000_000,
        ..Default::default()
    };
    let mut hub = Hub::bind(&path, config).unwrap();
    hub.set_names(3, &names());

    let fast = UnixStream::connect(&path).unwrap();
    let stalled = UnixStream::connect(&path).unwrap();
    hub.accept();
    assert_eq!(hub.consumer_ids(), vec![1, 2]);
    let fast_reader = reader(fast);

    let mut rates = [None; N];
    rates[EventType::FilterLog.index()] = Some(1000);
    let mut workers: Vec<Worker> = (0..2)
        .map(|i| Worker::new(i, 256, RateLimiter::new(1_000_000_000, rates)))
        .collect();
    for w in &workers {
        hub.register_worker(w.shared.clone());
    }
    let events = all_events();
    let mut now = 0u64;
    for round in 0..200 {
        for w in workers.iter_mut() {
            // 300 events per round per worker: more than the ring holds.
            for k in 0..300 {
                let (meta, ev, snippet) = &events[(round + k) % events.len()];
                w.emit(meta, ev, snippet, now);
                now += 10_000;
            }
        }
        // Drain; wait until the fast consumer has taken everything so it
        // never falls behind (it reads as fast as it can).
        loop {
            let mut rings: Vec<&mut VecDeque<EventSlot>> =
                workers.iter_mut().map(|w| &mut w.ring).collect();
            hub.poll(&mut rings, now);
            let s = hub.stats();
            if workers.iter().all(|w| w.ring.is_empty()) && s.consumers[0].buffered_bytes == 0 {
                break;
            }
            thread::yield_now();
        }
    }
    for w in &workers {
        w.shared.publish(&w.counters);
    }
    let s = hub.stats();
    assert!(s.balanced(), "{}", s.to_json());
    let fast_stats = &s.consumers[0];
    let stalled_stats = &s.consumers[1];
    for i in 0..N {
        let e = &s.events[i];
        assert!(e.generated > 0);
        assert_eq!(
            e.generated,
            e.rate_limited + e.ring_overflow + e.drained,
            "type {i}"
        );
        assert_eq!(fast_stats.delivered[i], e.drained);
        assert_eq!(fast_stats.dropped[i], 0);
        assert_eq!(
            stalled_stats.delivered[i] + stalled_stats.dropped[i],
            e.drained
        );
    }
    assert!(s.events.iter().map(|e| e.ring_overflow).sum::<u64>() > 0);
    assert!(s.events[EventType::FilterLog.index()].rate_limited > 0);
    assert!(stalled_stats.dropped.iter().sum::<u64>() > 0);
    let json = s.to_json();
    assert!(
        json.starts_with("{\"generation\":3,\"events\":{\"policy_deny\":{\"generated\":"),
        "{json}"
    );
    assert!(
        json.contains("\"consumers\":[{\"id\":1,\"delivered\":{\"policy_deny\":"),
        "{json}"
    );

    // The stalled consumer starts reading: it gets its buffered records and
    // a loss record that explains exactly what it missed.
    let stalled_reader = reader(stalled);
    // Until everything buffered for it is written (a few ticks; longer
    // when the machine is loaded).
    wait_for(|| {
        hub.tick(now);
        now += 1_000_000;
        thread::sleep(Duration::from_millis(2));
        hub.stats().consumers[1].buffered_bytes == 0
    });
    let s = hub.stats();
    drop(hub); // closes the sockets: readers see EOF
    let fast = fast_reader.join().unwrap();
    let stalled = stalled_reader.join().unwrap();
    assert_eq!(fast.first_types, ["hello", "names"]);
    assert_eq!(fast.events, s.consumers[0].delivered);
    assert_eq!(fast.loss, [0; N]);
    assert!(fast.stats > 0);
    assert_eq!(stalled.first_types, ["hello", "names"]);
    assert_eq!(stalled.events, s.consumers[1].delivered);
    assert_eq!(stalled.loss, s.consumers[1].dropped);
    for i in 0..N {
        assert_eq!(stalled.events[i] + stalled.loss[i], s.events[i].drained);
    }
    assert!(!path.exists(), "socket file removed on drop");
}

#[test]
fn dead_consumer_is_removed_and_others_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let mut hub = Hub::bind(&path, HubConfig::default()).unwrap();
    let a = UnixStream::connect(&path).unwrap();
    let b = UnixStream::connect(&path).unwrap();
    hub.accept();
    assert_eq!(hub.consumer_count(), 2);
    drop(a);
    let b_reader = reader(b);
    let mut w = Worker::new(0, 1 << 20, RateLimiter::unlimited());
    let (meta, ev, snip) = &all_events()[0];
    for _ in 0..1000 {
        w.emit(meta, ev, snip, 0);
    }
    let mut rings = [&mut w.ring];
    hub.poll(&mut rings, 1);
    wait_for(|| {
        hub.poll(&mut rings, 2);
        hub.consumer_count() == 1
    });
    assert_eq!(hub.consumer_ids(), vec![2]);
    hub.flush();
    wait_for(|| {
        hub.flush();
        hub.stats().consumers[0].buffered_bytes == 0
    });
    drop(hub);
    let got = b_reader.join().unwrap();
    assert_eq!(got.events[0], 1000);
}

#[test]
fn socket_file_handling() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let hub = Hub::bind(&path, HubConfig::default()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    // A live listener holds the path.
    let err = Hub::bind(&path, HubConfig::default())
        .err()
        .expect("in use");
    assert!(
        matches!(err, HubError::Socket(SockFileError::InUse { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("in use"));
    drop(hub);
    // A stale socket file (listener gone, file left) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists());
    let hub = Hub::bind(&path, HubConfig::default()).unwrap();
    assert!(UnixStream::connect(&path).is_ok());
    drop(hub);
    // Not a socket: refuse to delete it.
    std::fs::write(&path, b"data").unwrap();
    assert!(matches!(
        Hub::bind(&path, HubConfig::default()),
        Err(HubError::Socket(SockFileError::NotASocket { .. }))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
}

#[test]
fn reload_sends_hello_and_names_again_before_new_records() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut hub = Hub::new(HubConfig::default());
    hub.set_names(1, &names());
    hub.add_consumer(a).unwrap();
    let r = reader(b);
    let mut w = Worker::new(0, 1024, RateLimiter::unlimited());
    let (meta, ev, snip) = &all_events()[0];
    w.emit(meta, ev, snip, 0);
    hub.poll(&mut [&mut w.ring], 0);
    let mut n2 = names();
    n2.policies[1].name = "deny-all-v2".into();
    hub.set_names(2, &n2);
    w.emit(meta, ev, snip, 0);
    hub.poll(&mut [&mut w.ring], 0);
    hub.flush();
    drop(hub);
    let got = r.join().unwrap();
    assert_eq!(got.hellos, vec![1, 2]);
    assert_eq!(got.names, vec![1, 2]);
    assert_eq!(got.events[0], 2);
}

#[test]
fn config_reject_reaches_every_consumer_between_the_events_around_it() {
    let mut hub = Hub::new(HubConfig::default());
    hub.set_names(4, &names());
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (a, b) = UnixStream::pair().unwrap();
        hub.add_consumer(a).unwrap();
        readers.push(reader(b));
    }
    let mut w = Worker::new(0, 1024, RateLimiter::unlimited());
    let (meta, ev, snip) = &all_events()[0];
    w.emit(meta, ev, snip, 0);
    hub.poll(&mut [&mut w.ring], 0);
    let errors = vec![
        "rampart.toml:3:1: policy.name: missing".to_owned(),
        "rampart.toml:9:5: zone: unknown zone \"dmz\"".to_owned(),
    ];
    hub.announce_config_reject("rampart.toml", &errors);
    w.emit(meta, ev, snip, 0);
    hub.poll(&mut [&mut w.ring], 0);
    wait_for(|| {
        hub.flush();
        hub.stats().consumers.iter().all(|c| c.buffered_bytes == 0)
    });
    assert!(hub.stats().consumers.iter().all(|c| c.notices_dropped == 0));
    drop(hub);
    for r in readers {
        let got = r.join().unwrap();
        assert_eq!(got.events[0], 2);
        assert_eq!(got.rejects.len(), 1);
        let (before, reject) = &got.rejects[0];
        assert_eq!(*before, 1, "in stream order");
        assert_eq!(reject.generation, 4, "the generation that keeps running");
        assert_eq!(reject.path, "rampart.toml");
        assert_eq!(reject.errors, errors);
        assert!(reject.ts_ns > 0);
    }
}

#[test]
fn consume_waits_for_the_socket_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let stop = Arc::new(AtomicBool::new(false));
    let opts = ConsumeOptions {
        retry_interval: Duration::from_millis(20),
        once: false,
        stop: Some(stop.clone()),
    };
    let p2 = path.clone();
    let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log2 = log.clone();
    let client = thread::spawn(move || {
        consume(&p2, &opts, |ev| {
            let line = match ev {
                ConsumeEvent::Idle | ConsumeEvent::Waiting(_) => {
                    return std::ops::ControlFlow::Continue(())
                }
                ConsumeEvent::Connected => "connected".to_owned(),
                ConsumeEvent::Disconnected(_) => "disconnected".to_owned(),
                ConsumeEvent::Refused => "refused".to_owned(),
                ConsumeEvent::BadRecord(e) => format!("bad {e}"),
                ConsumeEvent::Record(rec, names) => {
                    let mut s = String::new();
                    render(Format::Junos, rec, names, &mut s);
                    if s.is_empty() {
                        rec.type_name().to_owned()
                    } else {
                        s
                    }
                }
            };
            log2.lock().unwrap().push(line);
            std::ops::ControlFlow::Continue(())
        })
    });
    thread::sleep(Duration::from_millis(100)); // socket absent meanwhile
    let serve = |path: &Path, gen: u32| {
        let mut hub = Hub::bind(path, HubConfig::default()).unwrap();
        hub.set_names(3, &names());
        let _ = gen;
        wait_for(|| {
            hub.accept();
            hub.consumer_count() == 1
        });
        let mut w = Worker::new(0, 16, RateLimiter::unlimited());
        let (meta, ev, snip) = &all_events()[0];
        w.emit(meta, ev, snip, 0);
        hub.poll(&mut [&mut w.ring], 0);
        wait_for(|| {
            hub.flush();
            hub.stats().consumers[0].buffered_bytes == 0
        });
    };
    serve(&path, 1);
    let count = |log: &Arc<std::sync::Mutex<Vec<String>>>, s: &str| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(s))
            .count()
    };
    wait_for(|| count(&log, "disconnected") == 1);
    serve(&path, 2);
    wait_for(|| count(&log, "RT_FLOW_SESSION_DENY") == 2);
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap().unwrap();
    let log = log.lock().unwrap();
    assert_eq!(count_in(&log, "connected"), 2);
    assert!(
        log.iter().any(|l| l.contains("deny-all untrust trust")),
        "{log:?}"
    );
}

/// A hub on `path` with one consumer slot, taken by the connection
/// returned (which the caller reads or not).
fn hub_with_its_one_slot_taken(path: &Path) -> (Hub, UnixStream) {
    let config = HubConfig {
        max_consumers: 1,
        ..HubConfig::default()
    };
    let mut hub = Hub::bind(path, config).unwrap();
    hub.set_names(1, &names());
    let first = UnixStream::connect(path).unwrap();
    wait_for(|| {
        hub.accept();
        hub.consumer_count() == 1
    });
    (hub, first)
}

/// A consumer the hub has no slot for hears `Refused`, not a connection,
/// and keeps trying (less often each time); once a slot is free it gets
/// in. `once` does not end the loop on a refusal.
#[test]
fn a_refused_consumer_is_told_and_retries_until_a_slot_frees() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let (mut hub, first) = hub_with_its_one_slot_taken(&path);
    let first_reader = reader(first.try_clone().unwrap());
    let opts = ConsumeOptions {
        retry_interval: Duration::from_millis(10),
        once: true,
        stop: None,
    };
    let p2 = path.clone();
    let log = Arc::new(std::sync::Mutex::new(Vec::<&'static str>::new()));
    let log2 = log.clone();
    let client = thread::spawn(move || {
        consume(&p2, &opts, |ev| {
            match ev {
                ConsumeEvent::Refused => log2.lock().unwrap().push("refused"),
                ConsumeEvent::Connected => log2.lock().unwrap().push("connected"),
                ConsumeEvent::Record(Record::Hello(_), _) => {
                    log2.lock().unwrap().push("hello");
                    return std::ops::ControlFlow::Break(());
                }
                _ => {}
            }
            std::ops::ControlFlow::Continue(())
        })
    });
    let refused = |log: &Arc<std::sync::Mutex<Vec<&str>>>| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| **l == "refused")
            .count()
    };
    wait_for(|| {
        hub.poll::<&mut VecDeque<EventSlot>>(&mut [], 1);
        refused(&log) >= 3
    });
    assert_eq!(hub.connections().refused as usize, refused(&log));
    // The slot frees: the next attempt gets in.
    first.shutdown(std::net::Shutdown::Both).unwrap();
    drop(first);
    wait_for(|| {
        hub.poll::<&mut VecDeque<EventSlot>>(&mut [], 2);
        client.is_finished()
    });
    client.join().unwrap().unwrap();
    first_reader.join().unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log[log.len() - 2..], ["connected", "hello"], "{log:?}");
    assert!(log[..log.len() - 2].iter().all(|l| *l == "refused"));
}

/// `once` does not wait for ever on a dataplane that refused it and then
/// went away: once its socket is gone, the loop ends.
#[test]
fn a_refused_once_consumer_ends_when_the_dataplane_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let (mut hub, first) = hub_with_its_one_slot_taken(&path);
    let opts = ConsumeOptions {
        retry_interval: Duration::from_millis(10),
        once: true,
        stop: None,
    };
    let p2 = path.clone();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r2 = refused.clone();
    let client = thread::spawn(move || {
        consume(&p2, &opts, |ev| {
            if let ConsumeEvent::Refused = ev {
                r2.fetch_add(1, Ordering::Relaxed);
            }
            std::ops::ControlFlow::Continue(())
        })
    });
    wait_for(|| {
        hub.accept();
        refused.load(Ordering::Relaxed) >= 1
    });
    drop(hub);
    drop(first);
    wait_for(|| client.is_finished());
    assert!(client.join().unwrap().is_err(), "the socket is gone");
}

fn count_in(log: &[String], s: &str) -> usize {
    log.iter().filter(|l| l.as_str() == s).count()
}

#[test]
fn a_late_consumer_gets_the_earlier_name_tables_sessions_still_reference() {
    let late_consumer = |hub: &mut Hub| {
        let (a, b) = UnixStream::pair().unwrap();
        hub.add_consumer(a).unwrap();
        let r = reader(b);
        hub.flush();
        r
    };
    let set = |hub: &mut Hub, generations: std::ops::RangeInclusive<u32>| {
        for generation in generations {
            let mut n = names();
            n.policies[0].name = format!("allow-web-{generation}");
            hub.set_names(generation, &n);
        }
    };

    // No worker has said which generations its sessions hold: the last
    // RETAINED_GENERATIONS earlier tables, oldest first, then the current.
    let mut hub = Hub::new(HubConfig::default());
    set(&mut hub, 1..=70);
    let r = late_consumer(&mut hub);
    drop(hub);
    let got = r.join().unwrap();
    assert_eq!(got.first_types, ["hello", "names"]);
    assert_eq!((got.hellos.clone(), got.hello_oldest), (vec![70], vec![0]));
    let first = 70 - hub::RETAINED_GENERATIONS as u32;
    assert_eq!(got.names, (first..=70).collect::<Vec<_>>());
    assert_eq!(got.names.len(), NameCache::KEEP, "a cache holds them all");

    // The worker's oldest session is of generation 8: older tables go, and
    // the hello tells consumers they may drop theirs.
    let mut hub = Hub::new(HubConfig::default());
    let worker = Arc::new(SharedCounters::new(0));
    hub.register_worker(worker.clone());
    worker.publish_oldest_generation(8);
    set(&mut hub, 1..=10);
    let r = late_consumer(&mut hub);
    drop(hub);
    let got = r.join().unwrap();
    assert_eq!((got.hellos, got.hello_oldest), (vec![10], vec![8]));
    assert_eq!(got.names, [8, 9, 10]);
}

#[test]
fn a_name_cache_drops_the_tables_a_hello_says_no_record_names() {
    let mut cache = NameCache::new();
    for g in 1..=5 {
        cache.insert(g, names());
    }
    let mut ctl = ControlEncoder::new();
    let hello = ctl.hello_referencing(6, 4, 0, "test").to_vec();
    cache.observe(&decode(&hello).unwrap());
    assert_eq!(cache.generations().collect::<Vec<_>>(), [4, 5]);
    // 0: not known, nothing is dropped.
    let hello = ctl.hello(6, 0, "test").to_vec();
    cache.observe(&decode(&hello).unwrap());
    assert_eq!(cache.generations().collect::<Vec<_>>(), [4, 5]);
}
