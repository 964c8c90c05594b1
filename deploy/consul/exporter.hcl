# SPDX-License-Identifier: Apache-2.0
# drover-exporter: the only writer of R kube/<cluster>/ (services, nodes,
# meta, and the leader key it locks with a session). Nothing else.
# Placeholders are filled by render-policies.sh (see docs/operations.md).
key_prefix "@ROOT@kube/@KUBE_CLUSTER@/" {
  policy = "write"
}

# The leader lock: a session on the agent's node, then ?acquire= on
# R kube/<cluster>/leader (covered by the write above).
session_prefix "" {
  policy = "write"
}

# With --kse-compat the exporter also writes kube-service-exporter's
# layout; add its prefix, e.g.
#   key_prefix "kube-service-exporter/" { policy = "write" }
