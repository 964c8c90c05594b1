# SPDX-License-Identifier: Apache-2.0
# droverctl config apply|promote|abort|rollback (the deploy flow in
# docs/operations.md): the token of whoever ships configuration (a deploy
# pipeline, or droverctl serve when it offers the config verbs). Reads all
# of drover's keys; writes one proxy cluster's definitions (and its canary
# record, which lives among them), that cluster's deploy history and the
# audit trail. Drains and director steps stay with droverctl.hcl.
# Placeholders are filled by render-policies.sh (see docs/operations.md).
key_prefix "@ROOT@" {
  policy = "read"
}
key_prefix "@ROOT@haproxy/@HAPROXY_CLUSTER@/" {
  policy = "write"
}
key_prefix "@ROOT@deploy/@HAPROXY_CLUSTER@/" {
  policy = "write"
}
key_prefix "@ROOT@audit/" {
  policy = "write"
}
