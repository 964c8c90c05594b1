/* SPDX-License-Identifier: Apache-2.0 */
/*
 * version: the one place drover's version comes from. The project version
 * is CMake's project(VERSION); the revision is `git describe --always
 * --dirty --tags` of the source tree when it was configured ("" when the
 * tree is not a git checkout or git is missing). Every program prints both
 * for --version (common/config) and every daemon exports them as
 * drover_build_info{version,revision} 1 (common/metrics).
 */
#ifndef DROVER_VERSION_H
#define DROVER_VERSION_H

#include <stdio.h>

/* "0.1.0": static storage. */
const char *drover_version(void);
/* "5d356b0-dirty", "v0.1.0-3-g5d356b0" or "": static storage. */
const char *drover_revision(void);
/* One line "PROGRAM VERSION (git REVISION)\n" (no parenthesis without a
 * revision), as --version prints it. */
void drover_version_print(const char *program, FILE *out);

#endif
