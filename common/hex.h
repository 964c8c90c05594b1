/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hex: bytes to and from hexadecimal text, for keys written in config and
 * KV (the director hash key), digests shown to people or compared by
 * value (HMAC signatures, record hashes) and %-escapes. Output is lower
 * case; input takes either case.
 */
#ifndef DROVER_HEX_H
#define DROVER_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Value 0..15 of one hex digit, or -1. */
int hex_digit_value(char c);

/*
 * Exactly 2 * n hex digits of text[0..textlen) into out[0..n): 0, or
 * -EINVAL when textlen != 2 * n or a character is not a hex digit (out
 * may then be partly written).
 */
int hex_decode(const char *text, size_t textlen, uint8_t *out, size_t n);

/* n bytes into 2 * n lower-case digits and a NUL: out has 2 * n + 1 bytes. */
void hex_encode(const void *data, size_t n, char *out);

#endif
