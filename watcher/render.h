/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render: from template data to an installed, checked HAProxy
 * configuration file. Owns the rules that keep a bad configuration away
 * from HAProxy:
 *
 *   - a render error (refused value, missing template) installs nothing;
 *   - the text is written to a private temporary directory and checked
 *     with `haproxy -c -f FILE`; a failing check installs nothing and the
 *     error names the file and HAProxy's first alert lines;
 *   - only then is <config-dir>/<service>.cfg replaced atomically, the
 *     previous content kept as <service>.cfg.prev for render_rollback()
 *     (HAProxy started with `-f <config-dir>` only loads *.cfg);
 *   - an empty text is never installed over an existing file.
 *
 * render_install waits for `haproxy -c` (render subcommands);
 * render_install_async runs the same on libuv's threadpool (the daemon: a
 * check costs ~80 ms even for a tiny file, more for 10,000 servers, and
 * runtime changes must not wait for it, nor for starting it).
 */
#ifndef DROVER_WATCHER_RENDER_H
#define DROVER_WATCHER_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "template.h"

/* Where the watcher installs <service>.cfg and the route maps and
 * crt-lists the configs name, unless --config-dir says otherwise; also
 * where `droverctl config diff` renders them as named. */
#define RENDER_CONFIG_DIR_DEFAULT "/etc/haproxy/drover"

/* Load every DIR/NAME.mustache and DIR/partials/NAME.mustache with the watcher's options
 * (strict variables, unknown partials refused) and check the set.
 * 0 or negative errno, message in err. */
int render_load_templates(const char *dir, struct template_set **out, char *err, size_t errlen);

/* Render template `name` with data into out (appended). 0 or negative
 * errno with "template ... line ... key ..." in err. */
int render_text(const struct template_set *set, const char *name, const json_t *data,
                struct template_buf *out, char *err, size_t errlen);

/* Run a configuration checker (argv[0] looked up in PATH) and wait for it:
 * 0 when it exits 0, else -EINVAL with its output on one line in err
 * ("<command> refused it (exit N): ..."), or the spawn's -errno. */
int render_run_checker(char *const argv[], char *err, size_t errlen);

/* Run `haproxy_bin -c -f path`. 0 when valid; -EINVAL when HAProxy
 * refuses it (its alert lines in err); other negative errno when haproxy
 * could not be run. */
int render_check_file(const char *haproxy_bin, const char *path, char *err, size_t errlen);

/* Where render_install stages a text for `haproxy -c`: one private
 * directory "drover-render.<pid>.<6 random characters>" per check, removed
 * after it. The pid names the process that owns it, so a watcher's start
 * can tell the ones that a process killed during a check left behind. */
#define RENDER_STAGING_DIR    "/tmp"
#define RENDER_STAGING_PREFIX "drover-render."

/* Remove from dir the staging directories (and the configs in them) of
 * processes that are gone: the pid in the name no longer exists, or is
 * ours and ours_too (a daemon's start, before its first check: a restarted
 * container reuses pids). A live other process's directory is kept: its
 * check may be running; names without a pid (an older watcher's) are left
 * alone. Returns how many were removed, or a negative errno when dir
 * cannot be read. */
int render_sweep_staging(const char *dir, bool ours_too);

/* Check text (see top) and install it as config_dir/<name>.cfg.
 * *changed = false (and nothing written) when the installed file already
 * has exactly this text. 0, -EINVAL (render/check refused: err),
 * -ENODATA (empty text), other negative errno on I/O errors. */
int render_install(const char *haproxy_bin, const char *config_dir, const char *name,
                   const char *text, size_t len, bool *changed, char *err, size_t errlen);

/* The same as render_install, run on libuv's threadpool (the check's
 * child process started and waited for there, the install's durable writes
 * there), so the loop keeps serving while it checks and writes (one job
 * per name at a time: the caller waits for cb before the next). cb runs
 * exactly once, on the loop (never from inside this call): status 0 (then
 * changed says whether a new file was installed) or negative errno with err.
 * Returns 0 when started, or a negative errno (cb not called). */
typedef void (*render_install_cb)(void *arg, int status, bool changed, const char *err);
int render_install_async(uv_loop_t *loop, const char *haproxy_bin, const char *config_dir,
                         const char *name, const char *text, size_t len, render_install_cb cb,
                         void *arg);

/* Put config_dir/<name>.cfg.prev back as <name>.cfg (after a failed
 * reload). 0, -ENOENT when there is no previous file, or negative errno. */
int render_rollback(const char *config_dir, const char *name, char *err, size_t errlen);

/* A service removed from KV: move config_dir/<name>.cfg aside to
 * <name>.cfg.removed (rename(2), atomic; an older .removed is replaced;
 * the directory is fsynced) so HAProxy started with `-f <config-dir>` no
 * longer loads it while the operator can still read it. 0, -ENOENT when
 * there is no <name>.cfg (nothing to retire), or negative errno (err). */
int render_retire(const char *config_dir, const char *name, char *err, size_t errlen);

/* Whether "<config dir>/<name>.cfg" exists (dfd: that directory): HAProxy
 * may load it, so the files it names must stay. True when it cannot tell. */
bool render_config_exists(int dfd, const char *name);

/* Read a whole file into a NUL-terminated malloc'd buffer. 0 or -errno. */
int render_read_file(const char *path, char **out, size_t *len);

#endif
