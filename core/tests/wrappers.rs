//! Safe-wrapper tests on a real EAL. Each test initializes EAL, so each
//! needs its own process: run them with `cargo nextest` (one process per test).

use rampart_core::{
    Burst, Eal, EalBuilder, Mbuf, MbufRing, Mempool, Port, PortConfig, QueueId, Ring, MAX_BURST,
};

fn eal(test: &str, vdevs: &[&str]) -> Eal {
    let mut b = EalBuilder::new()
        .args([
            "--no-pci",
            "--no-huge",
            "-m",
            "256",
            "--no-shconf",
            "-l",
            "0",
            "--log-level",
            "lib.eal:error",
        ])
        .arg(format!("--file-prefix=rampart-core-{test}"));
    for v in vdevs {
        b = b.vdev(v);
    }
    b.init().expect("EAL init")
}

#[test]
fn partial_tx_leaks_nothing() {
    // net_ring with CREATE loops TX back to RX through a ring of 1024 slots,
    // so enough bursts make TX accept only part of one.
    let eal = eal("partial-tx", &["net_ring0,nodeaction=r0:0:CREATE"]);
    let pool = Mempool::create_pktmbuf(&eal, "pool", 4095, 0, 0).unwrap();
    let start = pool.in_use();
    let port = Port::by_name(&eal, "r0").unwrap(); // nodeaction names the port
    let conf = PortConfig {
        rx_queues: 1,
        tx_queues: 1,
        rx_descriptors: 512,
        tx_descriptors: 512,
        mtu: 0,
    };
    let mut port = port.configure(&conf, &pool).unwrap().start().unwrap();
    let mut tx = port.take_tx_queue(QueueId(0)).unwrap();
    let mut rx = port.take_rx_queue(QueueId(0)).unwrap();
    assert!(
        port.take_tx_queue(QueueId(0)).is_err(),
        "a queue is taken once"
    );

    let mut saw_partial = false;
    for _ in 0..64 {
        let mut burst = Burst::new();
        while !burst.is_full() {
            let mut m = Mbuf::alloc(&pool).expect("pool has room");
            m.append(60).unwrap().fill(0xab);
            burst.push(m).map_err(|_| ()).unwrap();
        }
        let sent = tx.tx_burst(&mut burst);
        assert_eq!(burst.len(), MAX_BURST - sent, "sent mbufs leave the burst");
        if sent > 0 && sent < MAX_BURST {
            saw_partial = true;
        }
        drop(burst); // frees the unsent tail
        if sent == 0 {
            break;
        }
    }
    assert!(saw_partial, "the ring must fill up mid-burst");
    assert!(pool.in_use() > start, "the ring holds what TX accepted");

    // Receive everything back and free it: the pool returns to its start.
    let mut received = 0;
    loop {
        let mut burst = Burst::new();
        let n = rx.rx_burst(&mut burst);
        if n == 0 {
            break;
        }
        assert!(burst
            .as_slice()
            .iter()
            .all(|m| m.data().len() == 60 && m.data()[0] == 0xab));
        received += n;
    }
    assert!(received > 0);
    assert_eq!(pool.in_use(), start);
}

#[test]
fn typed_ring_is_fifo_and_bounded() {
    let eal = eal("ring", &[]);
    let (mut tx, mut rx) = Ring::<[u32; 2]>::create(&eal, "typed", 64, 0).unwrap();
    assert_eq!(tx.capacity(), 64);
    let items: Vec<[u32; 2]> = (0..100).map(|i| [i, i * 2]).collect();
    assert_eq!(tx.enqueue_burst(&items), 64, "a full ring refuses the rest");
    let mut out = [[0u32; 2]; 100];
    assert_eq!(rx.dequeue_burst(&mut out), 64);
    assert_eq!(&out[..64], &items[..64]);
    assert!(rx.is_empty());
    assert!(
        Ring::<u8>::create(&eal, "odd", 64, 0).is_err(),
        "elements must be multiples of 4 bytes"
    );
}

#[test]
fn typed_ring_in_place_is_fifo_across_the_wrap() {
    let eal = eal("ring-zc", &[]);
    // 5 elements: the storage has 8 slots, so indices wrap inside bursts.
    let (mut tx, mut rx) = Ring::<[u32; 4]>::create(&eal, "zc", 5, 0).unwrap();
    assert!(tx.is_empty(), "priming leaves the ring empty");
    let mut next = 0u32;
    let mut expect = 0u32;
    for round in 0..20 {
        // Fill until full; the slot always holds an earlier value.
        while tx.enqueue_in_place(|slot| {
            *slot = [next, next + 1, next + 2, round];
            true
        }) {
            next += 1;
        }
        assert_eq!(tx.len(), 5);
        assert!(!tx.enqueue_in_place(|_| unreachable!("full ring")));
        // A declined fill publishes nothing.
        let mut got = Vec::new();
        assert_eq!(rx.dequeue_in_place(3, |v| got.push(*v)), 3);
        assert!(!tx.enqueue_in_place(|_| false));
        assert_eq!(tx.len(), 2);
        assert_eq!(rx.dequeue_in_place(100, |v| got.push(*v)), 2);
        for v in got {
            assert_eq!(v[..3], [expect, expect + 1, expect + 2]);
            expect += 1;
        }
    }
    assert_eq!(expect, next);
}

/// Batched in-place writes: nothing is visible before `publish`, a
/// declined fill offers the same slot again, a reservation never spans
/// more than the free space, and order holds across batches and the wrap.
#[test]
fn typed_ring_batches_in_place_writes_until_published() {
    let eal = eal("ring-zc-batch", &[]);
    let (mut tx, mut rx) = Ring::<[u32; 2]>::create(&eal, "zcb", 7, 0).unwrap();
    let mut next = 0u32;
    let mut expect = 0u32;
    let mut seen = Vec::new();
    for round in 0..10u32 {
        for _ in 0..3 {
            assert!(tx.put_in_place(4, |slot| {
                *slot = [next, round];
                true
            }));
            next += 1;
        }
        assert!(!tx.put_in_place(4, |_| false), "declined: nothing written");
        assert_eq!(tx.len(), 0, "not visible before publish");
        assert_eq!(rx.dequeue_in_place(100, |v| seen.push(*v)), 0);
        tx.publish();
        tx.publish();
        assert_eq!(tx.len(), 3, "published once, declined slot not included");
        assert_eq!(rx.dequeue_in_place(100, |v| seen.push(*v)), 3);
    }
    // A full ring: the batch holds only what is free, the rest is refused.
    while tx.put_in_place(4, |slot| {
        *slot = [next, 99];
        true
    }) {
        next += 1;
    }
    tx.publish();
    assert_eq!(tx.len(), 7);
    assert!(!tx.put_in_place(4, |_| unreachable!("full ring")));
    assert_eq!(rx.dequeue_in_place(100, |v| seen.push(*v)), 7);
    // An unpublished write still reaches the consumer when the producer
    // goes away.
    assert!(tx.put_in_place(4, |slot| {
        *slot = [next, 100];
        true
    }));
    next += 1;
    drop(tx);
    assert_eq!(rx.dequeue_in_place(100, |v| seen.push(*v)), 1);
    for v in seen {
        assert_eq!(v[0], expect);
        expect += 1;
    }
    assert_eq!(expect, next);
}

#[test]
fn burst_clear_returns_every_mbuf_and_the_burst_is_reusable() {
    let eal = eal("burst-clear", &[]);
    let pool = Mempool::create_pktmbuf(&eal, "pool", 1023, 0, 0).unwrap();
    let start = pool.in_use();
    let mut burst = Burst::new();
    for round in 0..3 {
        // A full burst, a partial one, then an empty one.
        let n = [MAX_BURST, 5, 0][round];
        for _ in 0..n {
            burst
                .push(Mbuf::alloc(&pool).unwrap())
                .map_err(|_| ())
                .unwrap();
        }
        assert_eq!(pool.in_use(), start + n as u32);
        burst.clear();
        assert!(burst.is_empty());
        assert_eq!(pool.in_use(), start, "round {round}: all back in the pool");
    }
    burst
        .push(Mbuf::alloc(&pool).unwrap())
        .map_err(|_| ())
        .unwrap();
    drop(burst);
    assert_eq!(pool.in_use(), start, "drop frees what is left");
}

#[test]
fn mbuf_ring_moves_ownership_and_frees_leftovers() {
    let eal = eal("mbuf-ring", &[]);
    let pool = Mempool::create_pktmbuf(&eal, "pool", 1023, 0, 0).unwrap();
    let start = pool.in_use();
    {
        let (mut tx, mut rx) = MbufRing::create(&eal, "handoff", 16, 0).unwrap();
        for i in 0..16u64 {
            let m = Mbuf::alloc(&pool).unwrap();
            assert!(tx.enqueue(m, i).is_ok());
        }
        let extra = Mbuf::alloc(&pool).unwrap();
        let back = tx
            .enqueue(extra, 99)
            .expect_err("full ring gives the mbuf back");
        drop(back);
        let mut tags = Vec::new();
        rx.dequeue_each(4, |m, tag| {
            assert_eq!(m.data().len(), 0);
            tags.push(tag);
        });
        assert_eq!(tags, vec![0, 1, 2, 3]);
        assert_eq!(pool.in_use(), start + 12);
    } // both ends dropped: the 12 left in the ring are freed
    assert_eq!(pool.in_use(), start);
}

#[test]
fn lcore_panic_is_reported_not_propagated() {
    let eal = EalBuilder::new()
        .args([
            "--no-pci",
            "--no-huge",
            "-m",
            "128",
            "--no-shconf",
            "-l",
            "0-1",
        ])
        .init()
        .unwrap();
    let workers = eal.worker_lcores();
    assert_eq!(workers.len(), 1);
    let ok = eal.launch(workers[0], || 41 + 1).unwrap();
    assert_eq!(ok.join().unwrap(), 42);
    let bad = eal
        .launch(workers[0], || -> u32 { panic!("boom on a worker") })
        .unwrap();
    let err = bad.join().unwrap_err().to_string();
    assert!(err.contains("boom on a worker"), "{err}");
    assert!(
        EalBuilder::new().init().is_err(),
        "EAL initializes once per process"
    );
}

#[test]
fn unknown_device_names_the_device() {
    let eal = eal("unknown", &[]);
    let err = Port::by_name(&eal, "net_nothing9")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("net_nothing9"), "{err}");
}

#[test]
fn arc_ring_moves_references_and_frees_leftovers() {
    use rampart_core::ArcRing;
    use std::sync::Arc;
    let eal = eal("arc-ring", &[]);
    let value = Arc::new(String::from("generation 2"));
    {
        let (mut tx, mut rx) = ArcRing::create::<String>(&eal, "arcs", 4, 0).unwrap();
        for _ in 0..4 {
            tx.send(value.clone()).unwrap();
        }
        assert!(
            tx.send(value.clone()).is_err(),
            "a full ring gives the reference back"
        );
        assert_eq!(Arc::strong_count(&value), 5);
        let got = rx.recv().unwrap();
        assert_eq!(*got, "generation 2");
        drop(got);
        assert_eq!(Arc::strong_count(&value), 4);
    } // the receiver frees the three never received
    assert_eq!(Arc::strong_count(&value), 1);
}
