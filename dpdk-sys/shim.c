#include "wrapper.h"

int rampart_rte_errno(void) { return rte_errno; }

void rampart_set_rte_errno(int value) { rte_errno = value; }

const uint64_t rampart_eth_rss_ip = RTE_ETH_RSS_IP;
const uint64_t rampart_eth_tx_offload_mbuf_fast_free = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
const uint64_t rampart_eth_link_speed_fixed = RTE_ETH_LINK_SPEED_FIXED;
const uint64_t rampart_eth_tx_offload_multi_segs = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
