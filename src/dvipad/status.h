/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The records `dvipactl status` and `dvipactl config` show (proto.h's
 * DV_REC_*), built from the daemon's state: the engine's views, the
 * configuration and what the kernel has installed. Pure over its inputs,
 * which come in struct dv_status_input; the records go to a struct
 * dv_records (the control socket's client, or a test).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "control.h"
#include "engine.h"
#include "sync.h"

struct dv_status_input {
	const struct dv_engine *engine;
	const struct dv_conf *conf;
	const char *conf_path;
	uint64_t started_ms; /* wall clock */
	pid_t pid;	     /* the daemon's */
	uint64_t n_clients;  /* control connections */
	uint64_t queued;     /* bytes of replies waiting for slow readers */
	/* The cluster sync's view of the members' state digests; NULL
	 * without Corosync. */
	const struct dv_sync_info *sync;
	/* Whether this node may have addresses now, and why not (gate.h). */
	const char *gate;
	/* Whether this node's interface has a now. */
	bool (*installed)(void *ud, const struct dv_addr *a);
	/* The pid of a client connected to this node, 0 if unknown. */
	pid_t (*client_pid)(void *ud, uint64_t client);
	/* Optional. The program of this node's hold h on a: its pid (0 if
	 * unknown) and, if known, its command into comm (left empty if not). */
	pid_t (*hold_pid)(void *ud, const struct dv_hold *h, const struct dv_addr *a, char *comm, size_t size);
	/* Optional. A program of this node whose sockets are still bound to
	 * a, which another node has: its pid (0: none) and command. */
	pid_t (*lost_by)(void *ud, const struct dv_addr *a, char *comm, size_t size);
	/* Optional. The nodes where a is MOVING (it moved away from them and
	 * they still serve connections on it) and how many, up to max. */
	size_t (*moving)(void *ud, const struct dv_addr *a, struct dv_moving *ret, size_t max);
	void *ud;
};

/* STATUS: the DAEMON record, one MEMBER record a member, then the VIPA
 * record of a (or of every VIPA, by address, if a is NULL), each followed
 * by its HOLD, STANDBY and MOVING records. DV_R_OK, or DV_R_NOTHELD and a reason if
 * a is not a known VIPA. */
enum dv_result dv_status_records(const struct dv_status_input *in, const struct dv_addr *a, struct dv_records *out,
				 char *reason, size_t size);

/* CONFIG: a RANGE record a range, a DEFINE record a define or backup, then
 * the normalized configuration as TEXT records, one a line. */
void dv_status_config(const struct dv_conf *conf, struct dv_records *out);

/* Where another member's configuration disagrees with this node's, in a
 * way that matters across nodes: a range the other lacks or has with
 * another policy, or an address both define as owner. true and a sentence
 * in why, or false. */
bool dv_status_config_disagrees(const struct dv_node_conf *mine, const struct dv_node_conf *other, char *why,
				size_t size);
