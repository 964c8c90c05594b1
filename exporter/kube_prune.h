/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_prune: cuts the bulk no record builder reads out of a list body's
 * text before it is parsed. Parsing a list page into a jansson tree was
 * most of the exporter's CPU in a converge (5,000 Services: 1.7 G of 2.2 G
 * instructions of the store phase), and most of those bytes are
 * metadata.managedFields, the kubectl last-applied-configuration
 * annotation and, for Nodes, the kubelet's inventory in status.
 *
 * Removed, in every element of the top-level "items" array:
 *   metadata.managedFields
 *   metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]
 *   status.{images, nodeInfo, capacity, allocatable, daemonEndpoints,
 *           volumesInUse, volumesAttached}
 * None of them is kept by kube_service_slim / kube_node_slim, so a slimmed
 * store holds the same bytes either way (test_kube_prune checks this on
 * the fixture's pages); use it only for such stores.
 *
 * The text is scanned, not parsed: strings (with their escapes) and
 * nesting are followed to find where each member ends, and the kept text
 * is left for jansson to validate as before. A member is removed with one
 * adjacent comma, so valid JSON stays valid JSON. Keys are compared as
 * written; a key with a backslash where the scanner compares keys
 * stops it (-EINVAL: the page is parsed whole, as before).
 */
#ifndef DROVER_EXPORTER_KUBE_PRUNE_H
#define DROVER_EXPORTER_KUBE_PRUNE_H

#include <stddef.h>

#include <jansson.h>

/* Prunes text[0..*len) in place and sets *len to the new length. 0, or
 * -EINVAL when the text is not shaped like a JSON object where the
 * scanner looked (the text is then left unchanged, for the parser to
 * report), -ENOMEM. */
int kube_list_prune(char *text, size_t *len);

/* The same removal on a parsed list body (items that are not objects and
 * members of another type are left alone): what a successful
 * kube_list_prune() must equal once parsed (tests, fuzz_kube_prune). */
void kube_list_prune_tree(json_t *list);

#endif
