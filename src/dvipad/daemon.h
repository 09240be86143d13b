/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon: what main() starts, reloads and stops. Its state is opaque:
 * daemon.c wires the engine to the cluster stream, the kernel and the
 * control socket.
 */
#pragma once

#include <systemd/sd-event.h>

#include "conf.h"

struct dv_daemon;

/* Set up the kernel side, the engine and the cluster for conf (taken over),
 * remove leftovers of an earlier instance, and submit this node's initial
 * events. Errors are logged. */
int dv_daemon_new(sd_event *ev, const char *conf_path, struct dv_conf *conf, struct dv_daemon **ret);
/* Answer clients on the control socket at path (dv_control_open()). */
int dv_daemon_listen(struct dv_daemon *d, const char *path);
/* Serve the metrics over HTTP if the configuration says so (METRICS
 * LISTEN); errors are logged. */
int dv_daemon_serve_metrics(struct dv_daemon *d);
/* Remove every address this node holds; before exit. */
void dv_daemon_shutdown(struct dv_daemon *d);
struct dv_daemon *dv_daemon_free(struct dv_daemon *d);

/* The configuration in force and the file it came from. */
const struct dv_conf *dv_daemon_conf(const struct dv_daemon *d);
const char *dv_daemon_conf_path(const struct dv_daemon *d);

/* Parse the configuration file again and apply it if it is valid. On
 * error nothing changes and *ret_errors (malloc'ed) says why. */
int dv_daemon_reload(struct dv_daemon *d, char **ret_errors);
