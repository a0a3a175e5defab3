/* Everything Rampart uses from DPDK; bindgen reads this, and the generated
 * static-inline wrappers include it. */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_telemetry.h>
#include <rte_rcu_qsbr.h>
#include <rte_version.h>
#include <rte_prefetch.h>

/* rte_errno is a per-lcore TLS macro bindgen cannot see. */
int rampart_rte_errno(void);
void rampart_set_rte_errno(int value);

/* Flag constants built with RTE_BIT64(), which bindgen's macro evaluation
 * cannot expand with Debian's libclang 14. */
extern const uint64_t rampart_eth_rss_ip;
extern const uint64_t rampart_eth_tx_offload_mbuf_fast_free;
extern const uint64_t rampart_eth_link_speed_fixed;
extern const uint64_t rampart_eth_tx_offload_multi_segs;
