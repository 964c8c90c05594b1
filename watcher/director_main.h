/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_main: `drover-watcher director [run|status] [options]`, the
 * watcher's director side (docs/director-watcher.md). main.c hands over
 * argv starting at the word "director".
 */
#ifndef DROVER_WATCHER_DIRECTOR_MAIN_H
#define DROVER_WATCHER_DIRECTOR_MAIN_H

/* Exit status: 0 ok, 1 runtime failure, 2 usage. */
int director_main(int argc, char **argv);

#endif
