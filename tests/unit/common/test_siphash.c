/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "siphash.h"
#include "suite_main.h"

/* SipHash-2-4 outputs for key 00..0f and message 00 01 .. (len-1), as the
 * 8 output bytes in hex (little-endian), cross-checked with
 * `openssl mac -macopt hexkey:000102030405060708090a0b0c0d0e0f
 *  -macopt size:8 SIPHASH`; the 15-byte one is the SipHash paper's example. */
static const struct {
    size_t len;
    const char *hex;
} vectors[] = {
    {0, "310E0EDD47DB6F72"},  {1, "FD67DC93C539F874"},  {7, "37D1018BF50002AB"},
    {8, "6224939A79F5F593"},  {9, "B0E4A90BDF82009E"},  {15, "E545BE4961CA29A1"},
    {16, "DB9BC2577FCC2A3F"}, {63, "724506EB4C328A95"},
};

static uint64_t hex_le64(const char *hex)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], 0};
        v |= (uint64_t)strtoul(byte, NULL, 16) << (8 * i);
    }
    return v;
}

static void fill_key_msg(uint8_t key[16], uint8_t msg[64])
{
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
}

START_TEST(test_reference_vectors)
{
    uint8_t key[16], msg[64];
    fill_key_msg(key, msg);
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        ck_assert_uint_eq(siphash24(key, msg, vectors[i].len), hex_le64(vectors[i].hex));
    ck_assert_uint_eq(siphash24(key, msg, 15), 0xa129ca6149be45e5ULL);
}
END_TEST

START_TEST(test_streaming_matches_one_shot)
{
    uint8_t key[16], msg[64];
    fill_key_msg(key, msg);
    /* every split of a 63-byte message into three pieces at 1..62 */
    for (size_t a = 0; a <= 63; a += 3) {
        for (size_t b = a; b <= 63; b += 5) {
            struct siphash_state st;
            siphash24_init(&st, key);
            siphash24_update(&st, msg, a);
            siphash24_update(&st, msg + a, b - a);
            siphash24_update(&st, msg + b, 63 - b);
            ck_assert_uint_eq(siphash24_final(&st), hex_le64("724506EB4C328A95"));
        }
    }
}
END_TEST

START_TEST(test_key_matters)
{
    uint8_t key[16] = {0}, msg[64];
    uint8_t other[16] = {1};
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    ck_assert_uint_ne(siphash24(key, msg, 8), siphash24(other, msg, 8));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("siphash");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_reference_vectors);
    tcase_add_test(tc, test_streaming_matches_one_shot);
    tcase_add_test(tc, test_key_matters);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
