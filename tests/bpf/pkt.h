/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkt: test-side packet builder and BPF_PROG_TEST_RUN wrapper for the
 * xdp-lb BPF tests and the director benchmark. Builds Ethernet (optional
 * 802.1Q) + IPv4/IPv6 + TCP/UDP packets, ICMP errors quoting a packet, and
 * GUE packets as the director sends them; runs an XDP program once on a
 * buffer; sets up a private network namespace with a routed next hop.
 */
#ifndef DROVER_TEST_PKT_H
#define DROVER_TEST_PKT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover_hash.h"
#include "drover_maps.h"

#define PKT_MAX 512

struct pkt {
    uint8_t b[PKT_MAX];
    size_t len;
};

struct pkt_spec {
    uint8_t family; /* DROVER_AF_INET / DROVER_AF_INET6 */
    uint8_t proto;  /* IPPROTO_TCP / IPPROTO_UDP */
    const char *src, *dst;
    uint16_t sport, dport; /* host order */
    uint8_t tcp_flags;     /* 0x02 SYN, 0x10 ACK */
    uint16_t vlan;         /* 0 = untagged */
    size_t payload;        /* bytes of payload after the L4 header */
};

/* Ethernet + IP + L4 (+ payload) into p. Returns offset of the IP header. */
size_t pkt_build(struct pkt *p, const struct pkt_spec *s);
/* ICMP frag-needed (v4) / packet-too-big (v6) from router to quoted->dst's
 * peer, quoting the packet described by quoted (as sent by the VIP). */
void pkt_build_icmp_ptb(struct pkt *p, const char *router, const char *to,
                        const struct pkt_spec *quoted);
/* The flow a spec describes, as drover_hash.h sees it. */
void pkt_flow(const struct pkt_spec *s, struct drover_flow *f);
/* IPv4 header checksum over 20 bytes (0 when valid). */
uint16_t pkt_ipv4_csum(const uint8_t *iph);

/* Run prog_fd once on in; out gets the resulting packet. ifindex: ingress
 * device (0 = loopback default). Returns 0 or -errno; *action = XDP action. */
int pkt_run(int prog_fd, const struct pkt *in, struct pkt *out, uint32_t *action, int ifindex);
/* Run repeat times; *ns = the kernel's average ns per run, out = the
 * packet after the last run. */
int pkt_run_repeat(int prog_fd, const struct pkt *in, uint32_t repeat, int ifindex, struct pkt *out,
                   uint32_t *ns, uint32_t *action);

/* Move this process into a new network namespace with lo up, a veth pair
 * "sc0"/"sc1" (sc0 10.200.0.1/24 + fd00:200::1/64), forwarding on,
 * permanent neighbours 10.200.0.2 / fd00:200::2 at NEXT_HOP_MAC, and routes
 * to the prefixes route_v4/route_v6 ("10.1.0.11/32"; may be NULL) via them.
 * Returns sc0's ifindex or -errno. */
#define PKT_NEXT_HOP_MAC "02:00:00:00:02:02"
int pkt_netns_setup(const char *route_v4, const char *route_v6);
/* Move this process into a mount namespace of its own and mount a bpffs on
 * mkdtemp(root) (a "...XXXXXX" template, filled in): nothing pinned there
 * outlives the test, whatever happens. 0, or the exit code the test should
 * end with (77: no private mount namespace, 1: no bpffs), said on stderr. */
int pkt_bpffs_setup(char *root);
/* Unmount and remove what pkt_bpffs_setup made. */
void pkt_bpffs_teardown(const char *root);
/* Run suite s with a bpffs of its own at root (pkt_bpffs_setup, then the
 * suite, then pkt_bpffs_teardown): the test's exit code (77: no namespace
 * could be made). */
int pkt_bpffs_run(Suite *s, char *root);

/* A wildcard TCP listener on port in this network namespace (what
 * HAProxy's `bind :80` makes; the decap program keeps a SYN local only
 * while one exists). The IPv6 one is v6-only so both families can listen
 * on one port. Returns the socket (the caller closes it) or -errno. */
int pkt_listener(int family, uint16_t port);

#endif
