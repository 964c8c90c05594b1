/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_cert: check a PEM certificate file and make the `set ssl cert`
 * payload of it (tls_cert.h).
 */
#include "tls_cert.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "errmsg.h"

/* Never ask for a passphrase (OpenSSL's default callback reads the
 * terminal): an encrypted key is refused, HAProxy could not load it
 * either. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static void describe(X509 *x, struct tls_cert_info *info)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    memset(info, 0, sizeof(*info));
    if (X509_digest(x, EVP_sha1(), md, &mdlen) == 1 && mdlen * 2 < sizeof(info->sha1))
        for (unsigned int i = 0; i < mdlen; i++)
            snprintf(info->sha1 + 2 * i, 3, "%02X", md[i]);
    X509_NAME_oneline(X509_get_subject_name(x), info->subject, (int)sizeof(info->subject));
    BIO *b = BIO_new(BIO_s_mem());
    if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
        int n = BIO_read(b, info->not_after, (int)sizeof(info->not_after) - 1);
        info->not_after[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

/* The payload: pem's lines without CR and empty lines (an empty line ends
 * a runtime API payload), joined by LF, no trailing LF. */
static char *payload_of(const char *pem, size_t len)
{
    char *out = malloc(len + 1), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = pem[i];
        if (c == '\r')
            continue;
        if (c == '\n' && (w == out || w[-1] == '\n'))
            continue;
        *w++ = c;
    }
    while (w > out && w[-1] == '\n')
        w--;
    *w = '\0';
    return out;
}

/* What every PEM file must be before OpenSSL sees it: text (no NUL, which
 * would end it early for HAProxy) of at most max bytes. */
static int check_text(const char *pem, size_t len, size_t max, char *err, size_t errlen)
{
    if (len > max) {
        errmsg_set(err, errlen, "%zu bytes, more than the %zu accepted", len, max);
        return -EINVAL;
    }
    if (memchr(pem, '\0', len)) {
        errmsg_set(err, errlen, "contains a NUL byte: not a PEM file");
        return -EINVAL;
    }
    return 0;
}

int tls_cert_payload(const char *pem, size_t len, char **payload, struct tls_cert_info *info,
                     char *err, size_t errlen)
{
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    BIO *b = NULL;
    int rc = -EINVAL;

    *payload = NULL;
    if (check_text(pem, len, TLS_CERT_MAX_BYTES, err, errlen) < 0)
        return -EINVAL;
    if (!(b = BIO_new_mem_buf(pem, (int)len)) ||
        !(x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL))) {
        errmsg_set(err, errlen, "no PEM certificate that parses");
        goto out;
    }
    BIO_free(b);
    /* the key may come before or after the certificates: read from the top */
    if (!(b = BIO_new_mem_buf(pem, (int)len)) ||
        !(key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL))) {
        errmsg_set(err, errlen,
                   "no unencrypted PEM private key that parses (the file must hold "
                   "the certificate and its key)");
        goto out;
    }
    if (X509_check_private_key(x, key) != 1) {
        errmsg_set(err, errlen, "the private key does not match the certificate");
        goto out;
    }
    if (info)
        describe(x, info);
    rc = (*payload = payload_of(pem, len)) ? 0 : -ENOMEM;
out:
    ERR_clear_error(); /* OpenSSL's error queue is per thread: leave it empty */
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int tls_ca_check(const char *pem, size_t len, size_t *n_certs, char *err, size_t errlen)
{
    X509 *x;
    BIO *b;

    *n_certs = 0;
    if (check_text(pem, len, TLS_CA_MAX_BYTES, err, errlen) < 0)
        return -EINVAL;
    if (!(b = BIO_new_mem_buf(pem, (int)len))) {
        errmsg_set(err, errlen, "out of memory");
        return -EINVAL;
    }
    ERR_clear_error();
    while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL))) {
        X509_free(x);
        (*n_certs)++;
    }
    /* the loop ends at the end of the text ("no start line") or at a
     * certificate block that does not parse */
    unsigned long e = ERR_peek_last_error();
    bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    BIO_free(b);
    if (*n_certs == 0) {
        errmsg_set(err, errlen, "no PEM certificate that parses");
        return -EINVAL;
    }
    if (!end) {
        errmsg_set(err, errlen, "certificate %zu does not parse", *n_certs + 1);
        return -EINVAL;
    }
    return 0;
}
