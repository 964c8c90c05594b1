/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anycast_main: `drover-watcher anycast run`, the front door of a proxy host
 * without a director tier (docs/frontdoor.md): every VIP bound by the
 * HAProxy services in --config-dir is announced through BIRD 2 only while
 * every frontend bound to it is OPEN in its service's HAProxy and each of
 * their backends has a server UP. main.c hands over argv starting at the
 * word "anycast".
 */
#ifndef DROVER_WATCHER_ANYCAST_MAIN_H
#define DROVER_WATCHER_ANYCAST_MAIN_H

/* Exit status: 0 ok, 1 runtime failure, 2 usage. */
int anycast_main(int argc, char **argv);

#endif
