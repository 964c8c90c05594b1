/* SPDX-License-Identifier: Apache-2.0 */
/* hex: digit values, exact-length decoding, lower-case encoding. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "hex.h"
#include "suite_main.h"

START_TEST(test_digit_value)
{
    const char *digits = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        ck_assert_int_eq(hex_digit_value(digits[i]), i);
        if (i >= 10)
            ck_assert_int_eq(hex_digit_value((char)(digits[i] - 'a' + 'A')), i);
    }
    /* every other byte is refused, NUL and high bytes included */
    for (int c = -128; c < 128; c++) {
        if (!strchr("0123456789abcdefABCDEF", c) || c == 0)
            ck_assert_msg(hex_digit_value((char)c) == -1, "accepted byte %d", c);
    }
}
END_TEST

START_TEST(test_decode)
{
    uint8_t out[16];
    const uint8_t want[4] = {0x00, 0x1f, 0xa0, 0xff};

    ck_assert_int_eq(hex_decode("001fA0fF", 8, out, 4), 0);
    ck_assert_mem_eq(out, want, 4);
    ck_assert_int_eq(hex_decode("000102030405060708090a0b0c0d0e0f", 32, out, 16), 0);
    for (int i = 0; i < 16; i++)
        ck_assert_uint_eq(out[i], i);
    ck_assert_int_eq(hex_decode("", 0, out, 0), 0);
    /* wrong length, odd length, non-digits */
    ck_assert_int_eq(hex_decode("001f", 4, out, 4), -EINVAL);
    ck_assert_int_eq(hex_decode("001fa", 5, out, 2), -EINVAL);
    ck_assert_int_eq(hex_decode("0g", 2, out, 1), -EINVAL);
    ck_assert_int_eq(hex_decode(" 0", 2, out, 1), -EINVAL);
    ck_assert_int_eq(hex_decode("0x", 2, out, 1), -EINVAL);
}
END_TEST

START_TEST(test_encode)
{
    const uint8_t data[5] = {0x00, 0x1f, 0xa0, 0xff, 0x5c};
    uint8_t back[5];
    char out[11];

    memset(out, 'x', sizeof(out));
    hex_encode(data, sizeof(data), out);
    ck_assert_str_eq(out, "001fa0ff5c");
    ck_assert_int_eq(hex_decode(out, strlen(out), back, sizeof(back)), 0);
    ck_assert_mem_eq(back, data, sizeof(data));
    hex_encode(data, 0, out);
    ck_assert_str_eq(out, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hex");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_digit_value);
    tcase_add_test(tc, test_decode);
    tcase_add_test(tc, test_encode);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
