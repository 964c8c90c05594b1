/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_cert_payload on arbitrary bytes: certificate files come from outside
 * (an ACME client, an operator). An accepted file's payload must be a
 * valid runtime API payload: no empty line, no CR, no trailing newline.
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
    return 0;
}
