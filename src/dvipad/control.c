/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket frames, authorizes and relays; it owns no state of
 * the daemon's (OpenBGPD's control.c is the model).
 *
 *  - framing: one SOCK_SEQPACKET datagram is one proto.h message; exact
 *    length checks, DV_MSG_MAX, a reply to every malformed message and a
 *    hang-up after MAX_BAD_MESSAGES of them in a row;
 *  - authorization: the caller is who SO_PEERCRED and SO_PEERGROUPS say,
 *    checked against the ALLOW list of the address's range, which the
 *    owner names (ops->resolve); cluster operations and reload are root's;
 *  - relaying: authorized requests go to ops->request and are answered by
 *    the owner through dv_control_reply(); STATUS and CONFIG records are
 *    built by the owner (status.c) and queued here as they come; news goes
 *    out through dv_control_event(); a closed connection is ops->client_gone.
 *
 * Each client has its own queue, capped at DV_CONTROL_MAX_QUEUED, and the
 * queues of each uid other than root, and of all of them, have caps of their
 * own: a client that does not read what it asked for is disconnected rather
 * than let the daemon grow.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hashtab.h"
#include "kernel.h"
#include "log.h"
#include "metrics.h"
#include "prio.h"
#include "proto.h"

#define CLIENT_BUCKETS 1024
#define MAX_BAD_MESSAGES 16 /* consecutive malformed messages before we hang up */
#define MAX_PER_WAKEUP 64   /* requests handled per readable event: fairness */
#define ACCEPT_PAUSE_MS 100 /* no descriptor left for a connection: try again after */

struct outmsg {
	struct outmsg *next;
	size_t len;
	uint8_t data[];
};

/* What the connections of one uid have: counted against the caps per uid
 * (control.h) without walking every connection. */
struct uid_acct {
	uid_t uid;
	size_t clients;
	size_t queued; /* bytes */
};

struct dv_client {
	struct dv_client *next_bucket;
	struct dv_client *prev, *next;
	struct dv_control *ctl;
	struct uid_acct *acct;
	/* Who sends the message being handled (SCM_CREDENTIALS): requests are
	 * authorized with it, not with who connected. The same process
	 * unless the connection was inherited or passed, or its process
	 * changed its ids since. */
	struct ucred mcred;
	uint64_t id;
	int fd;
	sd_event_source *io;
	struct ucred cred;
	gid_t *gids;
	size_t n_gids;
	unsigned bad;
	bool dead;
	/* Subscribed to changes (DV_MSG_MONITOR) with this request's seq;
	 * 0: not. */
	uint32_t monitor_seq;
	bool closing;  /* overrun: closed once its queue is sent */
	char comm[16]; /* cred.pid's command, read at the first status that shows it; "" before */
	struct outmsg *out_head, *out_tail;
	size_t out_bytes;
};

struct dv_control {
	sd_event *ev;
	const struct dv_control_ops *ops;
	void *ud; /* the owner's */
	char *path;
	int fd;
	sd_event_source *io;
	sd_event_source *pause_src; /* accepts paused: out of descriptors */
	struct dv_ratelimit rl_accept, rl_full, rl_queued, rl_refused;
	size_t users_queued;	/* bytes queued to readers other than root */
	struct dv_hashtab uids; /* struct uid_acct, by uid */
	uint64_t next_id;
	size_t n_clients;
	struct dv_client *clients; /* list, for teardown */
	size_t n_monitors;	   /* clients with monitor_seq */
	sd_event_source *reap;	   /* frees clients that died outside their handler */
	struct dv_client *buckets[CLIENT_BUCKETS];
	struct dv_msgb msgb;	/* one reusable message builder */
	struct dv_msgb overrun; /* a monitor's last message, while msgb holds a change */
	uint8_t rxbuf[DV_MSG_MAX];
};

static struct dv_client *client_find(const struct dv_control *c, uint64_t id)
{
	struct dv_client *cl;

	for (cl = c->buckets[id % CLIENT_BUCKETS]; cl; cl = cl->next_bucket)
		if (cl->id == id)
			return cl;
	return NULL;
}

static uint32_t acct_hash(const void *item)
{
	return ((const struct uid_acct *)item)->uid * 2654435761u;
}

static bool acct_match(const void *item, const void *key)
{
	return ((const struct uid_acct *)item)->uid == *(const uid_t *)key;
}

static struct uid_acct *acct_find(const struct dv_control *c, uid_t uid)
{
	struct uid_acct k = {.uid = uid};

	return dv_hashtab_get(&c->uids, acct_hash(&k), acct_match, &uid);
}

/* The account of uid, made on its first connection; NULL without memory. */
static struct uid_acct *acct_get(struct dv_control *c, uid_t uid)
{
	struct uid_acct *a = acct_find(c, uid);

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->uid = uid;
	if (dv_hashtab_put(&c->uids, a, acct_hash) < 0) {
		free(a);
		return NULL;
	}
	return a;
}

static void acct_put(struct dv_control *c, struct uid_acct *a)
{
	struct uid_acct k = {.uid = a->uid};
	void **slot;

	if (--a->clients > 0)
		return;
	slot = dv_hashtab_find(&c->uids, acct_hash(&k), acct_match, &a->uid);
	if (slot)
		dv_hashtab_del(&c->uids, slot, acct_hash);
	free(a);
}

/* Queued bytes leave the accounts of the reader, its uid and the users'. */
static void queued_less(struct dv_client *cl, size_t n)
{
	cl->out_bytes -= n;
	cl->acct->queued -= n;
	if (cl->cred.uid != 0)
		cl->ctl->users_queued -= n;
}

/* Forget what waits for cl. */
static void queue_drop(struct dv_client *cl)
{
	bool trim = cl->out_bytes >= (1u << 20);

	while (cl->out_head) {
		struct outmsg *m = cl->out_head;

		cl->out_head = m->next;
		queued_less(cl, m->len);
		free(m);
	}
	cl->out_tail = NULL;
	/* Give a large queue's memory back to the system, not just to
	 * malloc. */
	if (trim)
		(void)malloc_trim(0);
}

static void client_free(struct dv_client *cl, bool notify)
{
	struct dv_control *c = cl->ctl;
	struct dv_client **pp;

	for (pp = &c->buckets[cl->id % CLIENT_BUCKETS]; *pp != cl; pp = &(*pp)->next_bucket)
		;
	*pp = cl->next_bucket;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->n_clients--;

	sd_event_source_disable_unref(cl->io);
	close(cl->fd);
	queue_drop(cl);
	acct_put(c, cl->acct);
	if (cl->monitor_seq)
		c->n_monitors--;
	if (notify)
		c->ops->client_gone(c->ud, cl->id);
	free(cl->gids);
	free(cl);
}

static void client_update_events(struct dv_client *cl)
{
	(void)sd_event_source_set_io_events(cl->io, EPOLLIN | (cl->out_head ? EPOLLOUT : 0));
}

/* Send what is queued; false if the connection is broken. */
static bool client_flush(struct dv_client *cl)
{
	while (cl->out_head) {
		struct outmsg *m = cl->out_head;
		ssize_t n = send(cl->fd, m->data, m->len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return false;
		}
		cl->out_head = m->next;
		if (!cl->out_head)
			cl->out_tail = NULL;
		queued_less(cl, m->len);
		free(m);
	}
	client_update_events(cl);
	return !(cl->closing && !cl->out_head);
}

/* Why len more bytes may not wait for cl, or NULL. */
static const char *over_queued(const struct dv_client *cl, size_t len)
{
	const struct dv_control *c = cl->ctl;

	if (cl->out_bytes + len > DV_CONTROL_MAX_QUEUED)
		return "its own queue is full";
	if (cl->cred.uid == 0)
		return NULL;
	if (c->users_queued + len > DV_CONTROL_MAX_QUEUED_USERS)
		return "the queues of all users are full";
	if (cl->acct->queued + len > DV_CONTROL_MAX_QUEUED_PER_UID)
		return "the queues of its uid are full";
	return NULL;
}

/* Queue the finished message in c->msgb for cl. A client that does not read
 * what it asked for is disconnected rather than let grow the daemon. */
static void client_queue(struct dv_client *cl, const uint8_t *data, size_t len, bool capped);

static void client_send(struct dv_client *cl, struct dv_msgb *b)
{
	if (cl->dead)
		return;
	if (dv_msgb_finish(b) < 0) {
		log_err("dropping an oversized reply to client %" PRIu64, cl->id);
		return;
	}
	client_queue(cl, b->buf, b->len, true);
}

/* Send a finished message, or queue what the socket does not take. capped:
 * a reader over its caps is disconnected; else the message is queued
 * whatever the caps (the one last message to a reader that overran). */
static void client_queue(struct dv_client *cl, const uint8_t *data, size_t len, bool capped)
{
	const char *why;
	struct outmsg *m;

	if (!cl->out_head) {
		ssize_t n = send(cl->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n >= 0)
			return;
		if (errno != EAGAIN && errno != EINTR) {
			cl->dead = true;
			return;
		}
	}
	why = capped ? over_queued(cl, len) : NULL;
	if (why) {
		dv_log_limited(&cl->ctl->rl_queued, 10, LOG_WARNING,
			       "client %" PRIu64 " (pid %d, uid %u) does not read its replies: %s; disconnecting it",
			       cl->id, (int)cl->cred.pid, (unsigned)cl->cred.uid, why);
		cl->dead = true;
		return;
	}
	m = malloc(sizeof(*m) + len);
	if (!m) {
		cl->dead = true;
		return;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	if (cl->out_tail)
		cl->out_tail->next = m;
	else
		cl->out_head = m;
	cl->out_tail = m;
	cl->out_bytes += len;
	cl->acct->queued += len;
	if (cl->cred.uid != 0)
		cl->ctl->users_queued += len;
	client_update_events(cl);
}

static void send_result(struct dv_client *cl, uint32_t seq, const struct dv_addr *a, enum dv_result r,
			const char *reason)
{
	struct dv_msgb *b = &cl->ctl->msgb;

	dv_msgb_init(b, DV_MSG_RESULT, seq);
	dv_msgb_put_u32(b, DV_A_RESULT, r);
	dv_msgb_put_str(b, DV_A_REASON, reason ? reason : "");
	if (a && a->family) {
		struct dv_request q = {.type = DV_MSG_ACTIVATE, .has_addr = true, .addr = *a};
		struct dv_control_target t;

		dv_msgb_put_addr(b, a);
		/* SOURCEVIPA ranges tell the preload shim to send from the VIPA. */
		if (r == DV_R_OK) {
			cl->ctl->ops->resolve(cl->ctl->ud, &q, &t);
			if (t.range && t.range->sourcevipa)
				dv_msgb_put_u32(b, DV_A_SOURCE, 1);
		}
	}
	client_send(cl, b);
}

/* Every refusal, whoever decided it, with who asked: the program cannot
 * always say (the preload shim's line goes to the program's stderr), so
 * the operator must be told. At most one line a second. */
static void log_refused(struct dv_client *cl, const struct dv_addr *a, enum dv_result r, const char *msg)
{
	char s[DV_ADDR_STRLEN], comm[32];

	dv_metrics_refused(r);
	dv_log_limited(&cl->ctl->rl_refused, 1, LOG_NOTICE, "refused %s%s%sto pid %d (%s) uid %u: %s", a ? "'" : "",
		       a ? dv_addr_fmt(a, s) : "", a ? "' " : "", (int)cl->mcred.pid,
		       dv_proc_comm(cl->mcred.pid, comm, sizeof(comm)), (unsigned)cl->mcred.uid, msg);
}

void dv_control_reply(struct dv_control *c, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result r,
		      const char *reason)
{
	struct dv_client *cl;

	if (!c || seq == 0)
		return;
	cl = client_find(c, client);
	if (!cl)
		return;
	if (r != DV_R_OK && r != DV_R_PENDING)
		log_refused(cl, a, r, reason);
	send_result(cl, seq, a, r, reason);
}

void dv_control_event(struct dv_control *c, uint64_t client, const struct dv_addr *a, uint32_t what, const char *reason)
{
	struct dv_client *cl;
	struct dv_msgb *b;

	if (!c)
		return;
	cl = client_find(c, client);
	if (!cl)
		return;
	b = &c->msgb;
	dv_msgb_init(b, DV_MSG_EVENT, 0);
	dv_msgb_put_u32(b, DV_A_EVENT, what);
	dv_msgb_put_addr(b, a);
	dv_msgb_put_str(b, DV_A_REASON, reason ? reason : "");
	client_send(cl, b);
}

pid_t dv_control_client_pid(const struct dv_control *c, uint64_t client)
{
	const struct dv_client *cl = c ? client_find(c, client) : NULL;

	return cl ? cl->cred.pid : 0;
}

const char *dv_control_client_comm(struct dv_control *c, uint64_t client)
{
	struct dv_client *cl = c ? client_find(c, client) : NULL;

	if (!cl || cl->cred.pid <= 0)
		return "";
	if (!cl->comm[0])
		dv_proc_comm(cl->cred.pid, cl->comm, sizeof(cl->comm));
	return cl->comm;
}

/* ---- status and config: the owner builds the records, control relays them ---- */

static int records_emit(void *ud, struct dv_msgb *b)
{
	struct dv_client *cl = ud;

	client_send(cl, b);
	return cl->dead ? -EPIPE : 0;
}

static void relay_records(struct dv_client *cl, const struct dv_request *req)
{
	struct dv_control *c = cl->ctl;
	struct dv_records out = {.b = &c->msgb, .seq = req->seq, .emit = records_emit, .ud = cl};
	char reason[DV_REASON_MAX] = "";
	enum dv_result r = DV_R_OK;

	if (req->type == DV_MSG_STATUS)
		r = c->ops->status(c->ud, req->has_addr ? &req->addr : NULL, c->n_clients, &out, reason,
				   sizeof(reason));
	else if (req->type == DV_MSG_TARGETS)
		r = c->ops->targets(c->ud, req->has_addr ? &req->addr : NULL, &out, reason, sizeof(reason));
	else if (req->type == DV_MSG_CONNS)
		r = c->ops->conns(c->ud, req->has_addr ? &req->addr : NULL, &out, reason, sizeof(reason));
	else
		c->ops->config(c->ud, &out);
	/* A refusal names the address asked about. */
	send_result(cl, req->seq, r == DV_R_OK || !req->has_addr ? NULL : &req->addr, r, reason);
}

static void do_reload(struct dv_client *cl, const struct dv_request *req)
{
	struct dv_control *c = cl->ctl;
	struct dv_records out = {.b = &c->msgb, .seq = req->seq, .emit = records_emit, .ud = cl};
	char *errors = NULL, *save = NULL;
	int r;

	if (cl->mcred.uid != 0) {
		log_refused(cl, NULL, DV_R_PERM, "only root may reload the configuration");
		send_result(cl, req->seq, NULL, DV_R_PERM, "only root may reload the configuration");
		return;
	}
	log_notice("reload requested by pid %d", (int)cl->mcred.pid);
	r = c->ops->reload(c->ud, &errors);
	if (r == 0) {
		log_notice("configuration reloaded");
		send_result(cl, req->seq, NULL, DV_R_OK, "configuration reloaded");
		return;
	}
	/* Each error line as a TEXT record, then the verdict. */
	for (char *line = errors ? strtok_r(errors, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		log_err("%s", line);
		dv_records_begin(&out, DV_REC_TEXT);
		dv_msgb_field_str(out.b, "text", line);
		(void)dv_records_emit(&out);
	}
	free(errors);
	send_result(cl, req->seq, NULL, DV_R_BADREQ, "the new configuration has errors; nothing changed");
}

/* METRICS: the owner's OpenMetrics text, a TEXT record a line. */
static void relay_metrics(struct dv_client *cl, const struct dv_request *req)
{
	struct dv_control *c = cl->ctl;
	struct dv_records out = {.b = &c->msgb, .seq = req->seq, .emit = records_emit, .ud = cl};
	char *text = NULL, *save = NULL;
	size_t len;

	if (c->ops->metrics(c->ud, c->n_clients, &text, &len) < 0) {
		send_result(cl, req->seq, NULL, DV_R_INTERNAL, "out of memory for the metrics");
		return;
	}
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		dv_records_begin(&out, DV_REC_TEXT);
		dv_msgb_field_str(out.b, "text", line);
		if (dv_records_emit(&out) < 0)
			break;
	}
	free(text);
	send_result(cl, req->seq, NULL, DV_R_OK, "");
}

/* MONITOR: from the answer on, the client gets every change
 * (dv_control_change_send()). Anyone may watch, as anyone may read
 * status. */
static void subscribe(struct dv_client *cl, const struct dv_request *req)
{
	if (cl->monitor_seq) {
		send_result(cl, req->seq, NULL, DV_R_BADREQ, "this connection already monitors");
		return;
	}
	send_result(cl, req->seq, NULL, DV_R_OK, "");
	cl->monitor_seq = req->seq ? req->seq : 1;
	cl->ctl->n_monitors++;
}

/* The groups of the sender: those of the connection (SO_PEERGROUPS) while
 * it sends with the ids it connected with, else only its primary group. */
static bool range_allows(const struct dv_client *cl, const struct dv_conf_range *r)
{
	if (cl->mcred.uid == cl->cred.uid && cl->mcred.gid == cl->cred.gid)
		return dv_conf_range_allows(r, cl->mcred.uid, cl->gids, cl->n_gids);
	return dv_conf_range_allows(r, cl->mcred.uid, &cl->mcred.gid, 1);
}

/* The sender's credentials (SCM_CREDENTIALS, filled in by the kernel) are
 * the caller's identity; nothing in the message is trusted. */
static enum dv_result authorize(struct dv_client *cl, const struct dv_request *req, const struct dv_control_target *t,
				char *why, size_t size)
{
	const struct dv_conf_range *r = t->range;
	char s[DV_ADDR_STRLEN], rs[DV_ADDR_STRLEN];

	dv_addr_fmt(&req->addr, s);
	/* A client can only ever release its own API hold or standby. */
	if (req->type == DV_MSG_RELEASE && t->own)
		return DV_R_OK;
	/* A socket hold lasts as long as a socket is bound to the address
	 * (sock_diag ends it), whoever asks. */
	if (req->type == DV_MSG_RELEASE && req->kind == DV_KIND_SOCKET) {
		snprintf(why, size, "a socket hold on %s ends only when its sockets close", s);
		return DV_R_PERM;
	}
	/* An operator activation is its maker's (and root's) to end. */
	if (req->type == DV_MSG_RELEASE && req->kind == DV_KIND_OPERATOR && t->operator_hold && cl->mcred.uid != 0 &&
	    t->operator_uid != cl->mcred.uid) {
		snprintf(why, size,
			 "the activation of %s on node %s was made by uid %u: only that uid or root may "
			 "deactivate it",
			 s, t->node, (unsigned)t->operator_uid);
		return DV_R_PERM;
	}
	if (cl->mcred.uid == 0)
		return r || t->defined || req->type == DV_MSG_RELEASE ? DV_R_OK : DV_R_NORANGE;
	if (!r) {
		if (t->defined || req->type == DV_MSG_RELEASE) {
			snprintf(why, size, "uid %u may not use address %s: only root may, it is in no VIPARANGE",
				 (unsigned)cl->mcred.uid, s);
			return DV_R_PERM;
		}
		return DV_R_NORANGE;
	}
	if (!range_allows(cl, r)) {
		snprintf(why, size, "uid %u is not allowed to use range %s (see its ALLOW list)",
			 (unsigned)cl->mcred.uid, dv_prefix_fmt(&r->prefix, rs));
		return DV_R_PERM;
	}
	return DV_R_OK;
}

static const char *cluster_op_name(uint16_t type)
{
	switch (type) {
	case DV_MSG_MOVE:
		return "move a VIPA";
	case DV_MSG_DEACTIVATE:
		return "deactivate a define";
	case DV_MSG_REACTIVATE:
		return "reactivate a define";
	case DV_MSG_LEAVE:
		return "make a node leave the group";
	case DV_MSG_QUIESCE:
		return "quiesce a distributed VIPA";
	case DV_MSG_RESUME:
		return "resume a distributed VIPA";
	default:
		return "make a node join the group";
	}
}

/* Frame and decode; on failure the reason is in msg and -EINVAL returned. */
static int parse_request(const uint8_t *buf, size_t n, struct dv_request *req, char *msg, size_t len)
{
	const char *why = NULL;
	struct dv_msg m;
	int r;

	r = dv_msg_parse(buf, n, &m);
	if (r == -EPROTONOSUPPORT) {
		snprintf(msg, len, "protocol version not supported (dvipad speaks version %d)", DV_PROTO_VERSION);
		return -EINVAL;
	}
	if (r < 0) {
		snprintf(msg, len, "malformed message of %zu bytes", n);
		return -EINVAL;
	}
	r = dv_request_decode(&m, req, &why);
	if (r < 0) {
		snprintf(msg, len, "bad request: %s", why ? why : "malformed");
		return -EINVAL;
	}
	return 0;
}

static void bad_message(struct dv_client *cl, uint32_t seq, const char *msg)
{
	send_result(cl, seq, NULL, DV_R_BADREQ, msg);
	if (++cl->bad >= MAX_BAD_MESSAGES) {
		log_warn("client pid %d sent %d malformed messages in a row; disconnecting it", (int)cl->cred.pid,
			 MAX_BAD_MESSAGES);
		cl->dead = true;
	}
}

/* SOURCE_PORTS: anyone may ask (the slice is no secret; binding to the
 * address is what the kernel allows or not). */
static void handle_source_ports(struct dv_client *cl, const struct dv_request *req)
{
	struct dv_control *c = cl->ctl;
	struct dv_msgb *b = &c->msgb;
	char msg[DV_REASON_MAX] = "";
	uint16_t lo = 0, hi = 0;
	enum dv_result r = c->ops->source_ports(c->ud, &req->addr, &lo, &hi, msg, sizeof(msg));

	dv_msgb_init(b, DV_MSG_RESULT, req->seq);
	dv_msgb_put_u32(b, DV_A_RESULT, r);
	dv_msgb_put_str(b, DV_A_REASON, msg);
	dv_msgb_put_addr(b, &req->addr);
	if (r == DV_R_OK && lo)
		dv_msgb_put_u32(b, DV_A_PORT_RANGE, (uint32_t)lo << 16 | hi);
	client_send(cl, b);
}

/* ACTIVATE, RELEASE and STANDBY: allowed by the range's ALLOW list. */
static void handle_address_op(struct dv_client *cl, const struct dv_request *req, const struct dv_control_target *t)
{
	struct dv_control *c = cl->ctl;
	char msg[DV_REASON_MAX], s[DV_ADDR_STRLEN];
	enum dv_result ar;

	msg[0] = 0;
	ar = authorize(cl, req, t, msg, sizeof(msg));
	/* No range may hold such an address (dv_prefix_unusable): say why
	 * rather than that none does. */
	if (ar == DV_R_NORANGE && dv_addr_unusable(&req->addr)) {
		ar = DV_R_BADREQ;
		snprintf(msg, sizeof(msg), "address %s cannot be a VIPA (%s)", dv_addr_fmt(&req->addr, s),
			 dv_addr_unusable(&req->addr)->what);
	} else if (ar == DV_R_NORANGE) {
		snprintf(msg, sizeof(msg), "address %s is in no VIPARANGE of node %s", dv_addr_fmt(&req->addr, s),
			 t->node);
	}
	if (ar != DV_R_OK) {
		log_refused(cl, &req->addr, ar, msg);
		send_result(cl, req->seq, &req->addr, ar, msg);
		return;
	}
	c->ops->request(c->ud, cl->id, &cl->mcred, req);
}

static void handle_cluster_op(struct dv_client *cl, const struct dv_request *req)
{
	struct dv_control *c = cl->ctl;
	char msg[DV_REASON_MAX], s[DV_ADDR_STRLEN];

	/* Cluster operations are the administrator's, whatever the
	 * ranges' ALLOW lists say. */
	if (cl->mcred.uid != 0) {
		snprintf(msg, sizeof(msg), "only root may %s", cluster_op_name(req->type));
		log_refused(cl, req->has_addr ? &req->addr : NULL, DV_R_PERM, msg);
		send_result(cl, req->seq, req->has_addr ? &req->addr : NULL, DV_R_PERM, msg);
		return;
	}
	log_notice("%s%s%s%s%s requested by pid %d", cluster_op_name(req->type), req->has_addr ? " " : "",
		   req->has_addr ? dv_addr_fmt(&req->addr, s) : "", req->node[0] ? " on node " : "", req->node,
		   (int)cl->mcred.pid);
	/* Checked against this node's VIPADISTRIBUTE, then replicated (the
	 * engine answers). */
	if (req->type == DV_MSG_QUIESCE || req->type == DV_MSG_RESUME) {
		enum dv_result r;

		msg[0] = '\0';
		r = c->ops->quiesce(c->ud, req, msg, sizeof(msg));
		if (r != DV_R_OK) {
			log_refused(cl, &req->addr, r, msg);
			send_result(cl, req->seq, &req->addr, r, msg);
			return;
		}
	}
	c->ops->request(c->ud, cl->id, &cl->mcred, req);
}

/* Returns true for a request whose answer walks the whole table (status,
 * config, reload): one per wakeup, so that kernel work runs in between. */
static bool handle_message(struct dv_client *cl, const uint8_t *buf, size_t n)
{
	struct dv_control *c = cl->ctl;
	struct dv_control_target t = {0};
	struct dv_request req;
	char msg[DV_REASON_MAX];
	uint32_t seq = 0;

	if (n >= sizeof(struct dv_msg_hdr))
		memcpy(&seq, buf + offsetof(struct dv_msg_hdr, seq), sizeof(seq));
	if (parse_request(buf, n, &req, msg, sizeof(msg)) < 0) {
		bad_message(cl, seq, msg);
		return false;
	}
	cl->bad = 0;
	dv_metrics_request(req.type);

	if (req.has_addr)
		c->ops->resolve(c->ud, &req, &t);
	/* "deactivate ADDR" without a node: the operator's hold if this node
	 * has one, else this node's define of ADDR (VARY ... DEACTIVATE). */
	if (t.define_op)
		req.type = DV_MSG_DEACTIVATE;

	switch (req.type) {
	case DV_MSG_ACTIVATE:
	case DV_MSG_RELEASE:
	case DV_MSG_STANDBY:
		handle_address_op(cl, &req, &t);
		return false;
	case DV_MSG_MOVE:
	case DV_MSG_DEACTIVATE:
	case DV_MSG_REACTIVATE:
	case DV_MSG_LEAVE:
	case DV_MSG_JOIN:
	case DV_MSG_QUIESCE:
	case DV_MSG_RESUME:
		handle_cluster_op(cl, &req);
		return false;
	case DV_MSG_STATUS:
	case DV_MSG_CONFIG:
	case DV_MSG_TARGETS:
	case DV_MSG_CONNS:
		relay_records(cl, &req);
		return true;
	case DV_MSG_RELOAD:
		do_reload(cl, &req);
		return true;
	case DV_MSG_METRICS:
		relay_metrics(cl, &req);
		return true;
	case DV_MSG_MONITOR:
		subscribe(cl, &req);
		return false;
	case DV_MSG_SOURCE_PORTS:
		handle_source_ports(cl, &req);
		return false;
	default:
		snprintf(msg, sizeof(msg), "message type %u is not a request", req.type);
		bad_message(cl, seq, msg);
	}
	return false;
}

/* recv() of one message, MSG_TRUNC (an oversized message shows its real
 * size), with its sender's credentials in cl->mcred: the kernel gives them
 * with every message (SO_PASSCRED); without them, those of the connection. */
static ssize_t recv_with_creds(struct dv_client *cl, int fd, uint8_t *buf, size_t size)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(struct ucred))];
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof(cm)};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);

	cl->mcred = cl->cred;
	if (n < 0)
		return n;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
		struct ucred u;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_CREDENTIALS ||
		    h->cmsg_len != CMSG_LEN(sizeof(struct ucred)))
			continue;
		memcpy(&u, CMSG_DATA(h), sizeof(u));
		/* pid 0: the kernel stamped nothing (the overflow uid would
		 * come with it); the connection's credentials stand. */
		if (u.pid != 0)
			cl->mcred = u;
	}
	return n;
}

static int client_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct dv_client *cl = ud;
	struct dv_control *c = cl->ctl;

	if (revents & EPOLLOUT && !client_flush(cl))
		cl->dead = true;

	for (int i = 0; i < MAX_PER_WAKEUP && !cl->dead && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)); i++) {
		/* MSG_TRUNC returns the real size: an oversized message is
		 * detected, not silently cut. */
		ssize_t n = recv_with_creds(cl, fd, c->rxbuf, sizeof(c->rxbuf));

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			cl->dead = true;
			break;
		}
		if (n == 0) {
			cl->dead = true;
			break;
		}
		if ((size_t)n > sizeof(c->rxbuf)) {
			char msg[DV_REASON_MAX];
			uint32_t seq;

			memcpy(&seq, c->rxbuf + offsetof(struct dv_msg_hdr, seq), sizeof(seq));
			snprintf(msg, sizeof(msg), "message of %zd bytes exceeds the maximum of %d", n, DV_MSG_MAX);
			send_result(cl, seq, NULL, DV_R_BADREQ, msg);
			if (++cl->bad >= MAX_BAD_MESSAGES)
				cl->dead = true;
			continue;
		}
		if (handle_message(cl, c->rxbuf, (size_t)n))
			break;
	}
	if (cl->dead)
		client_free(cl, true);
	return 0;
}

static int read_groups(int fd, gid_t **ret, size_t *ret_n)
{
	socklen_t len = 64 * sizeof(gid_t);

	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = malloc(len);

		if (!g)
			return -ENOMEM;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
			*ret = g;
			*ret_n = len / sizeof(gid_t);
			return 0;
		}
		free(g);
		if (errno != ERANGE)
			return -errno;
	}
	return -ERANGE;
}

/* Why a new connection of uid is refused, or NULL: the global cap, the
 * part of it kept for root, the cap per uid. */
static const char *over_cap(const struct dv_control *c, uid_t uid)
{
	const struct uid_acct *a;

	if (c->n_clients >= DV_CONTROL_MAX_CLIENTS)
		return "the daemon has its maximum of connections";
	if (uid == 0)
		return NULL;
	if (c->n_clients >= DV_CONTROL_MAX_CLIENTS - DV_CONTROL_ROOT_RESERVE)
		return "the remaining connections are kept for root";
	a = acct_find(c, uid);
	if (a && a->clients >= DV_CONTROL_MAX_PER_UID)
		return "this uid has its maximum of connections";
	return NULL;
}

/* A connection refused at the door is told why before it is closed: a
 * RESULT of seq 0 (no request has that seq), which dvipactl, libdvipa and
 * the shim show as the reason. Best effort: the socket is new and empty. */
static void say_refused(struct dv_control *c, int fd, const char *why)
{
	struct dv_msgb *b = &c->msgb;
	char msg[DV_REASON_MAX];

	snprintf(msg, sizeof(msg), "dvipad refused the connection: %s", why);
	dv_msgb_init(b, DV_MSG_RESULT, 0);
	dv_msgb_put_u32(b, DV_A_RESULT, DV_R_LIMIT);
	dv_msgb_put_str(b, DV_A_REASON, msg);
	if (dv_msgb_finish(b) == 0)
		(void)send(fd, b->buf, b->len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int resume_accepts(sd_event_source *s, uint64_t usec, void *ud)
{
	struct dv_control *c = ud;

	c->pause_src = sd_event_source_disable_unref(c->pause_src);
	(void)sd_event_source_set_enabled(c->io, SD_EVENT_ON);
	return 0;
}

/* Out of descriptors or memory: the listener stays readable, and retrying
 * at once would spin. Pause accepting for a moment instead. */
static void pause_accepts(struct dv_control *c, int err)
{
	dv_log_limited(&c->rl_accept, 10, LOG_WARNING,
		       "cannot accept control connections: %s; pausing accepts for %d ms", strerror(err),
		       ACCEPT_PAUSE_MS);
	if (c->pause_src)
		return;
	if (sd_event_add_time_relative(c->ev, &c->pause_src, CLOCK_MONOTONIC, ACCEPT_PAUSE_MS * 1000ULL, 1000,
				       resume_accepts, c) < 0)
		return; /* keep accepting: a spin is better than a deaf daemon */
	(void)sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
}

static int listen_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct dv_control *c = ud;

	for (;;) {
		socklen_t len = sizeof(struct ucred);
		struct dv_client *cl;
		const char *why;
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int r;

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accepts(c, errno);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				dv_log_limited(&c->rl_accept, 10, LOG_WARNING, "accept on the control socket: %s",
					       strerror(errno));
			return 0;
		}
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(cfd);
			continue;
		}
		cl->fd = cfd;
		cl->ctl = c;
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cl->cred, &len) < 0 ||
		    read_groups(cfd, &cl->gids, &cl->n_gids) < 0) {
			log_warn("cannot read the credentials of a control connection: %s", strerror(errno));
			close(cfd);
			free(cl);
			continue;
		}
		why = over_cap(c, cl->cred.uid);
		if (why) {
			dv_log_limited(&c->rl_full, 10, LOG_WARNING,
				       "refused a control connection of uid %u (pid %d): %s (%d in all, %d per uid, "
				       "%d kept for root)",
				       (unsigned)cl->cred.uid, (int)cl->cred.pid, why, DV_CONTROL_MAX_CLIENTS,
				       DV_CONTROL_MAX_PER_UID, DV_CONTROL_ROOT_RESERVE);
			say_refused(c, cfd, why);
			free(cl->gids);
			close(cfd);
			free(cl);
			continue;
		}
		cl->acct = acct_get(c, cl->cred.uid);
		if (!cl->acct) {
			free(cl->gids);
			close(cfd);
			free(cl);
			continue;
		}
		cl->acct->clients++;
		r = sd_event_add_io(c->ev, &cl->io, cfd, EPOLLIN, client_io, cl);
		if (r >= 0)
			(void)sd_event_source_set_priority(cl->io, cl->cred.uid == 0 ? DV_PRIO_ROOT : DV_PRIO_CLIENTS);
		if (r < 0) {
			log_warn("cannot watch a control connection: %s", strerror(-r));
			acct_put(c, cl->acct);
			free(cl->gids);
			close(cfd);
			free(cl);
			continue;
		}
		cl->id = c->next_id++;
		cl->next_bucket = c->buckets[cl->id % CLIENT_BUCKETS];
		c->buckets[cl->id % CLIENT_BUCKETS] = cl;
		cl->next = c->clients;
		if (c->clients)
			c->clients->prev = cl;
		c->clients = cl;
		c->n_clients++;
	}
}

/* The socket's directory, when it has one other than "/". */
static int make_socket_dir(const char *path)
{
	char *dir, *slash;
	int r = 0;

	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			r = -errno;
	}
	free(dir);
	return r;
}

/* Refuse to steal the socket of a daemon that still answers. */
static bool socket_answers(const struct sockaddr_un *sa)
{
	int probe, r;

	probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return false;
	r = connect(probe, (const struct sockaddr *)sa, sizeof(*sa));
	close(probe);
	return r == 0;
}

static int bind_listen(struct dv_control *c, const struct sockaddr_un *sa)
{
	const int one = 1;
	int r;

	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* SO_PASSCRED on the listener: a connection inherits it as it is
	 * accepted, so the kernel stamps every request with its sender's
	 * credentials, also one sent before dvipad accepted it (set after
	 * accept(), a request sent in between came without). */
	if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -errno;
	/* Anyone may connect: reading status needs no privilege, and every
	 * change is authorized per request with its sender's credentials. */
	if (chmod(sa->sun_path, 0666) < 0 || listen(c->fd, 128) < 0)
		return -errno;
	r = sd_event_add_io(c->ev, &c->io, c->fd, EPOLLIN, listen_io, c);
	if (r >= 0)
		(void)sd_event_source_set_priority(c->io, DV_PRIO_ROOT);
	return r;
}

static int reap_dead(sd_event_source *s, void *ud);

int dv_control_open(sd_event *ev, const char *path, const struct dv_control_ops *ops, void *ud, struct dv_control **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct dv_control *c;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ev = ev;
	c->ops = ops;
	c->ud = ud;
	c->fd = -1;
	c->next_id = 1;
	c->path = strdup(path);
	r = c->path ? make_socket_dir(path) : -ENOMEM;
	if (r < 0)
		goto fail;
	if (socket_answers(&sa)) {
		r = -EADDRINUSE;
		goto fail;
	}
	(void)unlink(path);
	r = bind_listen(c, &sa);
	if (r >= 0)
		r = sd_event_add_defer(ev, &c->reap, reap_dead, c);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->reap, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->reap);
	if (c->fd >= 0)
		close(c->fd);
	free(c->path);
	free(c);
	return r;
}

/* ---- changes to the monitors ---- */

static int reap_dead(sd_event_source *s, void *ud)
{
	struct dv_control *c = ud;
	struct dv_client *cl, *next;

	for (cl = c->clients; cl; cl = next) {
		next = cl->next;
		if (cl->dead)
			client_free(cl, true);
	}
	(void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
	return 0;
}

size_t dv_control_clients(const struct dv_control *c)
{
	return c->n_clients;
}

bool dv_control_monitored(const struct dv_control *c)
{
	return c && c->n_monitors > 0;
}

struct dv_msgb *dv_control_change_begin(struct dv_control *c)
{
	dv_msgb_init(&c->msgb, DV_MSG_RECORD, 0);
	dv_msgb_put_u32(&c->msgb, DV_A_RECTYPE, DV_REC_CHANGE);
	return &c->msgb;
}

/* A monitor that does not keep up gets one last RESULT saying so and is
 * closed once that is sent: its queue stays below DV_CONTROL_MONITOR_QUEUED,
 * however fast changes come. */
static void monitor_overrun(struct dv_client *cl)
{
	struct dv_msgb *b = &cl->ctl->overrun;
	char msg[DV_REASON_MAX];

	dv_log_limited(&cl->ctl->rl_queued, 10, LOG_WARNING,
		       "monitor client %" PRIu64
		       " (pid %d, uid %u) does not keep up with the changes; disconnecting it",
		       cl->id, (int)cl->cred.pid, (unsigned)cl->cred.uid);
	snprintf(msg, sizeof(msg), "overrun: the monitor did not read %zu bytes of changes; it missed changes",
		 cl->out_bytes);
	/* What waits is dropped now, not when the reader gets to it: it may
	 * never read again. */
	queue_drop(cl);
	dv_msgb_init(b, DV_MSG_RESULT, cl->monitor_seq);
	dv_msgb_put_u32(b, DV_A_RESULT, DV_R_LIMIT);
	dv_msgb_put_str(b, DV_A_REASON, msg);
	cl->monitor_seq = 0;
	cl->ctl->n_monitors--;
	cl->closing = true;
	if (dv_msgb_finish(b) == 0)
		client_queue(cl, b->buf, b->len, false);
	if (!cl->out_head)
		cl->dead = true;
}

void dv_control_change_send(struct dv_control *c)
{
	struct dv_msgb *b = &c->msgb;
	bool reap = false;

	if (dv_msgb_finish(b) < 0) {
		log_err("dropping an oversized change record");
		return;
	}
	for (struct dv_client *cl = c->clients; cl; cl = cl->next) {
		if (!cl->monitor_seq || cl->dead)
			continue;
		if (cl->out_bytes + b->len > DV_CONTROL_MONITOR_QUEUED) {
			monitor_overrun(cl);
			reap |= cl->dead;
			continue;
		}
		memcpy(b->buf + offsetof(struct dv_msg_hdr, seq), &cl->monitor_seq, sizeof(cl->monitor_seq));
		client_queue(cl, b->buf, b->len, true);
		reap |= cl->dead;
	}
	/* Not freed here: the caller is in the middle of applying an event. */
	if (reap && c->reap)
		(void)sd_event_source_set_enabled(c->reap, SD_EVENT_ONESHOT);
}

size_t dv_control_queued(const struct dv_control *c)
{
	const struct uid_acct *a;
	size_t n = 0;

	DV_HASHTAB_FOREACH(a, &c->uids)
		n += a->queued;
	return n;
}

struct dv_control *dv_control_free(struct dv_control *c)
{
	if (!c)
		return NULL;
	/* At teardown the engine is going away too: no CLIENT_GONE events. */
	while (c->clients)
		client_free(c->clients, false);
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->pause_src);
	sd_event_source_disable_unref(c->reap);
	if (c->fd >= 0) {
		close(c->fd);
		(void)unlink(c->path);
	}
	dv_hashtab_clear(&c->uids); /* the accounts went with their clients */
	free(c->path);
	free(c);
	return NULL;
}
