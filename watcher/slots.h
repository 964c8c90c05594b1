/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slots: stable placement of a backend's servers into HAProxy server slots
 * (slot1..slotN, rendered by haproxy-templates/partials/backend.mustache)
 * and the minimal runtime-API commands that move HAProxy from its live
 * state to a placement. Pure: no I/O, no clock, no globals, so every rule
 * is unit-tested (tests/unit/watcher/test_slots.c).
 *
 * Placement (slots_assign):
 *   - a server (identified by its key) that stays keeps its slot, even if
 *     its address, port or weight changed;
 *   - a removed server frees its slot;
 *   - a new server takes the lowest free slot (new servers in key order,
 *     so equal inputs give equal placements);
 *   - when more servers are desired than there are slots, the ones that
 *     fit are placed (kept servers first) and *need_slots tells the caller
 *     how many slots to render with a reload (slots_grow_target).
 *
 * Runtime diff (slots_diff): see the comment there. Mass-removal guard
 * (slots_guard): see the comment there and docs/watcher.md.
 */
#ifndef DROVER_WATCHER_SLOTS_H
#define DROVER_WATCHER_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slot names are SLOTS_NAME_PREFIX followed by the 1-based index. */
#define SLOTS_NAME_PREFIX "slot"
#define SLOTS_MAX         65536
/* Longest server key (e.g. "node-a@10.0.0.5:30080", a static name). */
#define SLOTS_KEY_MAX 255

/* One desired server. Strings are owned by whoever owns the struct: the
 * caller for slots_assign's input, the assignment for its slots. */
struct slot_server {
    char *key;     /* identity; stable across address changes of static servers */
    char *address; /* canonical IPv4/IPv6 text, no brackets */
    uint16_t port;
    int weight;  /* 0..256 */
    bool backup; /* slots_assign_zoned: place in the backup pool */
};

struct slot_entry {
    bool used;
    struct slot_server srv; /* meaningful when used */
};

/* Placement of one backend: slots[i] is HAProxy server "slot<i+1>". */
struct slot_assignment {
    size_t nslots;
    struct slot_entry *slots;
};

void slot_assignment_init(struct slot_assignment *a);
void slot_assignment_free(struct slot_assignment *a);
/* Deep copy (dst must be initialised or freed); 0 or -ENOMEM. */
int slot_assignment_copy(struct slot_assignment *dst, const struct slot_assignment *src);
/* Number of used slots. */
size_t slot_assignment_used(const struct slot_assignment *a);
/* Slot index holding key, or -1. */
long slot_assignment_find(const struct slot_assignment *a, const char *key);

/* Write "slot<index+1>" into buf; 0 or -ENOSPC. */
int slots_name(size_t index, char *buf, size_t len);
/* Parse "slot<k>" (k >= 1, no leading zero) to index k-1; 0 or -EINVAL. */
int slots_parse_name(const char *name, size_t *index);

/*
 * Place `desired` (n servers, unique keys: a duplicate key is -EINVAL) into
 * nslots slots, starting from prev (NULL = nothing placed yet; prev may have
 * another slot count: servers in slots beyond nslots are placed anew).
 * out must be initialised (slot_assignment_init) and is replaced.
 * *need_slots is 0 when everything fits, else slots_grow_target(n).
 * Returns 0, -EINVAL (duplicate/empty key, bad weight, nslots > SLOTS_MAX)
 * or -ENOMEM; on error out is left empty.
 */
int slots_assign(const struct slot_assignment *prev, const struct slot_server *desired, size_t n,
                 size_t nslots, struct slot_assignment *out, size_t *need_slots);

/*
 * Zone-aware placement: two pools of nslots/2 slots (nslots rounded up to
 * even), the first for servers with !backup (the proxy host's zone), the
 * second for backups (rendered `backup`). Each pool is placed by the rules
 * of slots_assign, starting from the same half of prev (prev's own
 * halves: a server keeps its position in its pool; one that changed pool
 * moves). out->nslots is even; *need_slots is 0 or twice the larger pool's
 * slots_grow_target. Same returns as slots_assign.
 */
int slots_assign_zoned(const struct slot_assignment *prev, const struct slot_server *desired,
                       size_t n, size_t nslots, struct slot_assignment *out, size_t *need_slots);
/* First slot index of the backup pool of a zone-aware placement. */
size_t slots_backup_from(size_t nslots);

/* Growth policy when a backend needs `needed` servers: the next power of
 * two that leaves at least 25 % headroom (needed + ceil(needed/4)), at
 * least SLOTS_GROW_MIN, at most SLOTS_MAX. So 16 -> 32, 25 -> 32,
 * 26 -> 64, 100 -> 128: a growth reload buys room for many more adds. */
#define SLOTS_GROW_MIN 8
size_t slots_grow_target(size_t needed);

/* ---- live state, as parsed from `show servers state` ---------------- */

/* srv_admin_state bits (HAProxy 2.6 enum srv_admin). A server written
 * `disabled` in the config starts with FMAINT|CMAINT; CMAINT only records
 * the keyword and stays set after `state ready` (or an agent `ready`)
 * cleared FMAINT, so it does not count as maintenance (seen with 2.6.12,
 * checked in tests/integration/watcher-runtime). */
#define SLOTS_ADMF_FMAINT 0x01
#define SLOTS_ADMF_IMAINT 0x02
#define SLOTS_ADMF_CMAINT 0x04
#define SLOTS_ADMF_FDRAIN 0x08
#define SLOTS_ADMF_IDRAIN 0x10
#define SLOTS_ADMF_RMAINT 0x20
#define SLOTS_ADMF_MAINT  0x23 /* any of these: in maintenance */
#define SLOTS_ADMF_DRAIN  0x18
/* srv_agent_state / srv_check_state bits (HAProxy CHK_ST_*). */
#define SLOTS_CHK_CONFIGURED 0x02
#define SLOTS_CHK_ENABLED    0x04

/* One server line of `show servers state`. */
struct slot_live {
    char name[128];
    char address[64]; /* as HAProxy prints it (srv_addr) */
    uint16_t port;
    int op_state;   /* 0 stopped, 1 starting, 2 running, 3 stopping */
    unsigned admin; /* SLOTS_ADMF_* */
    int uweight, iweight;
    unsigned agent_state; /* SLOTS_CHK_* */
};

/*
 * Rebuild a placement from what HAProxy runs, for a watcher that starts
 * (or lost track) while HAProxy keeps serving: every live slot (below
 * nslots) whose address:port equals a desired server's is given to that
 * server (first match wins; addresses compared in canonical form), so the
 * following slots_assign(prev = this) moves nothing that already serves.
 * Slots our own free-slot mark (FMAINT with the agent disabled) are not
 * adopted. out must be initialised and is replaced. 0, -EINVAL (nslots >
 * SLOTS_MAX) or -ENOMEM.
 */
int slots_adopt(const struct slot_live *live, size_t n_live, const struct slot_server *desired,
                size_t n, size_t nslots, struct slot_assignment *out);

/* One runtime-API command for a slot (without the trailing newline). */
#define SLOTS_CMD_MAX 320
struct slot_cmd {
    size_t slot; /* index */
    char text[SLOTS_CMD_MAX];
};

struct slot_cmds {
    struct slot_cmd *v;
    size_t n, cap;
};
void slot_cmds_free(struct slot_cmds *c);

/*
 * The commands that bring the live servers of `backend` to assignment `a`,
 * appended to out. applied: what this watcher last applied successfully to
 * the backend (NULL after a start or a reload it did not follow).
 *
 *   occupied slot: `set server B/S addr A port P` if the live address or
 *     port differs (preceded by the same with another port when the live
 *     address is 0.0.0.0/:: and the live port is already P: a slot rendered
 *     free at 0.0.0.0:0 whose port a state file restored is still in
 *     HAProxy's port-mapping mode, which only a port change ends). The server is a "new occupant"
 * when the slot's agent is disabled (our mark of a free slot), or applied held another key (or
 *     nothing) there, or (applied == NULL) its live address differs. For a new occupant: `set
 * server B/S weight W` if the live uweight differs, `enable agent B/S` if the agent is not enabled,
 * then `set server B/S state ready` if it is in maintenance or drain. For a staying occupant, admin
 * state belongs to the agent-checker (its `drain`/`maint` use the same flags) and is left alone,
 * and the weight is set only when it differs from the weight last applied (or from the live uweight
 * when applied does not know the server): agent `N%` replies rewrite uweight, and comparing with it
 * would undo them on every apply. free slot: `disable agent B/S` (so an agent `ready` cannot bring
 * the empty slot back) if it is enabled, then `set server B/S state maint` if it is not in
 * maintenance. Address and weight stay as they are.
 *
 * Commands are ordered by slot. Live servers whose names are not slots, and
 * slots with no live server (the config has fewer slots than a): the latter
 * are -ENOENT, since only a reload can create them. Every value written is
 * checked with haproxy_value (name, ip, port, weight): -EINVAL names the
 * bad value in err. Returns 0, -EINVAL, -ENOENT or -ENOMEM.
 */
int slots_diff(const char *backend, const struct slot_assignment *a,
               const struct slot_assignment *applied, const struct slot_live *live, size_t n_live,
               struct slot_cmds *out, char *err, size_t errlen);

/*
 * Mass-removal guard. active = servers of the backend now carrying traffic
 * (occupied in what was last applied); removed = how many of them the new
 * placement drops (a changed key counts as a removal, an address change of
 * a kept key does not).
 *
 * The change is held when removed > max_share * active, i.e. more than the
 * share would go at once. Tiny backends: with active = 1 losing its only
 * server, 1 > 0.5 holds; active = 2 losing one does not (1 > 1 is false),
 * losing both does. A backend going to zero servers is always held (even
 * with max_share >= 1) unless forced, because an empty backend is the
 * classic symptom of a broken source of truth. active = 0 never holds.
 * max_share < 0 or > 1 is treated as 1; NaN as the default 0.5.
 * Returns true when the change must be held; *reason (static text) says why.
 */
#define SLOTS_DEFAULT_MAX_REMOVAL_SHARE 0.5
struct slots_guard_result {
    bool hold;
    size_t active, removed;
    const char *reason;
};
struct slots_guard_result slots_guard(size_t active, size_t removed, size_t remaining,
                                      double max_share, bool forced);

/* Count removals between two placements (keys in applied missing from a). */
size_t slots_count_removed(const struct slot_assignment *applied, const struct slot_assignment *a);

#endif
