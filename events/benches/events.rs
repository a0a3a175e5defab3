//! Benchmarks (they measure, they do not assert):
//! 1. ns per event to encode one record and copy it into a ring slot;
//! 2. events/s the hub delivers to one consumer reading a Unix socket in
//!    another thread;
//! 3. lines/s each output format renders from a decoded deny record, and
//!    records/s per core for all `rampart events` does with a record's
//!    bytes: decode (verified), render, append to the output buffer.
//!
//! `cargo bench -p rampart-events --bench events` (optionally
//! `-- --events N`; `RAMPART_BENCH_FORMAT=json` runs only that format's
//! rendering).

use std::io::{BufReader, Read};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use rampart_events::*;

fn meta() -> PacketMeta {
    PacketMeta {
        ts_ns: 1_714_564_800_123_456_789,
        worker: 0,
        generation: 1,
        src: ipv4_mapped([10, 0, 0, 1]),
        dst: ipv4_mapped([10, 1, 0, 5]),
        ipv6: false,
        src_port: 1234,
        dst_port: 80,
        protocol: 6,
        icmp_type: 0,
        icmp_code: 0,
        ingress: 0,
        egress: 1,
        from_zone: 0,
        to_zone: 1,
    }
}

fn bench_encode(n: u64) {
    let mut enc = Encoder::new();
    let mut slots = vec![EventSlot::EMPTY; 1024];
    let snippet = [0x5au8; 64];
    let m = meta();
    let cases: [(&str, Event, &[u8]); 3] = [
        (
            "policy_deny + 64B snippet",
            Event::PolicyDeny(PolicyDeny {
                policy: 1,
                reject: false,
                audit: false,
                session_id: 7087,
                application: NO_ID16,
            }),
            &snippet,
        ),
        (
            "session_open",
            Event::SessionOpen(SessionOpen {
                session_id: 7,
                policy: 0,
                application: NO_ID16,
                origin: 0,
            }),
            &[],
        ),
        (
            "session_close",
            Event::SessionClose(SessionClose {
                session_id: 7,
                policy: 0,
                reason: CloseReason::TcpFin,
                packets_client: 10,
                bytes_client: 1000,
                packets_server: 10,
                bytes_server: 10000,
                elapsed_ns: 1,
                session_generation: 0,
                application: NO_ID16,
                origin: 0,
            }),
            &[],
        ),
    ];
    for (name, ev, snip) in cases {
        // warm up
        for i in 0..10_000u64 {
            enc.encode(i, &m, &ev, snip, &mut slots[(i & 1023) as usize]);
        }
        let t0 = Instant::now();
        for i in 0..n {
            let ok = enc.encode(i, &m, &ev, snip, &mut slots[(i & 1023) as usize]);
            std::hint::black_box(ok);
        }
        let dt = t0.elapsed();
        println!(
            "encode+copy into slot  {name:28} {:7.1} ns/event  ({} B record)",
            dt.as_nanos() as f64 / n as f64,
            slots[0].len()
        );
    }
}

/// Yields `remaining` copies of one pre-encoded slot.
struct Repeat {
    slot: EventSlot,
    remaining: u64,
}

impl EventSource for Repeat {
    fn drain_into(&mut self, max: usize, each: &mut dyn FnMut(&EventSlot)) -> usize {
        let n = (max as u64).min(self.remaining) as usize;
        for _ in 0..n {
            each(&self.slot);
        }
        self.remaining -= n as u64;
        n
    }
}

fn bench_hub(n: u64, decode_in_consumer: bool) {
    let mut enc = Encoder::new();
    let mut slot = EventSlot::EMPTY;
    let snippet = [0x5au8; 64];
    enc.encode(
        1,
        &meta(),
        &Event::PolicyDeny(PolicyDeny {
            policy: 1,
            reject: false,
            audit: false,
            session_id: 7087,
            application: NO_ID16,
        }),
        &snippet,
        &mut slot,
    );
    let rec_len = slot.len();
    let (a, b) = UnixStream::pair().unwrap();
    let mut hub = Hub::new(HubConfig {
        burst: 256,
        ..Default::default()
    });
    hub.add_consumer(a).unwrap();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 20, b);
        let mut buf = Vec::with_capacity(4096);
        let mut events = 0u64;
        if decode_in_consumer {
            while let Ok(true) = read_frame(&mut r, &mut buf) {
                if let Ok(Record::Event(e)) = decode(&buf) {
                    std::hint::black_box(e.seq);
                    events += 1;
                }
            }
        } else {
            let mut len = [0u8; 4];
            while r.read_exact(&mut len).is_ok() {
                let n = u32::from_le_bytes(len) as usize;
                buf.resize(n, 0);
                if r.read_exact(&mut buf).is_err() {
                    break;
                }
                events += 1;
            }
        }
        events
    });
    let mut sources = vec![
        Repeat {
            slot,
            remaining: n / 2,
        },
        Repeat {
            slot,
            remaining: n - n / 2,
        },
    ];
    let t0 = Instant::now();
    let mut now = 0;
    while sources.iter().any(|s| s.remaining > 0) {
        now += 1;
        hub.poll(&mut sources, now);
    }
    while hub.stats().consumers[0].buffered_bytes > 0 {
        hub.flush();
    }
    let stats = hub.stats();
    drop(hub);
    let received = reader.join().unwrap();
    let dt = t0.elapsed();
    let delivered: u64 = stats.consumers[0].delivered.iter().sum();
    let dropped: u64 = stats.consumers[0].dropped.iter().sum();
    println!(
        "hub -> 1 consumer ({}) {:>9} events of {rec_len} B in {:.3} s: {:.2} M events/s delivered ({:.0} MB/s), dropped {dropped}, consumer received {received} (+hello/names)",
        if decode_in_consumer { "consumer verifies+decodes" } else { "consumer reads frames" },
        n,
        dt.as_secs_f64(),
        delivered as f64 / dt.as_secs_f64() / 1e6,
        delivered as f64 * rec_len as f64 / dt.as_secs_f64() / 1e6,
    );
}

fn bench_render(n: u64) {
    use rampart_events::syslog::{write_syslog_message, Framing, SyslogOptions};
    let mut names = NameCache::new();
    names.insert(
        1,
        Names {
            zones: vec![
                ZoneName {
                    name: "untrust".into(),
                    screen: NO_ID16,
                },
                ZoneName {
                    name: "trust".into(),
                    screen: NO_ID16,
                },
            ],
            interfaces: vec![InterfaceName {
                name: "ge-0/0/0".into(),
                zone: 0,
            }],
            policies: vec![PolicyName {
                name: "deny-all".into(),
                from_zone: 0,
                to_zone: 1,
            }],
            filters: vec![],
            screens: vec![],
            applications: vec![],
        },
    );
    let mut m = meta();
    m.generation = 1;
    let ev = Event::PolicyDeny(PolicyDeny {
        policy: 0,
        reject: false,
        audit: false,
        session_id: 7087,
        application: NO_ID16,
    });
    let bytes = Encoder::new()
        .encode_bytes(1, &m, &ev, &[0x5a; 64])
        .to_vec();
    let rec = decode(&bytes).unwrap();
    let opts = SyslogOptions {
        hostname: "fw1".into(),
        facility: 1,
    };
    let mut line = String::with_capacity(1024);
    type Render<'a> = Box<dyn Fn(&Record<'_>, &mut String) + 'a>;
    let cases: [(&str, Render); 5] = [
        (
            "json",
            Box::new(|r, l| {
                render(Format::Json, r, &names, l);
            }),
        ),
        (
            "junos",
            Box::new(|r, l| {
                render(Format::Junos, r, &names, l);
            }),
        ),
        (
            "junos-sd (RFC 5424)",
            Box::new(|r, l| {
                render(Format::JunosSd, r, &names, l);
            }),
        ),
        (
            "junos BSD syslog",
            Box::new(|r, l| {
                write_syslog_message(Format::Junos, Framing::Bsd, r, &names, &opts, l);
            }),
        ),
        (
            "droplog",
            Box::new(|r, l| {
                render(Format::Droplog, r, &names, l);
            }),
        ),
    ];
    let only = std::env::var("RAMPART_BENCH_FORMAT").ok();
    for (name, f) in &cases {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let t0 = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..n {
            line.clear();
            f(&rec, &mut line);
            bytes += line.len();
        }
        let dt = t0.elapsed();
        println!(
            "render policy_deny    {name:22} {:6.2} M lines/s  ({} B/line)",
            n as f64 / dt.as_secs_f64() / 1e6,
            bytes / n as usize
        );
    }
    // What `rampart events` does per record once its bytes are read:
    // decode (verified), render, append to the output buffer.
    for (name, f) in &cases {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let mut out = std::io::BufWriter::with_capacity(256 << 10, std::io::sink());
        let t0 = Instant::now();
        for _ in 0..n {
            let rec = decode(std::hint::black_box(&bytes)).unwrap();
            line.clear();
            f(&rec, &mut line);
            std::io::Write::write_all(&mut out, line.as_bytes()).unwrap();
        }
        let dt = t0.elapsed();
        println!(
            "decode+render+write   {name:22} {:6.2} M records/s per core",
            n as f64 / dt.as_secs_f64() / 1e6,
        );
    }
}

fn main() {
    let mut n = 5_000_000u64;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--events") {
        n = args[i + 1].parse().expect("--events N");
    }
    if args.iter().any(|a| a == "--test") {
        n = 10_000; // `cargo test --benches`: smoke run
    }
    if std::env::var("RAMPART_BENCH_FORMAT").is_ok() {
        bench_render(n.min(2_000_000));
        return;
    }
    bench_encode(n);
    bench_render(n.min(2_000_000));
    bench_hub(n, false);
    bench_hub(n, true);
}
