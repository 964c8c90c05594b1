/* SPDX-License-Identifier: Apache-2.0 */
/* tls_cert: certificate files checked before `set ssl cert`, and the
 * payload made of them; CA files; and tls_files, the files a definition's
 * TLS names (checked, crt-lists written), which needs the same
 * certificates; the removal of a service's crt-lists and the start sweep;
 * render_files (maps and crt-lists next to a rendered config).
 * Certificates are made here with OpenSSL (EC keys,
 * self-signed), so the cases need no files. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "render.h"
#include "render_files.h"
#include "snapshot.h"
#include "tls_cert.h"
#include "tls_files.h"
#include "../common/suite_main.h"

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

/* PEM text of the certificate alone; caller frees. */
static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
    long n = BIO_get_mem_data(b, &data);
    out = strndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

/* CA files: one or more certificates, every block parses. */
START_TEST(test_ca_check)
{
    EVP_PKEY *k1 = new_key(), *k2 = new_key();
    X509 *x1 = new_cert(k1, "ca one"), *x2 = new_cert(k2, "ca two");
    char *c1 = cert_pem(x1), *c2 = cert_pem(x2), *bundle = NULL, *broken = NULL, err[256];
    size_t n = 99;
    ck_assert_int_gt(asprintf(&bundle, "# a comment line\n%s\n%s", c1, c2), 0);
    ck_assert_int_gt(
        asprintf(&broken, "%s-----BEGIN CERTIFICATE-----\nbm90\n-----END CERTIFICATE-----\n", c1),
        0);
    ck_assert_int_eq(tls_ca_check(c1, strlen(c1), &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(tls_ca_check(bundle, strlen(bundle), &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(tls_ca_check(broken, strlen(broken), &n, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "certificate 2 does not parse"), "%s", err);
    ck_assert_int_eq(tls_ca_check("", 0, &n, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "no PEM certificate"), "%s", err);
    ck_assert_int_eq(tls_ca_check(c1, strlen(c1) + 1, &n, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "NUL"), "%s", err);
    free(c1);
    free(c2);
    free(bundle);
    free(broken);
    X509_free(x1);
    X509_free(x2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}
END_TEST

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void decode(const char *json, struct kvm_service *s)
{
    char err[256];
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    ck_assert_ptr_nonnull(root);
    memset(s, 0, sizeof(*s));
    ck_assert_msg(kvm_service_decode(root, "web", s, err, sizeof(err)) == 0, "%s", err);
    json_decref(root);
}

/* tls_files: the files a definition names are checked with the field
 * named; crt-lists are written once per content and stale ones removed. */
START_TEST(test_tls_files)
{
    char dir[] = "/tmp/drover-tls-files.XXXXXX", path[512], def[2048], err[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    EVP_PKEY *k = new_key();
    X509 *x = new_cert(k, "one");
    char *good = pem_of(x, k, NULL), *ca = cert_pem(x);
    snprintf(path, sizeof(path), "%s/a.pem", dir);
    write_text(path, good);
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    write_text(path, ca);
    snprintf(path, sizeof(path), "%s/bad.pem", dir);
    write_text(path, "not a certificate\n");
    static const struct {
        const char *cert, *be_ca, *sel_ca, *field, *file, *why;
    } cases[] = {
        {"a.pem", "ca.pem", "ca.pem", NULL, NULL, NULL},
        {"missing.pem", "ca.pem", "ca.pem", "frontends[0].tls.certs[0]", "missing.pem", "No such"},
        {"bad.pem", "ca.pem", "ca.pem", "frontends[0].tls.certs[0]", "bad.pem", "no PEM"},
        {"a.pem", "nope.pem", "ca.pem", "backends[0].server_tls.ca_file", "nope.pem", "No such"},
        {"a.pem", "ca.pem", "bad.pem", "select[0].server_tls.ca_file", "bad.pem", "no PEM"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kvm_service s;
        char want[512];
        snprintf(def, sizeof(def),
                 "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:443\"],"
                 "\"default_backend\":\"b\",\"tls\":{\"certs\":[{\"file\":\"%s/%s\",\"sni\":["
                 "\"a.example.com\"]}]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":"
                 "\"s\",\"address\":\"10.0.0.1\",\"port\":443}],\"server_tls\":{\"ca_file\":"
                 "\"%s/%s\"}}],\"select\":[{\"class\":\"c\",\"frontend\":\"fe\",\"server_tls\":"
                 "{\"ca_file\":\"%s/%s\"}}]}",
                 dir, cases[i].cert, dir, cases[i].be_ca, dir, cases[i].sel_ca);
        decode(def, &s);
        int rc = tls_files_check(&s, err, sizeof(err));
        if (!cases[i].field) {
            ck_assert_msg(rc == 0, "case %zu: %s", i, err);
        } else {
            snprintf(want, sizeof(want), "%s: %s/%s: %s", cases[i].field, dir, cases[i].file,
                     cases[i].why);
            ck_assert_int_lt(rc, 0);
            ck_assert_msg(strstr(err, want), "case %zu: %s", i, err);
        }
        if (i == 0) {
            /* written once, then left alone; a stale list removed */
            size_t n = 9;
            char *list = snapshot_crt_list_path(dir, &s, &s.frontends[0]), stale[600];
            ck_assert_int_eq(tls_files_write_crt_lists(dir, &s, &n, err, sizeof(err)), 0);
            ck_assert_uint_eq(n, 1);
            ck_assert_int_eq(tls_files_write_crt_lists(dir, &s, &n, err, sizeof(err)), 0);
            ck_assert_uint_eq(n, 0);
            ck_assert_int_eq(access(list, R_OK), 0);
            snprintf(stale, sizeof(stale), "%s/web.crt-lists/fe.0000000000000000.crtlist", dir);
            write_text(stale, "/x.pem\n");
            const char *keep[] = {list, NULL};
            ck_assert_int_eq(tls_files_remove_stale(dir, "web", keep, 2), 1);
            ck_assert_int_ne(access(stale, F_OK), 0);
            ck_assert_int_eq(access(list, R_OK), 0);
            unlink(list);
            free(list);
            snprintf(stale, sizeof(stale), "%s/web.crt-lists", dir);
            rmdir(stale);
        }
        kvm_service_clear(&s);
    }
    for (const char *const *n = (const char *const[]){"a.pem", "ca.pem", "bad.pem", NULL}; *n;
         n++) {
        snprintf(path, sizeof(path), "%s/%s", dir, *n);
        unlink(path);
    }
    rmdir(dir);
    free(good);
    free(ca);
    X509_free(x);
    EVP_PKEY_free(k);
}
END_TEST

static bool exists(const char *dir, const char *rel)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

static void put(const char *dir, const char *rel, const char *text)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    write_text(p, text);
}

static void mkdir_in(const char *dir, const char *rel)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    ck_assert_int_eq(mkdir(p, 0755), 0);
}

/* A retired service's crt-lists directory goes whole (lists and
 * atomic_file_write's leftovers); a file that is not ours keeps it. */
START_TEST(test_remove_service)
{
    char dir[] = "/tmp/drover-tls-rm.XXXXXX", err[512] = "";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    /* none written: nothing to do */
    ck_assert_int_eq(tls_files_remove_service(dir, "web", err, sizeof(err)), 0);
    mkdir_in(dir, "web.crt-lists");
    put(dir, "web.crt-lists/fe.0123456789abcdef.crtlist", "/a.pem\n");
    put(dir, "web.crt-lists/.fe.0123456789abcdef.crtlist.tmp.42.0badc0de", "/a");
    ck_assert_int_eq(tls_files_remove_service(dir, "web", err, sizeof(err)), 0);
    ck_assert(!exists(dir, "web.crt-lists"));
    /* an operator's file in it: the lists go, the directory and it stay */
    mkdir_in(dir, "api.crt-lists");
    put(dir, "api.crt-lists/fe.0123456789abcdef.crtlist", "/a.pem\n");
    put(dir, "api.crt-lists/notes.txt", "mine\n");
    ck_assert_int_eq(tls_files_remove_service(dir, "api", err, sizeof(err)), -ENOTEMPTY);
    ck_assert_msg(strstr(err, "api.crt-lists: cannot remove it"), "%s", err);
    ck_assert(!exists(dir, "api.crt-lists/fe.0123456789abcdef.crtlist"));
    ck_assert(exists(dir, "api.crt-lists/notes.txt"));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static bool in_use_b(void *arg, const char *service)
{
    (*(int *)arg)++;
    return strcmp(service, "b") == 0;
}

/* The start sweep: only the lists of a service with no config that the
 * caller does not serve go. */
START_TEST(test_sweep)
{
    char dir[] = "/tmp/drover-tls-sweep.XXXXXX";
    int asked = 0;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (const char *const *n = (const char *const[]){"a", "b", "c", NULL}; *n; n++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "%s.crt-lists", *n);
        mkdir_in(dir, rel);
        snprintf(rel, sizeof(rel), "%s.crt-lists/fe.0123456789abcdef.crtlist", *n);
        put(dir, rel, "/a.pem\n");
    }
    put(dir, "a.cfg", "global\n");         /* installed: HAProxy may load it */
    put(dir, "c.cfg.removed", "global\n"); /* retired: HAProxy loads no .removed */
    ck_assert_int_eq(tls_files_sweep(dir, in_use_b, &asked), 1);
    ck_assert_int_eq(asked, 2); /* b and c: a has its config */
    ck_assert(exists(dir, "a.crt-lists/fe.0123456789abcdef.crtlist"));
    ck_assert(exists(dir, "b.crt-lists/fe.0123456789abcdef.crtlist"));
    ck_assert(!exists(dir, "c.crt-lists"));
    ck_assert_int_eq(tls_files_sweep("/nonexistent/drover", NULL, NULL), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static bool in_use_served(void *arg, const char *service)
{
    (void)arg;
    return strcmp(service, "served") == 0;
}

/* Route maps of a retired service, then the start sweep: only maps that
 * no service they can belong to claims (a config, served) go; a name with
 * dots keeps its map while any reading of it is claimed. */
START_TEST(test_remove_maps)
{
    char dir[] = "/tmp/drover-maps-rm.XXXXXX";
    uv_loop_t loop;
    struct file_writer *w;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(file_writer_new(&loop, &w), 0);
    const char *const files[] = {"web.fe.map",        "web.fe2.map",   "web.b.fe.map",
                                 "web.crt-lists.map", "served.fe.map", "api.fe.map",
                                 "api.cfg",           "old.fe.map",    "old.cfg.removed",
                                 "web.map",           "notes.txt",     NULL};
    for (const char *const *f = files; *f; f++)
        put(dir, *f, "h b\n");
    put(dir, "web.b.cfg", "global\n"); /* web.b's frontend "fe": claimed */
    /* retired web: its maps only; web.b.fe.map may be web.b's */
    ck_assert_int_eq(render_files_remove_maps(dir, "web", in_use_served, NULL, w), 3);
    ck_assert(!exists(dir, "web.fe.map"));
    ck_assert(!exists(dir, "web.fe2.map"));
    ck_assert(!exists(dir, "web.crt-lists.map"));
    ck_assert(exists(dir, "web.b.fe.map"));
    ck_assert(exists(dir, "old.fe.map")); /* not web's */
    ck_assert(exists(dir, "web.map"));    /* no frontend: not a route map */
    /* the start sweep: maps of services with no config, not served */
    ck_assert_int_eq(render_files_remove_maps(dir, NULL, in_use_served, NULL, w), 1);
    ck_assert(!exists(dir, "old.fe.map"));
    ck_assert(exists(dir, "served.fe.map"));
    ck_assert(exists(dir, "api.fe.map"));
    ck_assert(exists(dir, "web.b.fe.map"));
    ck_assert(exists(dir, "notes.txt"));
    uv_run(&loop, UV_RUN_DEFAULT); /* the removals made durable */
    ck_assert_uint_eq(file_writer_failures(w), 0);
    ck_assert_int_eq(render_files_remove_maps("/nonexistent/drover", NULL, NULL, NULL, w), 0);
    file_writer_close(w);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

struct listed {
    unsigned n;
    char last[PATH_MAX];
};

static bool list_map(void *arg, const char *path)
{
    struct listed *l = arg;
    l->n++;
    snprintf(l->last, sizeof(l->last), "%s", path);
    return true;
}

/* What `render --diff` shows as pruned: the maps of the service's
 * frontends its definition no longer has, by the prune's rule (a name
 * another service's config can claim stays), and nothing is removed. */
START_TEST(test_maps_to_prune)
{
    char dir[] = "/tmp/drover-maps-prune.XXXXXX", want[PATH_MAX];
    struct kvm_service s;
    struct listed l = {0};
    ck_assert_ptr_nonnull(mkdtemp(dir));
    decode("{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"]}],"
           "\"backends\":[],\"select\":[{\"class\":\"c\",\"frontend\":\"fe\"}]}",
           &s);
    const char *const files[] = {"web.fe.map", "web.gone.map", "web.b.fe.map",
                                 "web.b.cfg",  "api.gone.map", NULL};
    for (const char *const *f = files; *f; f++)
        put(dir, *f, "h b\n");
    ck_assert(render_files_names_map(&s, "/elsewhere/web.fe.map"));
    ck_assert(!render_files_names_map(&s, "web.gone.map"));
    ck_assert_int_eq(render_files_each_map_to_prune(dir, &s, list_map, &l), 1);
    snprintf(want, sizeof(want), "%s/web.gone.map", dir);
    ck_assert_str_eq(l.last, want);
    for (const char *const *f = files; *f; f++)
        ck_assert_msg(exists(dir, *f), "%s removed", *f);
    ck_assert_int_eq(render_files_each_map_to_prune("/nonexistent/drover", &s, list_map, &l), 0);
    kvm_service_clear(&s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* render_files: the route maps and crt-lists a config names, written
 * into a directory of the caller's and removed from it again. */
START_TEST(test_render_files)
{
    char dir[] = "/tmp/drover-render-files.XXXXXX", def[1024], err[512] = "";
    struct kvm_service s, plain;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(def, sizeof(def),
             "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:443\"],"
             "\"tls\":{\"certs\":[\"/etc/a.pem\",{\"file\":\"/etc/b.pem\",\"sni\":["
             "\"b.example.com\"],\"alpn\":[\"h2\"]}]}}],"
             "\"backends\":[],\"select\":[{\"class\":\"c\",\"frontend\":\"fe\"}]}");
    decode(def, &s);
    decode("{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"],\"default_backend\":"
           "\"b\"}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":"
           "\"10.0.0.1\",\"port\":80}]}]}",
           &plain);
    ck_assert(render_files_any(&s));
    ck_assert(!render_files_any(&plain));
    ck_assert_int_eq(render_files_write(dir, &s, err, sizeof(err)), 0);
    char *list = snapshot_crt_list_path(dir, &s, &s.frontends[0]), *text = NULL;
    char *map = snapshot_map_path(dir, &s, &s.frontends[0]);
    size_t len = 0;
    ck_assert_int_eq(render_read_file(list, &text, &len), 0);
    ck_assert_str_eq(text, "/etc/a.pem\n/etc/b.pem [alpn h2] b.example.com\n");
    ck_assert_int_eq(access(map, R_OK), 0);
    render_files_remove(dir, &s);
    ck_assert_int_ne(access(map, F_OK), 0);
    ck_assert(!exists(dir, "web.crt-lists"));
    ck_assert_int_eq(rmdir(dir), 0); /* nothing else was left */
    free(text);
    free(list);
    free(map);
    kvm_service_clear(&s);
    kvm_service_clear(&plain);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls_cert");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_good_cert_and_payload);
    tcase_add_test(tc, test_crlf_and_blank_lines_dropped);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_ca_check);
    tcase_add_test(tc, test_tls_files);
    tcase_add_test(tc, test_remove_service);
    tcase_add_test(tc, test_sweep);
    tcase_add_test(tc, test_remove_maps);
    tcase_add_test(tc, test_maps_to_prune);
    tcase_add_test(tc, test_render_files);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
