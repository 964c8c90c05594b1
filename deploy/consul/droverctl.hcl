# SPDX-License-Identifier: Apache-2.0
# droverctl (CLI and `droverctl serve`): reads all of drover's keys to
# resolve targets and check shares; writes maintenance entries, the audit
# trail and the director proxies' state, nothing else.
# Placeholders are filled by render-policies.sh (see docs/operations.md).
key_prefix "@ROOT@" {
  policy = "read"
}
key_prefix "@ROOT@maintenance/" {
  policy = "write"
}
key_prefix "@ROOT@audit/" {
  policy = "write"
}
key_prefix "@ROOT@director/@DIRECTOR_CLUSTER@/proxies/" {
  policy = "write"
}
# droverctl host drain|undrain (front door, audited like every change)
key_prefix "@ROOT@frontdoor/hosts/" {
  policy = "write"
}
