/* SPDX-License-Identifier: Apache-2.0 */
#include "pkt.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t client_mac[6] = {0x02, 0, 0, 0, 0, 0xc1};
static const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 0xd1};

static void put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

uint16_t pkt_ipv4_csum(const uint8_t *iph)
{
    uint32_t sum = 0;

    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)(iph[i] << 8 | iph[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static size_t put_eth(uint8_t *b, uint16_t proto, uint16_t vlan)
{
    memcpy(b, our_mac, 6);
    memcpy(b + 6, client_mac, 6);
    if (vlan) {
        put16(b + 12, 0x8100);
        put16(b + 14, vlan);
        put16(b + 16, proto);
        return 18;
    }
    put16(b + 12, proto);
    return 14;
}

/* IP header for l4len bytes of payload; returns its length. */
static size_t put_ip(uint8_t *b, uint8_t family, uint8_t proto, const char *src, const char *dst,
                     size_t l4len)
{
    if (family == DROVER_AF_INET) {
        memset(b, 0, 20);
        b[0] = 0x45;
        put16(b + 2, (uint16_t)(20 + l4len));
        b[8] = 64;
        b[9] = proto;
        inet_pton(AF_INET, src, b + 12);
        inet_pton(AF_INET, dst, b + 16);
        put16(b + 10, pkt_ipv4_csum(b));
        return 20;
    }
    memset(b, 0, 40);
    b[0] = 0x60;
    put16(b + 4, (uint16_t)l4len);
    b[6] = proto;
    b[7] = 64;
    inet_pton(AF_INET6, src, b + 8);
    inet_pton(AF_INET6, dst, b + 24);
    return 40;
}

static size_t put_l4(uint8_t *b, const struct pkt_spec *s)
{
    size_t hl = s->proto == IPPROTO_TCP ? 20 : 8;

    memset(b, 0, hl + s->payload);
    put16(b, s->sport);
    put16(b + 2, s->dport);
    if (s->proto == IPPROTO_TCP) {
        b[12] = 5 << 4;
        b[13] = s->tcp_flags;
        put16(b + 14, 65535);
    } else {
        put16(b + 4, (uint16_t)(8 + s->payload));
    }
    for (size_t i = 0; i < s->payload; i++)
        b[hl + i] = (uint8_t)('a' + i % 26);
    return hl + s->payload;
}

size_t pkt_build(struct pkt *p, const struct pkt_spec *s)
{
    size_t l4len = (s->proto == IPPROTO_TCP ? 20 : 8) + s->payload;
    size_t off = put_eth(p->b, s->family == DROVER_AF_INET ? 0x0800 : 0x86dd, s->vlan);
    size_t ip = off;

    off += put_ip(p->b + off, s->family, s->proto, s->src, s->dst, l4len);
    off += put_l4(p->b + off, s);
    p->len = off;
    return ip;
}

void pkt_build_icmp_ptb(struct pkt *p, const char *router, const char *to, const struct pkt_spec *q)
{
    uint8_t quoted[128];
    size_t ql = put_ip(quoted, q->family, q->proto, q->src, q->dst,
                       (q->proto == IPPROTO_TCP ? 20 : 8) + q->payload);
    ql += put_l4(quoted + ql, q);
    if (ql > 8 + (q->family == DROVER_AF_INET ? 20 : 40))
        ql = 8 + (q->family == DROVER_AF_INET ? 20 : 40); /* IP header + 8 bytes */

    size_t off = put_eth(p->b, q->family == DROVER_AF_INET ? 0x0800 : 0x86dd, q->vlan);
    off += put_ip(p->b + off, q->family,
                  q->family == DROVER_AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6, router, to, 8 + ql);
    uint8_t *ic = p->b + off;
    memset(ic, 0, 8);
    if (q->family == DROVER_AF_INET) {
        ic[0] = 3; /* dest unreachable */
        ic[1] = 4; /* fragmentation needed */
        put16(ic + 6, 1400);
    } else {
        ic[0] = 2; /* packet too big */
        ic[6] = 0x05;
        ic[7] = 0x78; /* mtu 1400 */
    }
    memcpy(ic + 8, quoted, ql);
    p->len = off + 8 + ql;
}

void pkt_flow(const struct pkt_spec *s, struct drover_flow *f)
{
    memset(f, 0, sizeof(*f));
    f->family = s->family;
    f->proto = s->proto;
    f->sport = htons(s->sport);
    f->dport = htons(s->dport);
    inet_pton(s->family == DROVER_AF_INET ? AF_INET : AF_INET6, s->src, f->src);
    inet_pton(s->family == DROVER_AF_INET ? AF_INET : AF_INET6, s->dst, f->dst);
}

int pkt_run(int prog_fd, const struct pkt *in, struct pkt *out, uint32_t *action, int ifindex)
{
    struct xdp_md ctx = {.data_end = (uint32_t)in->len, .ingress_ifindex = (uint32_t)ifindex};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->b, .data_size_in = (uint32_t)in->len,
                .data_out = out->b, .data_size_out = sizeof(out->b), .repeat = 1);

    if (ifindex) {
        opts.ctx_in = &ctx;
        opts.ctx_size_in = sizeof(ctx);
    }
    if (bpf_prog_test_run_opts(prog_fd, &opts) < 0)
        return -errno;
    out->len = opts.data_size_out;
    *action = opts.retval;
    return 0;
}

int pkt_run_repeat(int prog_fd, const struct pkt *in, uint32_t repeat, int ifindex, struct pkt *out,
                   uint32_t *ns, uint32_t *action)
{
    struct xdp_md ctx = {.data_end = (uint32_t)in->len, .ingress_ifindex = (uint32_t)ifindex};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->b, .data_size_in = (uint32_t)in->len,
                .data_out = out->b, .data_size_out = sizeof(out->b), .repeat = repeat);

    if (ifindex) {
        opts.ctx_in = &ctx;
        opts.ctx_size_in = sizeof(ctx);
    }
    if (bpf_prog_test_run_opts(prog_fd, &opts) < 0)
        return -errno;
    out->len = opts.data_size_out;
    *ns = opts.duration;
    *action = opts.retval;
    return 0;
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "pkt_netns_setup: '%s' failed (%d)\n", cmd, rc);
    return rc == 0 ? 0 : -EIO;
}

int pkt_netns_setup(const char *route_v4, const char *route_v6)
{
    char cmd[256];

    if (unshare(CLONE_NEWNET) < 0)
        return -errno;
    if (sh("ip link set lo up") || sh("ip link add sc0 type veth peer name sc1") ||
        sh("ip link set sc0 up") || sh("ip link set sc1 up") ||
        sh("ip addr add 10.200.0.1/24 dev sc0") || sh("ip addr add fd00:200::1/64 dev sc0 nodad") ||
        sh("sysctl -qw net.ipv4.ip_forward=1") || sh("sysctl -qw net.ipv6.conf.all.forwarding=1") ||
        sh("ip neigh replace 10.200.0.2 lladdr " PKT_NEXT_HOP_MAC " dev sc0 nud permanent") ||
        sh("ip neigh replace fd00:200::2 lladdr " PKT_NEXT_HOP_MAC " dev sc0 nud permanent"))
        return -EIO;
    if (route_v4) {
        snprintf(cmd, sizeof(cmd), "ip route add %s via 10.200.0.2 dev sc0", route_v4);
        if (sh(cmd))
            return -EIO;
    }
    if (route_v6) {
        snprintf(cmd, sizeof(cmd), "ip -6 route add %s via fd00:200::2 dev sc0", route_v6);
        if (sh(cmd))
            return -EIO;
    }
    int idx = (int)if_nametoindex("sc0");
    return idx > 0 ? idx : -ENODEV;
}

int pkt_bpffs_setup(char *root)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        fprintf(stderr, "cannot make a private mount namespace: %s\n", strerror(errno));
        return 77;
    }
    if (!mkdtemp(root) || mount("bpf", root, "bpf", 0, "mode=0700") < 0) {
        fprintf(stderr, "cannot mount a bpffs on %s: %s\n", root, strerror(errno));
        return 1;
    }
    return 0;
}

void pkt_bpffs_teardown(const char *root)
{
    umount2(root, MNT_DETACH);
    rmdir(root);
}

int pkt_listener(int family, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    int one = 1, fd = socket(family, SOCK_STREAM, 0);

    if (fd < 0)
        return -errno;
    if (family == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (void *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        sl = sizeof(*a);
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
            goto fail;
    }
    if (bind(fd, (void *)&ss, sl) < 0 || listen(fd, 4) < 0)
        goto fail;
    return fd;
fail:;
    int err = errno;
    close(fd);
    return -err;
}
