/* SPDX-License-Identifier: Apache-2.0 */
/* kv_schema: the machine-readable KV schema. See kv_schema.h. */
#include "kv_schema.h"

#include <string.h>

#include "kv_kube.h"

#define F(n, t, req, alw)                                                                          \
    {                                                                                              \
        .name = n, .type = t, .required = req, .always = alw                                       \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct kv_schema_field kube_service[] = {
    F("cluster", "string", false, true),
    F("namespace", "string", false, true),
    F("service", "string", false, true),
    F("port_name", "string", false, true),
    F("type", "string", false, true),
    F("protocol", "string", false, true),
    F("port", "integer", false, true),
    F("node_port", "integer", true, true),
    F("health_check_port", "integer", false, true),
    F("health_check_source", "string", false, true),
    F("health_check_path", "string", false, false),
    F("load_balancer_class", "string", false, false),
    F("backend_protocol", "string", false, true),
    F("proxy_protocol", "boolean", false, true),
    F("dns_name", "string", false, false),
    F("listen_port", "integer", false, false),
    F("labels", "object", false, true),
    F("custom_attrs", "object", false, true),
    F("hash", "string", false, true),
};

static const struct kv_schema_field kube_node[] = {
    F("name", "string", false, true),      F("cluster", "string", false, true),
    F("addresses", "array", false, true),  F("address", "string", false, false),
    F("ready", "boolean", false, true),    F("schedulable", "boolean", false, true),
    F("excluded", "boolean", false, true), F("selected", "boolean", false, true),
    F("eligible", "boolean", true, true),  F("labels", "object", false, true),
    F("zone", "string", false, false),
};

static const struct kv_schema_field kube_leader[] = {
    F("holder", "string", false, true),
    F("version", "string", false, true),
    F("acquired", "string", false, true),
};

static const struct kv_schema_field kube_meta[] = {
    F("cluster", "string", false, true),
    F("schema", "integer", false, true),
    F("exporter_version", "string", false, true),
    F("last_full_sync", "string", false, true),
    F("last_full_sync_unix", "integer", false, true),
    F("services", "integer", false, true),
    F("service_ports", "integer", false, true),
    F("nodes", "integer", false, true),
    F("eligible_nodes", "integer", false, true),
    F("skipped_services", "integer", false, true),
    F("kse_compat", "boolean", false, true),
};

static const struct kv_schema_field haproxy_service[] = {
    F("template", "string", false, false), F("frontends", "array", true, true),
    F("backends", "array", true, true),    F("select", "array", false, false),
    F("timeouts", "object", false, false), F("metrics", "object", false, false),
};

static const struct kv_schema_field expiring_override[] = {
    F("expires", "string", true, true),
    F("author", "string", false, false),
    F("reason", "string", false, false),
};

static const struct kv_schema_field maintenance[] = {
    F("state", "string", true, true),     F("weight", "integer", false, false),
    F("target", "string", false, true),   F("reason", "string", false, false),
    F("author", "string", false, true),   F("created", "string", false, true),
    F("expires", "string", false, false),
};

static const struct kv_schema_field director_proxy[] = {
    F("address", "string", true, true),
    F("state", "string", true, true),
    F("health", "object", false, false),
    F("weight", "integer", false, false),
};

static const struct kv_schema_field director_vip[] = {
    F("address", "string", true, true),
    F("ports", "array", true, true),
    F("protocol", "string", true, true),
};

static const struct kv_schema_field director_config[] = {
    F("hash_key", "string", true, true),
    F("gue_port", "integer", false, false),
    F("hash_fields", "string", false, false),
    F("max_moved_share", "number", false, false),
};

static const struct kv_schema_field audit[] = {
    F("time", "string", false, true),        F("author", "string", false, true),
    F("source", "string", false, true),      F("action", "string", false, true),
    F("target", "string", false, true),      F("reason", "string", false, false),
    F("before", "object|null", false, true), F("after", "object|null", false, true),
    F("force", "boolean", false, false),
};

static const struct kv_schema_field frontdoor_host[] = {
    F("drained", "boolean", true, true),
    F("author", "string", false, false),
    F("reason", "string", false, false),
    F("since", "string", false, false),
};

static const struct kv_schema_field frontdoor_status[] = {
    F("cluster", "string", false, true),  F("table_checksum", "string", false, true),
    F("drained", "boolean", false, true), F("bird_in_sync", "boolean", false, true),
    F("packets", "integer", false, true), F("updated", "string", false, true),
    F("vips", "array", false, true),
};

static const struct kv_schema_field status[] = {
    F("host", "string", true, true),         F("role", "string", true, true),
    F("cluster", "string", true, true),      F("version", "string", true, true),
    F("started", "string", true, true),      F("updated", "string", true, true),
    F("kv_index", "integer", true, true),    F("snapshot", "string", true, true),
    F("guards", "array", true, true),        F("services", "object", true, true),
    F("last_error", "string", false, false), F("director", "object", false, false),
    F("canary", "integer", false, false),
};

/* haproxy/<cluster>/canary and deploy/<cluster>/history/<version> (kv_deploy.h) */
static const struct kv_schema_field deploy_staged[] = {
    F("version", "integer", true, true),       F("cluster", "string", true, true),
    F("canary", "array", true, true),          F("author", "string", true, true),
    F("time", "string", true, true),           F("keys", "object", true, true),
    F("base", "object", true, true),           F("reason", "string", false, false),
    F("rollback_of", "integer", false, false),
};

static const struct kv_schema_field deploy_version[] = {
    F("version", "integer", true, true), F("cluster", "string", true, true),
    F("canary", "array", true, true),    F("author", "string", true, true),
    F("time", "string", true, true),     F("keys", "object", true, true),
    F("reason", "string", false, false), F("rollback_of", "integer", false, false),
};

#define R(nm, k, w, rd, ex, f)                                                                     \
    {                                                                                              \
        .name = nm, .key = k, .writer = w, .readers = rd, .example = ex, .fields = f,              \
        .n_fields = N(f)                                                                           \
    }

const struct kv_schema_record kv_schema_records[] = {
    R("kube_service", "kube/<cluster>/services/<namespace>/<service>/<port>", "drover-exporter",
      "drover-watcher,droverctl",
      "{\"backend_protocol\":\"http\",\"cluster\":\"dc1-prod\",\"custom_attrs\":{},"
      "\"dns_name\":\"shop.example.com\",\"hash\":\"3f9c0a6e5b7d2c18\",\"health_check_path\":"
      "\"/healthz\",\"health_check_port\":31999,\"health_check_source\":\"healthCheckNodePort\","
      "\"labels\":{\"team\":\"storefront\"},\"listen_port\":8443,\"load_balancer_class\":"
      "\"public\","
      "\"namespace\":\"shop\",\"node_port\":30443,\"port\":443,\"port_name\":\"https\","
      "\"protocol\":\"TCP\",\"proxy_protocol\":false,\"service\":\"web\",\"type\":"
      "\"LoadBalancer\"}",
      kube_service),
    R("kube_node", "kube/<cluster>/node{-shards/<shard>,s}/<node>", "drover-exporter",
      "drover-watcher,droverctl",
      "{\"address\":\"10.20.1.11\",\"addresses\":[\"10.20.1.11\",\"fd00:20:1::11\"],\"cluster\":"
      "\"dc1-prod\",\"eligible\":true,\"excluded\":false,\"labels\":{\"topology.kubernetes.io/"
      "zone\":\"dc1-a\"},\"name\":\"worker-a1.dc1.example.net\",\"ready\":true,\"schedulable\":"
      "true,\"selected\":true,\"zone\":\"dc1-a\"}",
      kube_node),
    R("kube_leader", "kube/<cluster>/leader", "drover-exporter", "drover-exporter,operators",
      "{\"acquired\":\"2026-11-23T13:00:00Z\",\"holder\":\"drover-exporter-7c9f6d-2xkqp\","
      "\"version\":\"0.1.0\"}",
      kube_leader),
    R("kube_meta", "kube/<cluster>/meta", "drover-exporter", "operators,droverctl",
      "{\"cluster\":\"dc1-prod\",\"eligible_nodes\":37,\"exporter_version\":\"0.1.0\","
      "\"kse_compat\":false,\"last_full_sync\":\"2026-11-23T13:00:00Z\",\"last_full_sync_unix\":"
      "1795957200,\"nodes\":40,\"schema\":1,\"service_ports\":17,\"services\":12,"
      "\"skipped_services\":1}",
      kube_meta),
    R("haproxy_service", "haproxy/<cluster>/services/<name>", "operators",
      "drover-watcher,droverctl",
      "{\"backends\":[{\"kube\":[{\"cluster\":\"prod-a\",\"namespace\":\"default\",\"port\":"
      "\"http\",\"service\":\"web\"}],\"name\":\"be_web\",\"servers\":[{\"address\":\"10.1.2.3\","
      "\"name\":\"static-1\",\"port\":8080,\"weight\":100}]}],\"frontends\":[{\"bind\":["
      "\"0.0.0.0:80\"],\"default_backend\":\"be_web\",\"name\":\"fe_web\"}],\"metrics\":{"
      "\"bind\":[\"127.0.0.1:8405\"]},\"select\":[{"
      "\"class\":\"public\",\"frontend\":\"fe_web\"}],\"template\":\"http\","
      "\"timeouts\":{\"client\":\"30s\"}}",
      haproxy_service),
    R("haproxy_force_removal", "haproxy/<cluster>/force-removal/<backend>", "operators",
      "drover-watcher",
      "{\"author\":\"alice\",\"expires\":\"2026-11-23T18:00:00Z\",\"reason\":\"decommission\"}",
      expiring_override),
    R("haproxy_force_kv_loss", "haproxy/<cluster>/force-kv-loss", "droverctl (kv-loss force)",
      "drover-watcher",
      "{\"author\":\"alice\",\"expires\":\"2026-11-23T18:00:00Z\",\"reason\":\"restored "
      "from backup, web is gone\"}",
      expiring_override),
    R("maintenance", "maintenance/{node/<cluster>/<node>,addr/<ip>,server/<backend>/<server>}",
      "droverctl", "drover-watcher,droverctl",
      "{\"author\":\"alice\",\"created\":\"2026-11-23T15:00:00Z\",\"expires\":"
      "\"2026-11-23T18:00:00Z\",\"reason\":\"disk swap\",\"state\":\"drain\",\"target\":"
      "\"node/prod-a/node-a\",\"weight\":50}",
      maintenance),
    R("director_proxy", "director/<cluster>/proxies/<host>", "operators (droverctl: state)",
      "drover-watcher",
      "{\"address\":\"10.0.1.2\",\"health\":{\"path\":\"/healthz\",\"port\":8080},\"state\":"
      "\"active\",\"weight\":100}",
      director_proxy),
    R("director_vip", "director/<cluster>/vips/<name>", "operators", "drover-watcher",
      "{\"address\":\"192.0.2.10\",\"ports\":[80,443],\"protocol\":\"tcp\"}", director_vip),
    R("director_config", "director/<cluster>/config", "operators", "drover-watcher",
      "{\"gue_port\":19523,\"hash_fields\":\"src\",\"hash_key\":"
      "\"000102030405060708090a0b0c0d0e0f\",\"max_moved_share\":0.5}",
      director_config),
    R("director_force", "director/<cluster>/force", "operators", "drover-watcher",
      "{\"author\":\"alice\",\"expires\":\"2026-11-23T18:00:00Z\",\"reason\":\"rekey\"}",
      expiring_override),
    R("audit", "audit/<timestamp>-<id>", "droverctl", "droverctl,operators",
      "{\"action\":\"drain\",\"after\":{\"state\":\"drain\",\"target\":\"node/prod-a/node-a\"},"
      "\"author\":\"alice\",\"before\":null,\"reason\":\"disk swap\",\"source\":\"cli\","
      "\"target\":\"node/prod-a/node-a\",\"time\":\"2026-11-23T15:04:05Z\"}",
      audit),
    R("frontdoor_host", "frontdoor/hosts/<host>", "droverctl", "drover-watcher",
      "{\"author\":\"alice\",\"drained\":true,\"reason\":\"upgrade\",\"since\":"
      "\"2026-11-23T15:04:05Z\"}",
      frontdoor_host),
    R("frontdoor_status", "frontdoor/status/<host>", "drover-watcher", "droverctl,operators",
      "{\"bird_in_sync\":true,\"cluster\":\"dc1\",\"drained\":false,\"packets\":123456,"
      "\"table_checksum\":\"5f1c0e0a9b2d4c71\",\"updated\":\"2026-11-23T15:04:05Z\",\"vips\":"
      "[{\"reason\":\"serving\",\"route\":\"announced\",\"vip\":\"192.0.2.10\"}]}",
      frontdoor_status),
    R("status", "status/<host>/<role>", "drover-watcher", "droverctl,operators",
      "{\"canary\":8,\"cluster\":\"edge\",\"director\":{\"table_checksum\":\"5e0d7c1a9b3f2e44\","
      "\"vips\":[\"192.0.2.10\"]},\"guards\":[\"removal:be_web\"],\"host\":\"proxy-a\","
      "\"kv_index\":4711,\"last_error\":\"service web: check: haproxy -c failed\",\"role\":"
      "\"director\",\"services\":{\"web\":{\"config_hash\":\"9c1e0b7a55d2e301\","
      "\"definition\":\"3f9c0a6e5b7d2c18\",\"errors\":{\"conn_errors\":0,\"http_5xx\":3,"
      "\"req_errors\":1,\"requests\":1500,\"resp_errors\":0},\"reloads\":2,\"slots\":"
      "{\"be_web/s1\":\"slot2\"}}},"
      "\"snapshot\":\"c0ffee0123456789\","
      "\"started\":\"2026-11-23T13:00:00Z\",\"updated\":\"2026-11-23T15:04:05Z\",\"version\":"
      "\"0.1.0\"}",
      status),
    R("deploy_staged", "haproxy/<cluster>/canary", "droverctl (config apply, rollback)",
      "drover-watcher,droverctl",
      "{\"author\":\"alice\",\"base\":{\"haproxy/edge/services/web\":4711},\"canary\":"
      "[\"proxy-a\"],\"cluster\":\"edge\",\"keys\":{\"haproxy/edge/services/web\":{"
      "\"backends\":[{\"name\":\"be_web\",\"servers\":[{\"address\":\"10.1.2.3\","
      "\"name\":\"static-1\",\"port\":8080}]}],\"frontends\":[{\"bind\":[\"0.0.0.0:80\"],"
      "\"default_backend\":\"be_web\",\"name\":\"fe_web\"}],\"template\":\"http\"}},"
      "\"reason\":\"back to version 5\",\"rollback_of\":5,\"time\":\"2026-11-23T15:04:05Z\","
      "\"version\":8}",
      deploy_staged),
    R("deploy_version", "deploy/<cluster>/history/<version>",
      "droverctl (config promote, rollback)", "droverctl,operators",
      "{\"author\":\"alice\",\"canary\":[\"proxy-a\"],\"cluster\":\"edge\",\"keys\":{"
      "\"haproxy/edge/services/web\":{\"backends\":[{\"name\":\"be_web\",\"servers\":[{"
      "\"address\":\"10.1.2.3\",\"name\":\"static-1\",\"port\":8080}]}],\"frontends\":[{"
      "\"bind\":[\"0.0.0.0:80\"],\"default_backend\":\"be_web\",\"name\":\"fe_web\"}],"
      "\"template\":\"http\"}},\"reason\":\"back to version 5\",\"rollback_of\":5,"
      "\"time\":\"2026-11-23T15:10:00Z\",\"version\":8}",
      deploy_version),
};

const size_t kv_schema_n_records = N(kv_schema_records);

const struct kv_schema_record *kv_schema_record(const char *name)
{
    for (size_t i = 0; i < kv_schema_n_records; i++)
        if (strcmp(kv_schema_records[i].name, name) == 0)
            return &kv_schema_records[i];
    return NULL;
}

json_t *kv_schema_json(void)
{
    json_t *doc = json_pack("{s:i, s:s, s:s, s:o}", "schema", KV_SCHEMA_VERSION, "default_root",
                            "drover/v1/", "note",
                            "generated from common/kv_schema.c; docs/kv-schema.md explains "
                            "every field",
                            "records", json_object());
    json_t *recs = doc ? json_object_get(doc, "records") : NULL;
    int rc = doc ? 0 : -1;
    for (size_t i = 0; !rc && i < kv_schema_n_records; i++) {
        const struct kv_schema_record *r = &kv_schema_records[i];
        json_t *o = json_pack("{s:s}", "key", r->key);
        rc |= !o;
        if (!rc && r->reserved) {
            rc |= json_object_set_new(o, "reserved", json_string(r->reserved));
        } else if (!rc) {
            json_error_t je;
            json_t *fields = json_object();
            rc |= !fields || json_object_set_new(o, "writer", json_string(r->writer)) ||
                  json_object_set_new(o, "readers", json_string(r->readers)) ||
                  json_object_set_new(o, "example", json_loads(r->example, 0, &je)) ||
                  json_object_set_new(o, "fields", fields);
            for (size_t k = 0; !rc && k < r->n_fields; k++) {
                const struct kv_schema_field *f = &r->fields[k];
                rc |= json_object_set_new(fields, f->name,
                                          json_pack("{s:s, s:b, s:b}", "type", f->type, "required",
                                                    f->required, "always", f->always));
            }
        }
        rc |= json_object_set_new(recs, r->name, o);
    }
    if (rc) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}
