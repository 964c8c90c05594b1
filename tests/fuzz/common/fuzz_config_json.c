/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the JSON config file path of config_parse: the input is the file's
 * content, served from a memfd so no disk is touched. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static struct {
    char *addr;
    int64_t port;
    bool verbose;
    int64_t wait_ms;
    double ratio;
    struct config_strlist tags;
    uint64_t size;
} o;

static const struct config_option opts[] = {
    CONFIG_OPT_STRING("consul-addr", &o.addr, "127.0.0.1:8500", "Consul HTTP address"),
    CONFIG_OPT_INT("port", &o.port, "9100", 1, 65535, "port"),
    CONFIG_OPT_BOOL("verbose", &o.verbose, "false", "verbose"),
    CONFIG_OPT_DURATION("wait-min", &o.wait_ms, "200ms", "wait"),
    CONFIG_OPT_DOUBLE("ratio", &o.ratio, "0.5", "ratio"),
    CONFIG_OPT_STRLIST("tag", &o.tags, NULL, "tags"),
    CONFIG_OPT_SIZE("max-body", &o.size, "1MiB", "size"),
    CONFIG_OPT_END,
};

static const struct config_program prog = {.name = "fuzz", .options = opts};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    char err[512];

    if (fd < 0) {
        log_set_stream(fopen("/dev/null", "w"));
        fd = memfd_create("drover-fuzz-config", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        unsetenv("DROVER_CONFIG");
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char *argv[] = {"fuzz", "--config", path, NULL};
    int rc = config_parse(&prog, 3, argv, NULL, err, sizeof(err));
    if (rc == 0) {
        /* invariants the rest of drover relies on */
        if (!o.addr || o.port < 1 || o.port > 65535 || o.wait_ms < 0)
            abort();
        for (size_t i = 0; i < o.tags.count; i++)
            if (!o.tags.items[i])
                abort();
    } else if (err[0] == '\0') {
        abort(); /* every error must say what went wrong */
    }
    config_free(&prog);
    return 0;
}
