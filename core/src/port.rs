//! Ethernet ports with typestate: [`Port`] (probed) -> [`ConfiguredPort`]
//! (queues set up) -> [`StartedPort`] (queues handed to workers).

use std::ffi::{CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rampart_dpdk_sys as sys;

use crate::burst::Burst;
use crate::eal::Eal;
use crate::error::{Errno, PortError};
use crate::mempool::Mempool;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PortId(pub u16);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct QueueId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Queue layout requested for a port.
#[derive(Clone, Debug)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// IP MTU to set (0: the device's default).
    pub mtu: u16,
}

/// A symmetric Toeplitz key (0x6d5a repeated): both directions of a flow
/// hash to the same queue, so one worker sees the whole session.
const SYMMETRIC_RSS_KEY: [u8; 52] = {
    let mut k = [0u8; 52];
    let mut i = 0;
    while i < 52 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

struct PortState {
    id: u16,
    started: AtomicBool,
    _pool: Option<Mempool>,
    _eal: Eal,
}

impl Drop for PortState {
    fn drop(&mut self) {
        // SAFETY: the last reference is gone, so no queue of this port is
        // polled any more; stopping and closing a valid port id is sound.
        unsafe {
            if self.started.load(Ordering::Acquire) {
                sys::rte_eth_dev_stop(self.id);
            }
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// What a device reports about itself.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss_offloads: u64,
    pub rss_key_size: u8,
    /// Largest MTU the device accepts.
    pub max_mtu: u16,
    pub tx_offloads: u64,
}

/// A probed, unconfigured port.
pub struct Port {
    id: PortId,
    name: String,
    info: DeviceInfo,
    eal: Eal,
}

fn op_err(port: u16, op: &'static str, ret: i32) -> PortError {
    PortError::Op {
        port,
        op,
        errno: Errno::from_ret(ret),
    }
}

impl Port {
    /// Finds a probed port by device name: the vdev name (`net_pcap0`) or
    /// the PCI address (`0000:03:00.0`).
    pub fn by_name(eal: &Eal, name: &str) -> Result<Port, PortError> {
        let cname = CString::new(name).map_err(|_| PortError::NotFound(name.into()))?;
        let mut id: u16 = 0;
        // SAFETY: cname is a valid C string and id a valid out pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(PortError::NotFound(name.into()));
        }
        let mut raw: sys::rte_eth_dev_info = Default::default();
        // SAFETY: id is a valid port and raw a valid out struct.
        let ret = unsafe { sys::rte_eth_dev_info_get(id, &mut raw) };
        if ret != 0 {
            return Err(op_err(id, "rte_eth_dev_info_get", ret));
        }
        let driver = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: DPDK returns a static NUL-terminated driver name.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(Port {
            id: PortId(id),
            name: name.into(),
            info: DeviceInfo {
                driver,
                max_rx_queues: raw.max_rx_queues,
                max_tx_queues: raw.max_tx_queues,
                rss_offloads: raw.flow_type_rss_offloads,
                rss_key_size: raw.hash_key_size,
                max_mtu: raw.max_mtu,
                tx_offloads: raw.tx_offload_capa,
            },
            eal: eal.clone(),
        })
    }

    pub fn id(&self) -> PortId {
        self.id
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Whether the device can spread flows over several RX queues by IP/L4 hash.
    pub fn supports_rss(&self) -> bool {
        // SAFETY: reads a constant the C shim exports.
        let ip = unsafe { sys::rampart_eth_rss_ip };
        self.info.rss_offloads & ip != 0 && self.info.max_rx_queues > 1
    }

    /// Sets up RX/TX queues; with several RX queues RSS uses a symmetric key.
    pub fn configure(self, conf: &PortConfig, pool: &Mempool) -> Result<ConfiguredPort, PortError> {
        let id = self.id.0;
        if conf.rx_queues == 0 || conf.rx_queues > self.info.max_rx_queues {
            return Err(PortError::Unsupported {
                port: id,
                what: format!(
                    "{} RX queues requested, device {} supports 1..={}",
                    conf.rx_queues, self.info.driver, self.info.max_rx_queues
                ),
            });
        }
        if conf.tx_queues == 0 || conf.tx_queues > self.info.max_tx_queues {
            return Err(PortError::Unsupported {
                port: id,
                what: format!(
                    "{} TX queues requested, device {} supports 1..={}",
                    conf.tx_queues, self.info.driver, self.info.max_tx_queues
                ),
            });
        }
        let mut key = SYMMETRIC_RSS_KEY;
        let mut eth: sys::rte_eth_conf = Default::default();
        let mut rss_symmetric = false;
        if conf.rx_queues > 1 && self.supports_rss() {
            // Hash on addresses only: with the symmetric key both directions
            // of a flow, and every fragment of a datagram (which carries no
            // ports), land on the same queue and so the same worker.
            // SAFETY: reads a constant the C shim exports.
            let wanted = unsafe { sys::rampart_eth_rss_ip };
            eth.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            eth.rx_adv_conf.rss_conf.rss_hf = wanted & self.info.rss_offloads;
            let key_len = match self.info.rss_key_size {
                0 => 40,
                n => n.min(key.len() as u8),
            };
            eth.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
            eth.rx_adv_conf.rss_conf.rss_key_len = key_len;
            rss_symmetric = true;
        }
        if conf.mtu != 0 {
            if conf.mtu > self.info.max_mtu {
                return Err(PortError::Unsupported {
                    port: id,
                    what: format!(
                        "MTU {} requested, device {} supports at most {}",
                        conf.mtu, self.info.driver, self.info.max_mtu
                    ),
                });
            }
            eth.rxmode.mtu = u32::from(conf.mtu);
        }
        // Chained (jumbo) packets go out as chains where the device can.
        // SAFETY: reads a constant the C shim exports.
        let multi_segs = unsafe { sys::rampart_eth_tx_offload_multi_segs };
        if self.info.tx_offloads & multi_segs != 0 {
            eth.txmode.offloads |= multi_segs;
        }
        // SAFETY: valid port id; eth (and the key it points to) outlive the call.
        let ret = unsafe { sys::rte_eth_dev_configure(id, conf.rx_queues, conf.tx_queues, &eth) };
        if ret != 0 {
            return Err(op_err(id, "rte_eth_dev_configure", ret));
        }
        let state = Arc::new(PortState {
            id,
            started: AtomicBool::new(false),
            _pool: Some(pool.clone()),
            _eal: self.eal.clone(),
        });
        let mut rxd = conf.rx_descriptors;
        let mut txd = conf.tx_descriptors;
        // SAFETY: valid port id and out pointers.
        let ret = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rxd, &mut txd) };
        if ret != 0 {
            return Err(op_err(id, "rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..conf.rx_queues {
            // SAFETY: configured port, queue index in range, the pool
            // outlives the port (PortState keeps a clone).
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, rxd, socket, std::ptr::null(), pool.as_ptr())
            };
            if ret != 0 {
                return Err(op_err(id, "rte_eth_rx_queue_setup", ret));
            }
        }
        for q in 0..conf.tx_queues {
            // SAFETY: configured port, queue index in range.
            let ret = unsafe { sys::rte_eth_tx_queue_setup(id, q, txd, socket, std::ptr::null()) };
            if ret != 0 {
                return Err(op_err(id, "rte_eth_tx_queue_setup", ret));
            }
        }
        Ok(ConfiguredPort {
            id: self.id,
            name: self.name,
            info: self.info,
            rx_queues: conf.rx_queues,
            tx_queues: conf.tx_queues,
            rss_symmetric,
            state,
        })
    }
}

/// A port with its queues set up, not yet started.
pub struct ConfiguredPort {
    id: PortId,
    name: String,
    info: DeviceInfo,
    rx_queues: u16,
    tx_queues: u16,
    rss_symmetric: bool,
    state: Arc<PortState>,
}

impl ConfiguredPort {
    /// Starts the device and enables promiscuous mode (a bump in the wire
    /// forwards frames for any MAC).
    pub fn start(self) -> Result<StartedPort, PortError> {
        let id = self.id.0;
        // SAFETY: configured port with all queues set up.
        let ret = unsafe { sys::rte_eth_dev_start(id) };
        if ret != 0 {
            return Err(op_err(id, "rte_eth_dev_start", ret));
        }
        self.state.started.store(true, Ordering::Release);
        // Not every vdev supports promiscuous mode; those receive everything anyway.
        // SAFETY: started port.
        unsafe { sys::rte_eth_promiscuous_enable(id) };
        Ok(StartedPort {
            id: self.id,
            name: self.name,
            info: self.info,
            rss_symmetric: self.rss_symmetric,
            rx: (0..self.rx_queues).map(|q| Some(QueueId(q))).collect(),
            tx: (0..self.tx_queues).map(|q| Some(QueueId(q))).collect(),
            state: self.state,
        })
    }
}

/// Per-port hardware counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// A running port whose queues can each be taken once by a worker.
pub struct StartedPort {
    id: PortId,
    name: String,
    info: DeviceInfo,
    rss_symmetric: bool,
    rx: Vec<Option<QueueId>>,
    tx: Vec<Option<QueueId>>,
    state: Arc<PortState>,
}

impl StartedPort {
    pub fn id(&self) -> PortId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    pub fn rx_queue_count(&self) -> u16 {
        self.rx.len() as u16
    }

    pub fn tx_queue_count(&self) -> u16 {
        self.tx.len() as u16
    }

    /// True when RX spreads flows over several queues with a symmetric key.
    pub fn rss_symmetric(&self) -> bool {
        self.rss_symmetric
    }

    pub fn take_rx_queue(&mut self, q: QueueId) -> Result<RxQueue, PortError> {
        let slot = self.rx.get_mut(q.0 as usize).and_then(Option::take);
        slot.map(|queue| RxQueue {
            port: self.id,
            queue,
            _state: self.state.clone(),
        })
        .ok_or(PortError::QueueUnavailable {
            port: self.id.0,
            queue: q.0,
        })
    }

    pub fn take_tx_queue(&mut self, q: QueueId) -> Result<TxQueue, PortError> {
        let slot = self.tx.get_mut(q.0 as usize).and_then(Option::take);
        slot.map(|queue| TxQueue {
            port: self.id,
            queue,
            _state: self.state.clone(),
        })
        .ok_or(PortError::QueueUnavailable {
            port: self.id.0,
            queue: q.0,
        })
    }

    pub fn stats(&self) -> PortStats {
        port_stats(self.id)
    }

    pub fn link(&self) -> LinkStatus {
        let mut link: sys::rte_eth_link = Default::default();
        // SAFETY: valid started port, valid out struct.
        unsafe { sys::rte_eth_link_get_nowait(self.id.0, &mut link) };
        LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        }
    }

    /// Stops RX/TX on the device now (queues already handed out are
    /// returned by their workers before the port is closed).
    pub fn stop(&self) {
        if self.state.started.swap(false, Ordering::AcqRel) {
            // SAFETY: valid started port; workers have stopped polling
            // before the caller asks for this.
            unsafe { sys::rte_eth_dev_stop(self.id.0) };
        }
    }
}

/// Reads a port's counters (thread-safe in DPDK).
pub fn port_stats(id: PortId) -> PortStats {
    let mut s: sys::rte_eth_stats = Default::default();
    // SAFETY: valid port id, valid out struct.
    unsafe { sys::rte_eth_stats_get(id.0, &mut s) };
    PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// One RX queue, owned by the single worker that polls it.
pub struct RxQueue {
    port: PortId,
    queue: QueueId,
    _state: Arc<PortState>,
}

// SAFETY: a queue is polled by exactly one lcore at a time; moving it to
// the worker's lcore moves that right.
unsafe impl Send for RxQueue {}

impl RxQueue {
    pub fn port(&self) -> PortId {
        self.port
    }

    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Receives into the free tail of `burst`; returns how many arrived.
    #[inline(always)]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let (ptr, room) = burst.spare_raw();
        if room == 0 {
            return 0;
        }
        // SAFETY: ptr has room for `room` pointers; the port is started
        // and this queue is polled only by us (&mut self).
        let n = unsafe { sys::rte_eth_rx_burst(self.port.0, self.queue.0, ptr, room) } as usize;
        // SAFETY: DPDK wrote n owned mbufs into the spare slots.
        unsafe { burst.assume_filled(n) };
        n
    }
}

/// One TX queue, owned by the single worker that transmits on it.
pub struct TxQueue {
    port: PortId,
    queue: QueueId,
    _state: Arc<PortState>,
}

// SAFETY: as for RxQueue.
unsafe impl Send for TxQueue {}

impl TxQueue {
    pub fn port(&self) -> PortId {
        self.port
    }

    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Transmits from the front of `burst`; what the device accepted
    /// leaves the burst (ownership passed to DPDK), the unsent tail stays
    /// for the caller to retry or free. Returns how many were sent.
    #[inline(always)]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let (ptr, n) = burst.held_raw();
        if n == 0 {
            return 0;
        }
        // SAFETY: ptr holds n owned mbufs; only we use this queue.
        let sent = unsafe { sys::rte_eth_tx_burst(self.port.0, self.queue.0, ptr, n) } as usize;
        // SAFETY: DPDK took ownership of the first `sent` mbufs.
        unsafe { burst.consume_front(sent) };
        sent
    }
}
