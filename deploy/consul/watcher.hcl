# SPDX-License-Identifier: Apache-2.0
# drover-watcher, proxy and director mode: reads the definitions; writes
# only its own status entry (status/<host>/<role>, bound to a session of
# its own, docs/kv-schema.md). Its state goes to local files and the XDP
# maps.
# Placeholders are filled by render-policies.sh (see docs/operations.md).
key_prefix "@ROOT@kube/" {
  policy = "read"
}
key_prefix "@ROOT@haproxy/" {
  policy = "read"
}
key_prefix "@ROOT@maintenance/" {
  policy = "read"
}
key_prefix "@ROOT@director/" {
  policy = "read"
}
key_prefix "@ROOT@status/" {
  policy = "write"
}
# director mode with the front door: operators' host drains (read) and
# what this host announces (frontdoor/status/<host>, written)
key_prefix "@ROOT@frontdoor/hosts/" {
  policy = "read"
}
key_prefix "@ROOT@frontdoor/status/" {
  policy = "write"
}
# the session its status entry is bound to
session_prefix "" {
  policy = "write"
}

# Director mode with --consul-health-service: the service's health checks.
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
