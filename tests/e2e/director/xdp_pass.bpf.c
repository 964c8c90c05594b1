// SPDX-License-Identifier: Apache-2.0
/*
 * xdp_pass: attached by the e2e test to the router's veth ends. A veth only
 * receives XDP_TX/redirected frames from its peer when it runs NAPI, which
 * it does with an XDP program attached (GRO alone was not enough here).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int drover_xdp_pass(struct xdp_md *ctx)
{
    return XDP_PASS;
}
