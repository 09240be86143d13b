/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: a UNIX SOCK_SEQPACKET server speaking proto.h.
 * It frames, authorizes and relays: requests are authorized with SO_PEERCRED
 * (and SO_PEERGROUPS) against the range's ALLOW list and handed to the
 * owner of the state through struct dv_control_ops; the owner answers with
 * dv_control_reply() and builds the records of STATUS and CONFIG itself.
 * A client's API holds end when its connection closes (ops->client_gone).
 */
#pragma once

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "addr.h"
#include "conf.h"
#include "proto.h"
#include "result.h"

struct dv_control;

#define DV_CONTROL_MAX_CLIENTS 4096
/* Connections of one uid other than root, and connections kept for root
 * alone: no local user can lock the others, or root, out. */
#define DV_CONTROL_MAX_PER_UID 256
#define DV_CONTROL_ROOT_RESERVE 64
#define DV_CONTROL_MAX_QUEUED (32u << 20) /* bytes queued to one slow reader */
/* Bytes queued to the slow readers of one uid other than root, and to all
 * of them together: users who ask for status and never read the answer
 * cannot grow the daemon past these (root's readers count only against
 * DV_CONTROL_MAX_QUEUED each). */
#define DV_CONTROL_MAX_QUEUED_PER_UID (64u << 20)
#define DV_CONTROL_MAX_QUEUED_USERS (256u << 20)
/* Bytes of changes queued to one monitor (DV_MSG_MONITOR) before it is
 * told it overran and is closed: thousands of changes. */
#define DV_CONTROL_MONITOR_QUEUED (1u << 20)

/*
 * Where the records of a STATUS or CONFIG answer go, one at a time: the
 * producer builds a record in b (dv_records_begin(), then dv_msgb_field_*())
 * and hands it to emit, which queues it for the reader. emit returns 0, or
 * -EPIPE once the reader is gone: the producer may stop then.
 */
struct dv_records {
	struct dv_msgb *b;
	uint32_t seq; /* of the request answered */
	int (*emit)(void *ud, struct dv_msgb *b);
	void *ud;
};

static inline void dv_records_begin(struct dv_records *out, enum dv_rec_type t)
{
	dv_msgb_init(out->b, DV_MSG_RECORD, out->seq);
	dv_msgb_put_u32(out->b, DV_A_RECTYPE, t);
}

static inline int dv_records_emit(struct dv_records *out)
{
	return out->emit(out->ud, out->b);
}

/* What the owner knows about a request and its address that
 * authorization and the answer need. Hold kinds are the owner's: control
 * only reads these. */
struct dv_control_target {
	const char *node;		   /* this node's name, for messages */
	const struct dv_conf_range *range; /* the address's most specific live range, or NULL */
	bool defined;			   /* a VIPADEFINE or VIPABACKUP of this node */
	/* The request only ends the client's own API hold or standby:
	 * nothing to authorize. */
	bool own;
	/* "deactivate ADDR" without a node means this node's define of ADDR
	 * (VARY ... DEACTIVATE: root's), not an operator hold: this node has
	 * none. Control relays it as DV_MSG_DEACTIVATE. */
	bool define_op;
	/* This node's operator hold of the address, and who made it: only
	 * that uid or root may end it. */
	bool operator_hold;
	uid_t operator_uid;
};

/* The owner of the state (the daemon). Called from the event loop, never
 * from within dv_control_reply() or dv_control_event(); none may free the
 * control socket. */
struct dv_control_ops {
	/* req has an address. Also asked for the range of an address granted
	 * (SOURCEVIPA), as an ACTIVATE of it. */
	void (*resolve)(void *ud, const struct dv_request *req, struct dv_control_target *ret);
	/* A request that passed authorization, from client with the
	 * credentials SO_PEERCRED gave. The answer comes through
	 * dv_control_reply(), possibly after a probe and the cluster's round
	 * trip. */
	void (*request)(void *ud, uint64_t client, const struct ucred *cred, const struct dv_request *req);
	/* client's connection closed (not called by dv_control_free()). */
	void (*client_gone)(void *ud, uint64_t client);
	/* STATUS (of a only, or of every VIPA if a is NULL) and CONFIG: the
	 * records go to out; the verdict is returned, with a reason for
	 * humans in reason when it is not DV_R_OK (CONFIG is always OK). n_clients: the control
	 * connections now, for the DAEMON record. */
	enum dv_result (*status)(void *ud, const struct dv_addr *a, size_t n_clients, struct dv_records *out,
				 char *reason, size_t size);
	void (*config)(void *ud, struct dv_records *out);
	/* TARGETS (of the distributed VIPA a only, or of all if a is NULL),
	 * as status. */
	enum dv_result (*targets)(void *ud, const struct dv_addr *a, struct dv_records *out, char *reason, size_t size);
	/* CONNS (the pins of the distributed VIPA a only, or of all), as
	 * status. */
	enum dv_result (*conns)(void *ud, const struct dv_addr *a, struct dv_records *out, char *reason, size_t size);
	/* QUIESCE and RESUME (root only: control checks): DV_R_OK if they may
	 * go to the cluster (request), else a result and reason for the client. */
	enum dv_result (*quiesce)(void *ud, const struct dv_request *req, char *reason, size_t size);
	/* SOURCE_PORTS of a: dv_dist_source_ports(). */
	enum dv_result (*source_ports)(void *ud, const struct dv_addr *a, uint16_t *ret_lo, uint16_t *ret_hi,
				       char *reason, size_t size);
	/* Parse the configuration again and apply it if valid (only root may
	 * ask: control checks). 0, or -errno and *ret_errors (malloc'ed, one
	 * "FILE:LINE: message" a line) saying why nothing changed. */
	int (*reload)(void *ud, char **ret_errors);
	/* METRICS: the OpenMetrics text (metrics.h), malloc'ed, or -ENOMEM.
	 * n_clients as for status. */
	int (*metrics)(void *ud, size_t n_clients, char **ret, size_t *ret_len);
};

/* Listen on path (its directory is created). Fails if another daemon
 * already answers there. */
int dv_control_open(sd_event *ev, const char *path, const struct dv_control_ops *ops, void *ud,
		    struct dv_control **ret);
/* Close every connection and remove the socket file. NULL ok. */
struct dv_control *dv_control_free(struct dv_control *c);

/* The answer to request seq of client. seq 0 marks the daemon's own
 * requests: dropped. A client that is gone: dropped. */
/* Bytes of replies waiting for slow readers, all of them. */
size_t dv_control_queued(const struct dv_control *c);

void dv_control_reply(struct dv_control *c, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result r,
		      const char *reason);
/* News for client about a: what is a DV_A_EVENT value (1 granted, 2 lost;
 * the engine's enum dv_notify numbers them so). */
void dv_control_event(struct dv_control *c, uint64_t client, const struct dv_addr *a, uint32_t what,
		      const char *reason);
/* Open control connections. */
size_t dv_control_clients(const struct dv_control *c);

/* Changes for the monitors (DV_MSG_MONITOR): whether any client
 * subscribed; then build a CHANGE record in the builder begin returns
 * (dv_msgb_field_*()) and send it to every monitor. A monitor that falls
 * behind is told so and closed (DV_CONTROL_MONITOR_QUEUED). */
bool dv_control_monitored(const struct dv_control *c);
struct dv_msgb *dv_control_change_begin(struct dv_control *c);
void dv_control_change_send(struct dv_control *c);

/* The pid of a connected client, 0 if unknown. */
pid_t dv_control_client_pid(const struct dv_control *c, uint64_t client);
/* The command of the client's process, read from /proc once per connection
 * (a status of the whole table reads it once per client, not per hold). */
const char *dv_control_client_comm(struct dv_control *c, uint64_t client);
