/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_cert: checks a certificate file (PEM: the certificate, its chain and
 * its private key in one file, as HAProxy's `crt` loads it) before the
 * watcher hands it to HAProxy with `set ssl cert`, and turns it into the
 * runtime API's payload; checks a CA file before a config names it. Pure: no I/O, no global state
 * (OpenSSL's parsers only), so one fuzz target covers it.
 *
 * Why check here when HAProxy checks too: HAProxy refuses a certificate
 * that does not parse or does not match its key only at `commit`, with a
 * message naming its own file; the watcher refuses it before anything is
 * sent, names the file and the reason, and the certificate in force keeps
 * serving either way.
 */
#ifndef DROVER_WATCHER_TLS_CERT_H
#define DROVER_WATCHER_TLS_CERT_H

#include <stddef.h>

/* Largest certificate file accepted (a chain of a few certificates and a
 * key is a few KiB). */
#define TLS_CERT_MAX_BYTES (256 * 1024)

struct tls_cert_info {
    char sha1[41];      /* SHA-1 of the leaf certificate (DER), hex upper case,
                           as HAProxy's `show ssl cert` prints it */
    char subject[128];  /* leaf subject, one line, for logs */
    char not_after[32]; /* leaf notAfter, for logs */
};

/*
 * Check pem (len bytes, not NUL-terminated) and write the `set ssl cert`
 * payload to *payload: its lines without CR and without empty lines, no
 * trailing newline (malloc'd; caller frees). Refused (-EINVAL, err names
 * the reason): NUL bytes, more than TLS_CERT_MAX_BYTES, no certificate, no
 * private key, an encrypted key, a key that does not match the first
 * certificate. info (may be NULL) describes the leaf certificate.
 * 0, -EINVAL or -ENOMEM.
 */
int tls_cert_payload(const char *pem, size_t len, char **payload, struct tls_cert_info *info,
                     char *err, size_t errlen);

/* Largest CA file accepted (a system bundle is about 200 KiB). */
#define TLS_CA_MAX_BYTES (4 * 1024 * 1024)

/*
 * Check a CA file (pem, len bytes) HAProxy is to verify servers with
 * (`ca-file`): at least one PEM certificate, and every certificate block
 * parses. *n_certs gets their number. 0 or -EINVAL (err names the reason).
 */
int tls_ca_check(const char *pem, size_t len, size_t *n_certs, char *err, size_t errlen);

#endif
