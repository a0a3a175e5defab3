//! The schema is the contract: records written by the Rust encoder (and
//! the hub's control encoder) are read by tools/python/rampart_events.py,
//! using Python code generated at test time by the same flatc from the same
//! schema, and the decoded fields match.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use rampart_events::*;

fn python_ready() -> bool {
    match Command::new("python3")
        .args(["-c", "import flatbuffers"])
        .output()
    {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "SKIPPED python_reader: the `flatbuffers` Python package is missing \
                 (python3 -m pip install flatbuffers==25.12.19): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("SKIPPED python_reader: python3 not found: {e}");
            false
        }
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\": ");
    let start = line
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {line}"))
        + pat.len();
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim_matches('"')
}

#[test]
fn python_reader_decodes_what_rust_writes() {
    if !python_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("gen");
    let status = Command::new(rampart_schema::FLATC)
        .args(["--python", "-o"])
        .arg(&gen)
        .arg(rampart_schema::SCHEMA)
        .status()
        .expect("run flatc");
    assert!(status.success());

    // A stream: hello, names, every event type, stats, loss.
    let mut stream = Vec::new();
    let mut ctl = ControlEncoder::new();
    ctl.set_identity("fw1", 0x00c0_ffee_1234_5678);
    stream.extend_from_slice(ctl.hello(3, TS, "rampart test"));
    stream.extend_from_slice(ctl.names(3, &names()));
    let mut enc = Encoder::new();
    let events = all_events();
    for (i, (meta, ev, snippet)) in events.iter().enumerate() {
        stream.extend_from_slice(enc.encode_bytes(100 + i as u64, meta, ev, snippet));
    }
    let mut totals = [TypeCounters::default(); EventType::COUNT];
    totals[0].generated = 9;
    totals[0].drained = 9;
    stream.extend_from_slice(ctl.stats(TS, 3, &totals, &[], 1, &[9, 0, 0, 0, 0, 0], &[0; 6]));
    stream.extend_from_slice(ctl.loss(TS, 1, &[0, 2, 0, 0, 0, 0]));
    stream.extend_from_slice(ctl.config_reject(
        TS,
        3,
        "/etc/rampart.toml",
        &["/etc/rampart.toml:4:1: policy.match: \"nope\" is not known".to_owned()],
    ));
    // Last, an aggregated policy deny ([events.aggregate]).
    let mut slot = EventSlot::EMPTY;
    let repeat = Repeat {
        count: 31337,
        last_ts_ns: TS + 999_000_000,
    };
    let (meta, ev, snippet) = &events[0];
    assert!(enc.encode_repeated(200, meta, ev, snippet, repeat, &mut slot));
    stream.extend_from_slice(slot.as_bytes());
    let file = dir.path().join("events.bin");
    std::fs::write(&file, &stream).unwrap();

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/python/rampart_events.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--gen")
        .arg(&gen)
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + events.len() + 3 + 1, "{text}");
    let aggregated = lines[lines.len() - 1];
    assert_eq!(field(aggregated, "count"), "31337", "{aggregated}");
    assert_eq!(
        field(aggregated, "last_ts_ns"),
        (TS + 999_000_000).to_string()
    );
    assert_eq!(
        field(aggregated, "last_ts"),
        "2024-05-01T12:00:01.122456789Z"
    );
    assert!(
        !lines[2].contains("\"count\""),
        "a record per packet has no count"
    );
    assert_eq!(field(lines[0], "type"), "hello");
    assert_eq!(
        field(lines[0], "schema_version"),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(field(lines[0], "producer"), "rampart test");
    assert_eq!(field(lines[1], "type"), "names");

    // Every event: the Python fields equal what the Rust decoder says.
    let cache = cache();
    for (i, (meta, ev, snippet)) in events.iter().enumerate() {
        let line = lines[2 + i];
        let bytes = enc.encode_bytes(100 + i as u64, meta, ev, snippet).to_vec();
        let Record::Event(pe) = decode(&bytes).unwrap() else {
            panic!()
        };
        let names = cache.names(3);
        assert_eq!(field(line, "type"), ev.event_type().name());
        assert_eq!(field(line, "seq"), (100 + i).to_string());
        assert_eq!(
            field(line, "event_id"),
            format!("fw1:00c0ffee12345678:{}:{}", meta.worker, 100 + i)
        );
        assert_eq!(field(line, "ts_ns"), TS.to_string());
        assert_eq!(field(line, "ts"), "2024-05-01T12:00:00.123456789Z");
        assert_eq!(field(line, "worker"), meta.worker.to_string());
        assert_eq!(field(line, "generation"), "3");
        assert_eq!(field(line, "src_ip"), pe.meta.src_ip().to_string());
        assert_eq!(field(line, "dst_ip"), pe.meta.dst_ip().to_string());
        assert_eq!(field(line, "src_port"), meta.src_port.to_string());
        assert_eq!(field(line, "dst_port"), meta.dst_port.to_string());
        assert_eq!(field(line, "protocol"), meta.protocol.to_string());
        assert_eq!(
            field(line, "interface"),
            names.interface(meta.ingress).unwrap()
        );
        assert_eq!(
            field(line, "from_zone"),
            names.zone(meta.from_zone).unwrap()
        );
        assert_eq!(field(line, "to_zone"), names.zone(meta.to_zone).unwrap());
        if !snippet.is_empty() {
            let hex: String = snippet.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(field(line, "snippet"), hex);
        }
        match ev {
            Event::PolicyDeny(d) => {
                assert_eq!(field(line, "policy"), names.policy(d.policy).unwrap());
                assert_eq!(field(line, "action"), "deny");
            }
            Event::ScreenDrop(s) => {
                assert_eq!(field(line, "screen"), s.option.name());
                assert_eq!(field(line, "screen_profile"), "edge");
                assert_eq!(field(line, "action"), "drop");
            }
            Event::FilterLog(f) => {
                assert_eq!(field(line, "filter"), "protect");
                assert_eq!(field(line, "term"), names.term(f.filter, f.term).unwrap());
                assert_eq!(field(line, "action"), f.action.name());
                assert_eq!(field(line, "direction"), f.direction.name());
            }
            Event::SessionOpen(s) => {
                assert_eq!(field(line, "session_id"), s.session_id.to_string());
                assert_eq!(field(line, "policy"), names.policy(s.policy).unwrap());
            }
            Event::SessionClose(s) => {
                assert_eq!(field(line, "session_id"), s.session_id.to_string());
                assert_eq!(field(line, "reason"), s.reason.name());
                assert_eq!(field(line, "packets_client"), s.packets_client.to_string());
                assert_eq!(field(line, "bytes_client"), s.bytes_client.to_string());
                assert_eq!(field(line, "packets_server"), s.packets_server.to_string());
                assert_eq!(field(line, "bytes_server"), s.bytes_server.to_string());
                assert_eq!(field(line, "elapsed_ns"), s.elapsed_ns.to_string());
            }
            Event::ScreenEpisode(s) => {
                assert_eq!(field(line, "screen"), s.option.name());
                assert_eq!(field(line, "phase"), s.phase.name());
                assert_eq!(field(line, "packets"), s.packets.to_string());
                assert_eq!(field(line, "peak_pps"), s.peak_pps.to_string());
                assert!(
                    line.contains("\"top_sources\": [{\"ip\": \"198.51.100.1\", \"packets\": 100000}, {\"ip\": \"198.51.100.2\", \"packets\": 20000}]"),
                    "{line}"
                );
            }
        }
    }
    let stats = lines[2 + events.len()];
    assert_eq!(field(stats, "type"), "stats");
    assert!(
        stats.contains("\"policy_deny\": {\"drained\": 9, \"generated\": 9"),
        "{stats}"
    );
    let loss = lines[3 + events.len()];
    assert_eq!(field(loss, "type"), "loss");
    assert!(loss.contains("\"screen_drop\": 2"), "{loss}");
    let reject = lines[4 + events.len()];
    assert_eq!(field(reject, "type"), "config_reject");
    assert_eq!(field(reject, "generation"), "3");
    assert_eq!(field(reject, "path"), "/etc/rampart.toml");
    assert!(
        reject.contains(
            r#""errors": ["/etc/rampart.toml:4:1: policy.match: \"nope\" is not known"]"#
        ),
        "{reject}"
    );
    // Every screen option name agrees with the Rust names.
    for o in ScreenOption::ALL {
        let meta = meta_v4(6, 1, 2);
        let mut s = enc
            .encode_bytes(
                1,
                &meta,
                &Event::ScreenDrop(ScreenDrop {
                    screen: 0,
                    option: o,
                    alarm_only: true,
                }),
                &[],
            )
            .to_vec();
        let mut file_bytes = ControlEncoder::new().names(3, &names()).to_vec();
        file_bytes.append(&mut s);
        std::fs::write(&file, &file_bytes).unwrap();
        let out = Command::new("python3")
            .arg(&script)
            .arg("--gen")
            .arg(&gen)
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().nth(1).unwrap();
        assert_eq!(field(line, "screen"), o.name());
        assert_eq!(field(line, "action"), "alarm");
    }
}

/// A node of a high-availability pair: the Python reader gives each
/// record the event id the Rust decoder gives it (a session record's
/// identity, the same from both nodes; a packet record's place in the
/// stream), and the hello names the cluster.
#[test]
fn python_reader_ids_a_pairs_session_records_as_rust_does() {
    if !python_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("gen");
    let status = Command::new(rampart_schema::FLATC)
        .args(["--python", "-o"])
        .arg(&gen)
        .arg(rampart_schema::SCHEMA)
        .status()
        .expect("run flatc");
    assert!(status.success());
    let mut ctl = ControlEncoder::new();
    ctl.set_identity("fw2", 0x00c0_ffee_1234_5678);
    ctl.set_cluster("edge");
    let mut stream = ctl.hello(3, TS, "rampart test").to_vec();
    let mut rust = NameCache::new();
    rust.observe(&decode_size_prefixed(&stream).unwrap().0);
    stream.extend_from_slice(ctl.names(3, &names()));
    let mut enc = Encoder::new();
    let events = all_events();
    let mut want = Vec::new();
    for (i, (meta, ev, snippet)) in events.iter().enumerate() {
        let bytes = enc.encode_bytes(100 + i as u64, meta, ev, snippet).to_vec();
        let Record::Event(pe) = decode(&bytes).unwrap() else {
            panic!()
        };
        let mut id = String::new();
        assert!(rust.write_record_id(&pe, &mut id));
        want.push((ev.event_type(), id));
        stream.extend_from_slice(&bytes);
    }
    let file = dir.path().join("events.bin");
    std::fs::write(&file, &stream).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/python/rampart_events.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--gen")
        .arg(&gen)
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(field(lines[0], "cluster"), "edge");
    let mut sessions = 0;
    for ((t, id), line) in want.iter().zip(&lines[2..]) {
        assert_eq!(field(line, "event_id"), id, "{line}");
        if matches!(t, EventType::SessionOpen | EventType::SessionClose) {
            assert!(id.starts_with("edge:0123456789abcdef:"), "{id}");
            sessions += 1;
        }
    }
    assert_eq!(sessions, 2);
}
