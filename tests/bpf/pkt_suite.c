/* SPDX-License-Identifier: Apache-2.0 */
/* The main() of a BPF test suite that needs a bpffs of its own (kept apart
 * from pkt.c, which bench/director builds without libcheck). */
#include "log.h"
#include "pkt.h"

int pkt_bpffs_run(Suite *s, char *root)
{
    int setup = pkt_bpffs_setup(root);
    if (setup != 0)
        return setup;
    log_set_level(LOGL_WARN);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    pkt_bpffs_teardown(root);
    return failed ? 1 : 0;
}
