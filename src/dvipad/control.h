/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: a UNIX SOCK_SEQPACKET server speaking proto.h.
 * Requests are authorized with SO_PEERCRED (and SO_PEERGROUPS) against the
 * range's ALLOW list; a client's API holds end when its connection closes.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "addr.h"
#include "engine.h"
#include "result.h"

struct dv_daemon;
struct dv_control;

#define DV_CONTROL_MAX_CLIENTS 4096
#define DV_CONTROL_MAX_QUEUED (32u << 20) /* bytes queued to one slow reader */

/* Listen on path (its directory is created). Fails if another daemon
 * already answers there. */
int dv_control_open(sd_event *ev, const char *path, struct dv_daemon *d, struct dv_control **ret);
/* Close every connection and remove the socket file. NULL ok. */
struct dv_control *dv_control_free(struct dv_control *c);

/* The answer to request seq of client. seq 0 marks the daemon's own
 * requests: dropped. A client that is gone: dropped. */
void dv_control_reply(struct dv_control *c, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result r,
		      const char *reason);
void dv_control_event(struct dv_control *c, uint64_t client, const struct dv_addr *a, enum dv_notify what,
		      const char *reason);
/* The pid of a connected client, 0 if unknown. */
pid_t dv_control_client_pid(const struct dv_control *c, uint64_t client);
size_t dv_control_nclients(const struct dv_control *c);
