/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_cert_payload on arbitrary bytes: certificate files come from outside
 * (an ACME client, an operator). An accepted file's payload must be a
 * valid runtime API payload: no empty line, no CR, no trailing newline.
 * The same bytes as a CA file (tls_ca_check): accepted only with a
 * certificate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], *payload = NULL;
    struct tls_cert_info info;
    if (tls_cert_payload((const char *)data, size, &payload, &info, err, sizeof(err)) == 0) {
        size_t n = strlen(payload);
        if (strstr(payload, "\n\n") || strchr(payload, '\r') || (n && payload[n - 1] == '\n') ||
            (n && payload[0] == '\n'))
            abort();
    }
    free(payload);
    size_t n = 0;
    if (tls_ca_check((const char *)data, size, &n, err, sizeof(err)) == 0 && n == 0)
        abort(); /* an accepted CA file holds a certificate */
    return 0;
}
