# SPDX-License-Identifier: Apache-2.0
# drover-watcher, proxy and director mode: reads only, writes nothing in
# Consul (its state goes to local files and the XDP maps).
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

# Director mode with --consul-health-service: the service's health checks.
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
