/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder so the API links; the real implementation follows. */
#include "json_util.h"

#include <errno.h>

#define STUB                                                                                       \
    do {                                                                                           \
        (void)obj, (void)where, (void)field, (void)out, (void)required, (void)err, (void)errlen;   \
        return -ENOSYS;                                                                            \
    } while (0)

int json_get_string(const json_t *obj, const char *where, const char *field, const char **out,
                    bool required, char *err, size_t errlen)
{
    STUB;
}
int json_get_int(const json_t *obj, const char *where, const char *field, int64_t *out, int64_t min,
                 int64_t max, bool required, char *err, size_t errlen)
{
    STUB;
}
int json_get_bool(const json_t *obj, const char *where, const char *field, bool *out, bool required,
                  char *err, size_t errlen)
{
    STUB;
}
int json_get_double(const json_t *obj, const char *where, const char *field, double *out,
                    bool required, char *err, size_t errlen)
{
    STUB;
}
int json_get_object(const json_t *obj, const char *where, const char *field, json_t **out,
                    bool required, char *err, size_t errlen)
{
    STUB;
}
int json_get_array(const json_t *obj, const char *where, const char *field, json_t **out,
                   bool required, char *err, size_t errlen)
{
    STUB;
}
int json_get_string_array(const json_t *obj, const char *where, const char *field, char ***out,
                          size_t *count, bool required, char *err, size_t errlen)
{
    STUB;
}
void json_string_array_free(char **strv)
{
}
json_t *json_path_get(const json_t *obj, const char *path)
{
    return NULL;
}
const char *json_type_desc(const json_t *value)
{
    return "unknown";
}
int json_load_file_strict(const char *path, json_t **out, char *err, size_t errlen)
{
    return -ENOSYS;
}
int json_from_buffer(const char *buf, size_t len, const char *name, json_t **out, char *err,
                     size_t errlen)
{
    return -ENOSYS;
}
