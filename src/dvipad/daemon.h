/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon: wires the engine to the cluster stream, the kernel and the
 * control socket. Requests from clients become events submitted to the
 * cluster; delivered events go through the engine; the engine's effects
 * become kernel changes, announcements and replies.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "addrset.h"
#include "cluster.h"
#include "conf.h"
#include "engine.h"
#include "kernel.h"
#include "proto.h"

struct dv_control;
struct dv_probe_wait;
struct dv_grant_wait;

struct dv_daemon {
	sd_event *ev;
	char *conf_path;
	struct dv_conf *conf;
	struct dv_engine *engine;
	struct dv_cluster *cluster;
	struct dv_kaddr *kaddr;
	struct dv_announce *announce;
	struct dv_sockdiag *sockdiag;
	struct dv_control *control;
	uint64_t started_ms;

	/* Addresses probed clean or installed since start: the duplicate
	 * check runs before the first activation of an address only. */
	struct dv_addrset probed;
	struct dv_probe_wait *probes; /* requests waiting for a probe */

	/* Socket holds whose socket has not been seen yet: the shim binds
	 * only after the grant, so "unbound" is believed after a grace. */
	struct dv_sock_grace *graces;
	struct dv_addrset seen_bound; /* installed addresses a socket was seen on */

	/* Defines: what was last reported to the engine about each
	 * conf->defines entry (0x80 | DV_AS_* flags; 0 = not yet). */
	sd_event_source *define_timer;
	uint8_t *define_state;

	/* The kernel has an address exactly when the engine says this node
	 * owns it, the partition is quorate as this node sees it now, and
	 * the node is in sync with its cluster (always so in CLUSTER NONE). */
	bool cl_connected;
	bool cl_quorate;
	/* Grants held back while the gate is closed (see eng_notify). */
	struct dv_grant_wait *grant_waits;
	size_t n_grant_waits;
	/* Standbys to register again after a heal, until the engine answers
	 * (see restandby_note). */
	struct dv_restandby *restandbys;
};

/* How often TRACKPORT listeners and WHENIDLE connections are looked at. */
#define DV_DEFINE_POLL_MS 250

/* How long a fresh socket hold may exist with no socket bound to it. */
#define DV_SOCKET_GRACE_MS 2000

/* Set up the kernel side, the engine and the cluster for conf (taken over),
 * remove leftovers of an earlier instance, and submit this node's initial
 * events. Errors are logged. */
int dv_daemon_new(sd_event *ev, const char *conf_path, struct dv_conf *conf, struct dv_daemon **ret);
/* Remove every address this node holds; before exit. */
void dv_daemon_shutdown(struct dv_daemon *d);
struct dv_daemon *dv_daemon_free(struct dv_daemon *d);

/* Parse the configuration file again and apply it if it is valid. On
 * error nothing changes and *ret_errors (malloc'ed) says why. */
int dv_daemon_reload(struct dv_daemon *d, char **ret_errors);

/* A client request that passed authorization. The reply comes through
 * dv_control_reply(), possibly after a probe and the cluster's round trip. */
void dv_daemon_request(struct dv_daemon *d, uint64_t client, uid_t uid, const struct dv_request *req);
void dv_daemon_client_gone(struct dv_daemon *d, uint64_t client);

