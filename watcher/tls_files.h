/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_files: the files a definition's TLS makes HAProxy read, made ready
 * before a configuration naming them goes to `haproxy -c`:
 *
 *   - checked: every certificate file of a crt-list (tls_cert_payload:
 *     parses, has its key, key matches) and every CA file of verified
 *     TLS to servers (tls_ca_check). HAProxy refuses these too, but with
 *     its own file names; here the refusal names the definition's field
 *     (`backends[1].server_tls.ca_file: /etc/x.pem: No such file or
 *     directory`), and nothing is checked, written or reloaded.
 *   - written: the crt-list of each TLS frontend,
 *     "<dir>/<service>.crt-lists/<frontend>.<hash>.crtlist"
 *     (snapshot_crt_list_path: named by its content), one line per
 *     certificate (snapshot_crt_list_text), atomically (fsynced).
 *   - removed: the lists of a service that neither the running config
 *     nor the one being installed names; the whole directory of a service
 *     whose config is gone (retired), and, once at start, of every
 *     service with no config that the engine does not serve (left by a
 *     watcher that stopped between the two steps of a retirement).
 *
 * Used by the daemon's engine (before each structural install) and by
 * `drover-watcher render` (into --out DIR).
 */
#ifndef DROVER_WATCHER_TLS_FILES_H
#define DROVER_WATCHER_TLS_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "kv_haproxy.h"

/* Check the certificate and CA files definition d names (generated
 * frontends and backends share their files with the definition's own, so
 * the fields named are always the definition's). 0, -EINVAL or a negative
 * errno of the file (err: "<field>: <file>: <reason>"), -ENOMEM. */
int tls_files_check(const struct kvm_service *d, char *err, size_t errlen);

/* Write the crt-list of every TLS frontend of d into dir whose file does
 * not hold its text yet (atomic_file_write, fsynced; the directory made
 * when missing). *written (may be
 * NULL) counts the files written. 0 or a negative errno (err names the
 * file). */
int tls_files_write_crt_lists(const char *dir, const struct kvm_service *d, size_t *written,
                              char *err, size_t errlen);

/* Remove the crt-lists in "<dir>/<service>.crt-lists" that are not among
 * keep (paths as snapshot_crt_list_path makes them; NULL entries
 * ignored). Returns how many were removed. */
int tls_files_remove_stale(const char *dir, const char *service, const char *const *keep,
                           size_t n_keep);

/* Remove "<dir>/<service>.crt-lists" with the crt-lists in it (and the
 * temporary files atomic_file_write may have left there). Only for a
 * service no configuration HAProxy can load names any more (its
 * <service>.cfg moved aside, durably, or never installed): nothing reads
 * a crt-list but a start or a reload. 0, also when there was no
 * directory; a negative errno with err naming the path (-ENOTEMPTY when a
 * file that is not a crt-list is in it: left as it is). */
int tls_files_remove_service(const char *dir, const char *service, char *err, size_t errlen);

/* Which services the caller still serves or is about to install: their
 * lists stay even while they have no <service>.cfg yet (a first install
 * writes its lists before the config). */
typedef bool (*tls_files_in_use_fn)(void *arg, const char *service);

/* Every "<dir>/<service>.crt-lists" whose <dir>/<service>.cfg does not
 * exist and that in_use does not claim: removed (tls_files_remove_service;
 * a failure is logged). Returns how many directories were removed. */
int tls_files_sweep(const char *dir, tls_files_in_use_fn in_use, void *arg);

/* Temporary files of crt-list writes that a process killed mid-write left
 * in every "<dir>/<service>.crt-lists" (atomic_file_sweep: a live other
 * writer's are kept; this process's too unless ours_too). Returns how many
 * were removed. */
int tls_files_sweep_temps(const char *dir, bool ours_too);

#endif
