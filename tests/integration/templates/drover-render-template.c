/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-render-template: test tool. Renders one template of a template
 * folder against a JSON data file, the way drover-watcher does (value
 * filters on, strict variables, unknown partials refused), and writes the
 * configuration to OUT or stdout.
 *
 *   drover-render-template TEMPLATE_DIR NAME DATA.json [OUT]
 *
 * Exit status: 0 rendered, 1 template or data error (one log line naming
 * template, line, column and key), 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "template.h"

int main(int argc, char **argv)
{
    struct template_options opts;
    struct template_set *set = NULL;
    struct template_buf out = {0};
    struct template_error err;
    json_error_t jerr;
    json_t *data = NULL;
    char msg[640];
    int status = 1;

    log_set_component("render-template");
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s TEMPLATE_DIR NAME DATA.json [OUT]\n", argv[0]);
        return 2;
    }
    template_options_init(&opts);
    opts.strict_variables = true;
    if (template_set_new(&opts, &set) < 0) {
        log_error("render: out of memory, nothing written");
        goto out;
    }
    if (template_set_load_dir(set, argv[1], &err) < 0 || template_set_check(set, &err) < 0) {
        log_error("render: %s; nothing written", template_error_format(&err, msg, sizeof(msg)));
        goto out;
    }
    /* NUL is let through here so that the renderer's own check is what
     * refuses it (a KV value may well carry one). */
    data = json_load_file(argv[3], JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!data) {
        log_error("render: %s line %d: bad JSON: %s; nothing written", argv[3], jerr.line,
                  jerr.text);
        goto out;
    }
    if (template_render(set, argv[2], data, &out, &err) < 0) {
        log_error("render: data %s: %s; nothing written", argv[3],
                  template_error_format(&err, msg, sizeof(msg)));
        goto out;
    }
    FILE *f = argc == 5 ? fopen(argv[4], "w") : stdout;
    if (!f) {
        log_error("render: cannot open %s: %s", argv[4], strerror(errno));
        goto out;
    }
    size_t n = fwrite(out.data, 1, out.len, f);
    int rc = f == stdout ? fflush(f) : fclose(f);
    if (n != out.len || rc != 0) {
        log_error("render: writing %s failed", argc == 5 ? argv[4] : "stdout");
        goto out;
    }
    status = 0;
out:
    json_decref(data);
    template_buf_free(&out);
    template_set_free(set);
    return status;
}
