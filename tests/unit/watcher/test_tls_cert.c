/* SPDX-License-Identifier: Apache-2.0 */
/* tls_cert: certificate files checked before `set ssl cert`, and the
 * payload made of them. Certificates are made here with OpenSSL (EC keys,
 * self-signed), so the cases need no files. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_cert.h"

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k);
    return k;
}

static X509 *new_cert(EVP_PKEY *k, const char *cn)
{
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
    return x;
}

/* PEM text of cert then key (key_pass: encrypt the key); caller frees. */
static char *pem_of(X509 *x, EVP_PKEY *k, const char *key_pass)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
    ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, key_pass ? EVP_aes_128_cbc() : NULL,
                                              (unsigned char *)key_pass,
                                              key_pass ? (int)strlen(key_pass) : 0, NULL, NULL),
                     1);
    long n = BIO_get_mem_data(b, &data);
    out = strndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

static int check(const char *pem, char **payload, struct tls_cert_info *info, char *err)
{
    return tls_cert_payload(pem, strlen(pem), payload, info, err, 256);
}

START_TEST(test_good_cert_and_payload)
{
    EVP_PKEY *k = new_key();
    X509 *x = new_cert(k, "shop.example.com");
    char *pem = pem_of(x, k, NULL), *payload = NULL, err[256] = "";
    struct tls_cert_info info;
    ck_assert_int_eq(check(pem, &payload, &info, err), 0);
    /* the PEM ends with a newline; the payload does not (the runtime
     * client adds the empty line that ends it) */
    ck_assert_uint_eq(strlen(payload), strlen(pem) - 1);
    ck_assert_int_eq(strncmp(payload, pem, strlen(payload)), 0);
    ck_assert_ptr_nonnull(strstr(info.subject, "CN=shop.example.com"));
    ck_assert_uint_eq(strlen(info.sha1), 40);
    ck_assert_str_ne(info.not_after, "");

    /* the fingerprint is SHA-1 of the DER certificate, as HAProxy shows it */
    unsigned char md[20];
    unsigned int mdlen = 0;
    char hex[41];
    X509_digest(x, EVP_sha1(), md, &mdlen);
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02X", md[i]);
    ck_assert_str_eq(info.sha1, hex);
    free(payload);
    free(pem);
    X509_free(x);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_crlf_and_blank_lines_dropped)
{
    EVP_PKEY *k = new_key();
    X509 *x = new_cert(k, "a");
    char *pem = pem_of(x, k, NULL), *payload = NULL, err[256];
    size_t n = strlen(pem);
    char *messy = malloc(2 * n + 8), *w = messy;
    w = stpcpy(w, "\r\n\n");
    for (size_t i = 0; i < n; i++) {
        if (pem[i] == '\n')
            *w++ = '\r';
        *w++ = pem[i];
        if (pem[i] == '\n' && strncmp(pem + i + 1, "-----BEGIN PRIVATE", 18) == 0)
            w = stpcpy(w, "\r\n\r\n");
    }
    strcpy(w, "\n\n");
    ck_assert_int_eq(check(messy, &payload, NULL, err), 0);
    ck_assert_ptr_null(strchr(payload, '\r'));
    ck_assert_ptr_null(strstr(payload, "\n\n"));
    ck_assert_int_ne(payload[0], '\n');
    pem[n - 1] = '\0';
    ck_assert_str_eq(payload, pem);
    free(payload);
    free(messy);
    free(pem);
    X509_free(x);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_refused)
{
    EVP_PKEY *k1 = new_key(), *k2 = new_key();
    X509 *x1 = new_cert(k1, "one");
    char *mismatch_key = pem_of(x1, k2, NULL), *encrypted = pem_of(x1, k1, "secret");
    char *good = pem_of(x1, k1, NULL), *payload = (char *)1, err[256];
    char *cert_only = strndup(good, (size_t)(strstr(good, "-----BEGIN PRIVATE") - good));
    struct {
        const char *pem;
        const char *why;
    } cases[] = {
        {"", "no PEM certificate"},
        {"-----BEGIN CERTIFICATE-----\nbm90\n-----END CERTIFICATE-----\n", "no PEM certificate"},
        {cert_only, "no unencrypted PEM private key"},
        {encrypted, "no unencrypted PEM private key"},
        {mismatch_key, "does not match"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(check(cases[i].pem, &payload, NULL, err), -EINVAL);
        ck_assert_ptr_null(payload);
        ck_assert_msg(strstr(err, cases[i].why), "case %zu: %s", i, err);
    }
    /* a NUL byte, and a file above the limit */
    ck_assert_int_eq(tls_cert_payload(good, strlen(good) + 1, &payload, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
    ck_assert_int_eq(
        tls_cert_payload(good, TLS_CERT_MAX_BYTES + 1, &payload, NULL, err, sizeof(err)), -EINVAL);
    free(cert_only);
    free(good);
    free(encrypted);
    free(mismatch_key);
    X509_free(x1);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls_cert");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_good_cert_and_payload);
    tcase_add_test(tc, test_crlf_and_blank_lines_dropped);
    tcase_add_test(tc, test_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
