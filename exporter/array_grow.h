/* SPDX-License-Identifier: Apache-2.0 */
/*
 * array_grow: the one growth rule for the exporter's dynamic arrays
 * (KV maps, op lists, build state): double from 64 elements.
 */
#ifndef DROVER_EXPORTER_ARRAY_GROW_H
#define DROVER_EXPORTER_ARRAY_GROW_H

#include <errno.h>
#include <stdlib.h>

/* Make room for element n of an array of `size`-byte elements whose
 * capacity is *cap. 0 or -ENOMEM (the array is unchanged then). */
static inline int array_grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, c * size);
    if (!p)
        return -ENOMEM;
    *v = p;
    *cap = c;
    return 0;
}

#endif
