/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_internal: what config.c (tables, help, parsing) uses of
 * config_value.c (turning option text or JSON into typed values and
 * storing them into targets). Not for other modules: they use config.h.
 */
#ifndef DROVER_CONFIG_INTERNAL_H
#define DROVER_CONFIG_INTERNAL_H

#include <jansson.h>

#include "config.h"

/* One parsed value before it is stored into the target. */
union config_value {
    char *str;
    int64_t i64;
    bool b;
    double d;
    struct config_strlist list;
    enum log_level level;
    uint64_t size;
};

/* "string", "duration", ... and the default metavar ("DURATION"). */
const char *config_type_word(enum config_type t);
const char *config_metavar(const struct config_option *o);

void config_list_free(struct config_strlist *l);
/* Append the comma-separated items of text, trimmed, skipping empty ones.
 * 0 or -ENOMEM. */
int config_list_push_csv(struct config_strlist *l, const char *text);
void config_value_free(enum config_type t, union config_value *v);

/* Parse option text (flag, environment, default) or a config-file value
 * into v. 0, -EINVAL with the reason (without the source) in why, or
 * -ENOMEM. v is owned by the caller (config_value_free). */
int config_value_from_text(const struct config_option *o, const char *text, union config_value *v,
                           char *why, size_t whylen);
int config_value_from_json(const struct config_option *o, const json_t *j, union config_value *v,
                           char *why, size_t whylen);
/* Move v into the option's target (strings and lists change hands). */
void config_value_store(const struct config_option *o, union config_value *v);
/* Clear the target to its unset value (no default given). */
void config_value_store_unset(const struct config_option *o);

#endif
