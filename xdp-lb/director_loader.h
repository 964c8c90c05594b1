/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_loader: loads the director and decap BPF objects through their
 * bpftool skeletons, pins maps and programs in the pin directory
 * (director_pin_dir), attaches and detaches XDP, and publishes a
 * director_config into the maps (director_publish).
 *
 * Maps are pinned by name; a later attach (restart, upgrade) reuses the
 * pinned maps, so the watcher's table survives a program reload. Attaching
 * over an XDP program that is not ours (not the one pinned in our
 * directory) is refused with -EEXIST unless force is set. Every error is
 * logged naming the device, map or program and the errno.
 */
#ifndef DROVER_DIRECTOR_LOADER_H
#define DROVER_DIRECTOR_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "director_config.h"
#include "director_publish.h"

enum director_xdp_mode {
    DIRECTOR_MODE_AUTO = 0, /* kernel's choice: native when the driver has it */
    DIRECTOR_MODE_NATIVE,
    DIRECTOR_MODE_GENERIC,
};

struct director_attach_opts {
    const char *dev;
    const char *pin_root; /* NULL = DIRECTOR_PIN_ROOT */
    enum director_xdp_mode mode;
    bool force;
};

int director_loader_attach(const struct director_attach_opts *o, const struct director_config *cfg);
/* Publish cfg (new generation + VIP set) into the pinned maps of dev. */
int director_loader_apply(const struct director_attach_opts *o, const struct director_config *cfg);
int director_loader_detach(const struct director_attach_opts *o);

int decap_loader_attach(const struct director_attach_opts *o, __u16 gue_port);
int decap_loader_detach(const struct director_attach_opts *o);

/* XDP program attached to dev (0 if none) and the id of the program pinned
 * under our directory as pin_name (0 if none). */
int director_loader_prog_ids(const struct director_attach_opts *o, const char *pin_name,
                             __u32 *attached_id, __u32 *ours_id);

#endif
