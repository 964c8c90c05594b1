/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render_files: the files a service's configuration names next to itself,
 * written into a directory the caller picks:
 *
 *   - the route map of each frontend a class selector routes into,
 *     "<dir>/<service>.<frontend>.map" (snapshot_map_path / _text);
 *   - the crt-list of each TLS frontend,
 *     "<dir>/<service>.crt-lists/<frontend>.<hash>.crtlist" (tls_files.h).
 *
 * A configuration rendered with snapshot_render_opts.map_dir = dir names
 * exactly these files, so `haproxy -c` checks it against the maps and
 * lists it would read, with their SNI filters and ALPN options, without
 * anything written into a live config dir. Used by `drover-watcher render`
 * (into --out DIR, or a private directory for --diff) and by `droverctl
 * config check` (its private directory). The daemon writes the same files
 * on its own path: maps through the runtime API and the file writer
 * (haproxy_engine_maps.c), crt-lists before a reload (tls_files.h). The
 * daemon removes a retired service's maps, and at start those no service
 * claims, with render_files_remove_maps; those of frontends a served
 * service no longer has, once its new config is installed, with
 * render_files_prune_maps.
 */
#ifndef DROVER_WATCHER_RENDER_FILES_H
#define DROVER_WATCHER_RENDER_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "file_writer.h"
#include "kv_haproxy.h"
#include "tls_files.h"

/* Whether d's configuration names any such file (its text then depends
 * on the directory it is rendered for). */
bool render_files_any(const struct kvm_service *d);

/* Write the route maps and crt-lists of d into dir (atomic_file_write;
 * the crt-lists directory made when missing). 0 or a negative errno with
 * err naming the file. */
int render_files_write(const char *dir, const struct kvm_service *d, char *err, size_t errlen);

/* Remove what render_files_write wrote for d from dir (a private
 * directory about to be removed). */
void render_files_remove(const char *dir, const struct kvm_service *d);

/* Remove the route maps "<dir>/<service>.<frontend>.map" of service
 * (NULL: of every service) that nothing claims: no service the name can
 * belong to has a <dir>/<owner>.cfg (HAProxy may load it) or is claimed by
 * in_use (served, or about to be). Names may hold dots, so every reading
 * counts: "a.b.c.map" is a's frontend "b.c" or a.b's frontend "c". Each
 * removal is made durable through w (file_writer_remove: a write or sync
 * of it still queued cannot put it back or fail on it). Returns how many
 * were removed; a failure is logged with the path and left in place. */
int render_files_remove_maps(const char *dir, const char *service, tls_files_in_use_fn in_use,
                             void *arg, struct file_writer *w);

/* Whether the route map at path stays. */
typedef bool (*render_files_keep_fn)(void *arg, const char *path);

/* Remove the route maps of service (a served one) that keep does not
 * keep: those of frontends its installed config no longer names. A name
 * that another service can claim (by the rule above) stays. Removed, and
 * made durable, as render_files_remove_maps does; returns how many. */
int render_files_prune_maps(const char *dir, const char *service, render_files_keep_fn keep,
                            void *keep_arg, tls_files_in_use_fn in_use, void *arg,
                            struct file_writer *w);

/* Whether paths a and b end in the same file name. */
bool render_files_same_name(const char *a, const char *b);

/* Whether d names the route map at path (one of its frontends' maps,
 * compared by file name: the directory may be spelt differently). */
bool render_files_names_map(const struct kvm_service *d, const char *path);

/* The route maps of d's service in dir that installing d would prune (by
 * the rule of render_files_prune_maps, keeping those d names): fn is
 * called with each path; nothing is removed (`render --diff`). Returns
 * how many calls returned true. */
int render_files_each_map_to_prune(const char *dir, const struct kvm_service *d,
                                   bool (*fn)(void *fn_arg, const char *path), void *fn_arg);

#endif
