/* SPDX-License-Identifier: Apache-2.0 */
#include "version.h"

/* Both are set by common/CMakeLists.txt on this file only, so a new
 * revision recompiles one file. */
#ifndef DROVER_VERSION
#error "DROVER_VERSION must be defined by the build"
#endif
#ifndef DROVER_REVISION
#define DROVER_REVISION ""
#endif

const char *drover_version(void)
{
    return DROVER_VERSION;
}

const char *drover_revision(void)
{
    return DROVER_REVISION;
}

void drover_version_print(const char *program, FILE *out)
{
    const char *rev = drover_revision();

    fprintf(out, "%s %s", program && *program ? program : "drover", drover_version());
    if (*rev)
        fprintf(out, " (git %s)", rev);
    fputc('\n', out);
}
