/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CLUSTER COROSYNC: the ordered stream is a Corosync CPG group.
 *
 * Every engine event is multicast with CPG_TYPE_AGREED and applied by every
 * member, the sender included, when CPG delivers it. CPG configuration
 * changes arrive in the same agreed order as messages: each becomes a local
 * MEMBERSHIP event (never multicast: every member sees the same change at
 * the same point of the stream).
 *
 * State transfer. On a configuration change with joined members, the state
 * source is the lowest node id among the members that did not join (they
 * were together before), or the lowest member when everybody is new. The
 * source snapshots its engine at that point of the stream, before any later
 * message, and multicasts it as STATE. Every member then buffers events
 * until the first STATE for the current view arrives: a node whose own
 * source sent it already has that state and just applies the buffer; any
 * other node (a joiner, or the losing side of a merge) restores it first.
 * "First STATE wins" keeps a merge of two partitions, each with its own
 * source, converging on one state. A quorate side's source sends at once;
 * the others wait (longer the longer ago they lost quorum, see defer_us)
 * and send only if nothing came.
 *
 * Quorum comes from Corosync's quorum service: a change is reported to the
 * daemon at once (local_quorum: on loss it drops its addresses without
 * waiting for the stream), and the lowest member multicasts a QUORUM event
 * so that every engine applies it at the same point of the stream.
 *
 * Wire: one byte of kind, then EVENT: dv_event_encode(); STATE: u32 count,
 * count u32 member ids (the view it is for), the engine snapshot. All
 * little-endian. Anything malformed from a peer is logged and dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <unistd.h>

#include <corosync/cpg.h>
#include <corosync/quorum.h>

#include "clock.h"
#include "cluster.h"
#include "log.h"
#include "wire.h"

enum { MSG_EVENT = 1, MSG_STATE = 2 };

#define DEFER_STATE_US 500000 /* a non-quorate side's state, if no other comes */
#define SYNC_TIMEOUT_S 10     /* no usable state: leave and join again */
#define RETRY_US 5000	      /* CPG flow control: retry sends after 5 ms */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define QUEUE_MAX 65536 /* messages waiting for flow control */
#define QUEUE_MAX_BYTES (256u << 20)
#define BUFFER_MAX 65536 /* events buffered while waiting for STATE */
#define BUFFER_MAX_BYTES (256u << 20)

struct pending {
	STAILQ_ENTRY(pending) link;
	size_t len;
	uint8_t buf[];
};

/* An event delivered while waiting for STATE, or a configuration change
 * (n_members set, buf NULL) that came meanwhile. */
struct item {
	uint32_t sender;
	uint8_t *buf;
	size_t len;
	dv_nodeid_t *members;
	size_t n_members;
};

struct corosync {
	struct dv_cluster c; /* first: the vtable functions cast back */
	sd_event *ev;
	struct cpg_name group;
	char group_str[DV_GROUP_NAME_MAX];

	cpg_handle_t cpg;
	quorum_handle_t quorum;
	bool has_cpg, has_quorum, up;
	sd_event_source *cpg_src, *quorum_src, *retry_src, *recon_src;
	uint64_t backoff_ms;
	bool broken; /* noticed inside a callback; torn down after dispatch */

	/* The group as this node saw it last (sorted). */
	bool joined;
	dv_nodeid_t *view;
	size_t n_view;

	bool has_state; /* the engine holds the group's state */
	bool in_sync;	/* connected(true) reported on this connection */
	bool waiting;	/* for the first STATE of the current view */
	dv_nodeid_t source;
	struct item *items;
	size_t n_items, cap_items, items_bytes;

	STAILQ_HEAD(, pending) queue;
	size_t q_n, q_bytes;
	size_t flow_episode; /* messages queued since the queue was last empty */

	bool local_quorate;
	int stream_quorate;	    /* the last QUORUM applied from the stream; -1: unknown */
	bool quorum_due;	    /* a membership was applied and no QUORUM since */
	uint64_t quorum_lost_us;    /* CLOCK_MONOTONIC when local quorum was last lost; 0: never quorate */
	sd_event_source *defer_src; /* a non-quorate source's deferred STATE */
	sd_event_source *sync_src;  /* gives up waiting for a STATE */
};

static void schedule_lost(struct corosync *cs);

static int id_cmp(const void *a, const void *b)
{
	dv_nodeid_t x = *(const dv_nodeid_t *)a, y = *(const dv_nodeid_t *)b;

	return (x > y) - (x < y);
}

/* ---- sending, with flow control ---- */

static int mcast(struct corosync *cs, const uint8_t *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	cs_error_t err = cpg_mcast_joined(cs->cpg, CPG_TYPE_AGREED, &iov, 1);

	if (err == CS_OK)
		return 0;
	if (err == CS_ERR_TRY_AGAIN)
		return -EAGAIN;
	log_err("corosync: cannot multicast to group '%s': error %d", cs->group_str, (int)err);
	return -EIO;
}

static int flush_queue(struct corosync *cs)
{
	while (!STAILQ_EMPTY(&cs->queue)) {
		struct pending *p = STAILQ_FIRST(&cs->queue);
		int r = mcast(cs, p->buf, p->len);

		if (r == -EAGAIN)
			return r;
		if (r < 0) {
			schedule_lost(cs);
			return r;
		}
		STAILQ_REMOVE_HEAD(&cs->queue, link);
		cs->q_n--;
		cs->q_bytes -= p->len;
		free(p);
	}
	if (cs->flow_episode) {
		log_info("corosync: flow control: %zu message(s) waited, sent now", cs->flow_episode);
		cs->flow_episode = 0;
	}
	return 0;
}

static int retry_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;

	if (cs->up && flush_queue(cs) == -EAGAIN) {
		(void)sd_event_source_set_time_relative(s, RETRY_US);
		(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

static void arm_retry(struct corosync *cs)
{
	if (!cs->retry_src) {
		if (sd_event_add_time_relative(cs->ev, &cs->retry_src, CLOCK_MONOTONIC, RETRY_US, 1000, retry_tick,
					       cs) < 0)
			log_err("corosync: cannot arm the send retry timer");
		return;
	}
	(void)sd_event_source_set_time_relative(cs->retry_src, RETRY_US);
	(void)sd_event_source_set_enabled(cs->retry_src, SD_EVENT_ONESHOT);
}

/* Multicast kind + a + b; queued behind earlier messages under flow control. */
static int send_msg(struct corosync *cs, uint8_t kind, const void *a, size_t alen, const void *b, size_t blen)
{
	size_t len = 1 + alen + blen;
	struct pending *p;
	int r;

	if (!cs->up)
		return -ENOTCONN;
	if (cs->q_n >= QUEUE_MAX || cs->q_bytes + len > QUEUE_MAX_BYTES)
		return -ENOBUFS;
	p = malloc(sizeof(*p) + len);
	if (!p)
		return -ENOMEM;
	p->len = len;
	p->buf[0] = kind;
	if (alen)
		memcpy(p->buf + 1, a, alen);
	if (blen)
		memcpy(p->buf + 1 + alen, b, blen);
	if (STAILQ_EMPTY(&cs->queue)) {
		r = mcast(cs, p->buf, p->len);
		if (r == 0) {
			free(p);
			return 0;
		}
		if (r != -EAGAIN) {
			free(p);
			schedule_lost(cs);
			return r;
		}
		arm_retry(cs);
	}
	cs->flow_episode++;
	STAILQ_INSERT_TAIL(&cs->queue, p, link);
	cs->q_n++;
	cs->q_bytes += len;
	return 0;
}

static int send_event(struct corosync *cs, const struct dv_event *ev)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = dv_event_encode(ev, &buf, &len);

	if (r < 0)
		return r;
	r = send_msg(cs, MSG_EVENT, buf, len, NULL, 0);
	free(buf);
	return r;
}

static void set_local_quorum(struct corosync *cs, bool quorate)
{
	if (cs->local_quorate != quorate)
		log_notice("corosync: this node's partition %s quorum", quorate ? "has" : "lost");
	if (cs->local_quorate && !quorate)
		cs->quorum_lost_us = dv_mono_us();
	cs->local_quorate = quorate;
	cs->c.ops->local_quorum(cs->c.ud, quorate);
}

/* The lowest member puts the quorum state into the stream when it differs
 * from what the stream says, or a membership change wants it confirmed
 * (see deliver_membership). The state is asked afresh: the quorum
 * notification and the CPG change come through different connections, and
 * a stale "not quorate" would make every node drop its addresses. */
static void send_quorum(struct corosync *cs)
{
	struct dv_event ev = {.type = DV_EV_QUORUM};
	int q = 0;
	int r;

	if (quorum_getquorate(cs->quorum, &q) == CS_OK && !!q != cs->local_quorate)
		set_local_quorum(cs, !!q);
	if (!cs->joined || cs->n_view == 0 || cs->view[0] != cs->c.self ||
	    (cs->stream_quorate == cs->local_quorate && !cs->quorum_due))
		return;
	ev.node = cs->c.self;
	/* Owners chosen at this event (after members left) get their "since"
	 * from it. */
	ev.time_ms = dv_wall_ms();
	ev.quorum.quorate = cs->local_quorate;
	r = send_event(cs, &ev);
	if (r < 0)
		log_err("corosync: cannot multicast the quorum state: %s", strerror(-r));
}

static void send_state(struct corosync *cs)
{
	struct dv_wbuf hdr = {0};
	uint8_t *snap = NULL;
	size_t len = 0;
	int r;

	r = cs->c.ops->snapshot(cs->c.ud, &snap, &len);
	if (r < 0) {
		log_err("corosync: cannot take a snapshot of the engine for joining nodes: %s", strerror(-r));
		schedule_lost(cs); /* the joiners would wait for ever */
		return;
	}
	dv_w_u32(&hdr, cs->n_view);
	for (size_t i = 0; i < cs->n_view; i++)
		dv_w_u32(&hdr, cs->view[i]);
	if (hdr.err) {
		free(hdr.data);
		free(snap);
		schedule_lost(cs);
		return;
	}
	r = send_msg(cs, MSG_STATE, hdr.data, hdr.len, snap, len);
	free(hdr.data);
	free(snap);
	if (r < 0) {
		log_err("corosync: cannot multicast the state for joining nodes: %s", strerror(-r));
		schedule_lost(cs);
	} else {
		log_info("corosync: sent the state (%zu bytes) to the group", len);
	}
}

/* ---- delivery ---- */

/* After a membership that lost members the engine chooses no new owner
 * until a QUORUM event confirms the partition's quorum; the lowest member
 * sends one after every membership change, even an unchanged one. */
static void deliver_membership(struct corosync *cs, const dv_nodeid_t *m, size_t n)
{
	struct dv_event ev = {.type = DV_EV_MEMBERSHIP, .node = cs->c.self, .membership = {.n = n, .nodes = m}};

	cs->quorum_due = true;
	cs->c.ops->deliver(cs->c.ud, &ev);
}

static void apply_event(struct corosync *cs, uint32_t sender, const uint8_t *buf, size_t len)
{
	struct dv_event ev;
	void *storage = NULL;

	if (dv_event_decode(buf, len, &ev, &storage) < 0) {
		log_warn("corosync: dropped a malformed event (%zu bytes) from node %u", len, sender);
		return;
	}
	if (ev.node != sender || ev.type == DV_EV_MEMBERSHIP) {
		log_warn("corosync: dropped an event of type %d from node %u claiming to come from node %u", ev.type,
			 sender, ev.node);
		free(storage);
		return;
	}
	if (ev.type == DV_EV_QUORUM) {
		cs->stream_quorate = ev.quorum.quorate;
		cs->quorum_due = false;
	}
	cs->c.ops->deliver(cs->c.ud, &ev);
	free(storage);
}

static void item_free(struct item *it)
{
	free(it->buf);
	free(it->members);
}

static void items_clear(struct corosync *cs, size_t upto)
{
	for (size_t i = 0; i < upto; i++) {
		cs->items_bytes -= cs->items[i].len;
		item_free(&cs->items[i]);
	}
	if (cs->n_items > upto)
		memmove(cs->items, cs->items + upto, (cs->n_items - upto) * sizeof(*cs->items));
	cs->n_items -= upto;
}

static int items_add(struct corosync *cs, const struct item *it)
{
	if (cs->n_items >= BUFFER_MAX || cs->items_bytes + it->len > BUFFER_MAX_BYTES) {
		log_err("corosync: too many events while waiting for the group's state");
		return -ENOBUFS;
	}
	if (cs->n_items == cs->cap_items) {
		size_t ncap = cs->cap_items ? 2 * cs->cap_items : 64;
		struct item *n = realloc(cs->items, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		cs->items = n;
		cs->cap_items = ncap;
	}
	cs->items[cs->n_items++] = *it;
	cs->items_bytes += it->len;
	return 0;
}

/* Apply what was buffered, in order. */
static void items_apply(struct corosync *cs)
{
	/* Applying may not add items (waiting is over), but take them out
	 * first so that a reconnect from a callback finds a clean list. */
	struct item *its = cs->items;
	size_t n = cs->n_items;

	cs->items = NULL;
	cs->n_items = cs->cap_items = cs->items_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (!cs->broken) {
			if (its[i].buf)
				apply_event(cs, its[i].sender, its[i].buf, its[i].len);
			else
				deliver_membership(cs, its[i].members, its[i].n_members);
		}
		item_free(&its[i]);
	}
	free(its);
}

static void report_sync(struct corosync *cs)
{
	if (!cs->in_sync)
		log_notice("corosync: in sync with group '%s' as node %u (%zu member(s))", cs->group_str, cs->c.self,
			   cs->n_view);
	cs->in_sync = true;
	cs->c.ops->connected(cs->c.ud, true);
}

static void on_state(struct corosync *cs, uint32_t sender, const uint8_t *p, size_t len)
{
	struct dv_rbuf hdr = {.data = p, .len = len};
	size_t n, hlen;
	bool restore;
	int r;

	if (len < 4) {
		log_warn("corosync: dropped a short state message from node %u", sender);
		return;
	}
	n = dv_r_u32(&hdr);
	if (n > DV_ENGINE_MAX_NODES || len < 4 + 4 * n) {
		log_warn("corosync: dropped a malformed state message from node %u", sender);
		return;
	}
	hlen = 4 + 4 * n;
	if (!cs->waiting)
		return;
	/* A state for an earlier view: the one for the current view follows. */
	if (n != cs->n_view)
		return;
	for (size_t i = 0; i < n; i++)
		if (dv_r_u32(&hdr) != cs->view[i])
			return;

	restore = !(cs->has_state && sender == cs->source);
	if (restore) {
		size_t last = 0;

		r = cs->c.ops->restore(cs->c.ud, p + hlen, len - hlen);
		if (r < 0) {
			log_err("corosync: the state from node %u is unusable (%s); waiting for another", sender,
				strerror(-r));
			return;
		}
		log_info("corosync: took the group's state (%zu bytes) from node %u", len - hlen, sender);
		cs->stream_quorate = -1;
		/* What was buffered before the latest configuration change is
		 * part of the snapshot. */
		for (size_t i = 0; i < cs->n_items; i++)
			if (!cs->items[i].buf)
				last = i + 1;
		items_clear(cs, last);
		cs->has_state = true;
	}
	cs->waiting = false;
	cs->defer_src = sd_event_source_disable_unref(cs->defer_src);
	cs->sync_src = sd_event_source_disable_unref(cs->sync_src);
	items_apply(cs);
	if (restore || !cs->in_sync)
		report_sync(cs);
	send_quorum(cs);
}

/*
 * How long a source not known to be quorate waits for a quorate side's
 * state before it sends its own. When no side is quorate (a ring that
 * re-formed several times while a node rejoined), "first state wins"
 * should pick the freshest: a side that lost quorum only just now waits
 * that long, one that lost it long ago (a cut-off node) or never had it
 * waits the most.
 */
static uint64_t defer_us(const struct corosync *cs)
{
	uint64_t now = dv_mono_us();

	if (cs->local_quorate)
		return 0;
	if (!cs->quorum_lost_us || now - cs->quorum_lost_us > DEFER_STATE_US)
		return DEFER_STATE_US;
	return now - cs->quorum_lost_us;
}

/* Nobody with quorum sent a state: the deferred one goes after all. */
static int defer_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;

	cs->defer_src = sd_event_source_disable_unref(cs->defer_src);
	if (cs->waiting && cs->source == cs->c.self && !cs->broken) {
		log_info("corosync: no quorate partition sent its state; sending this node's");
		send_state(cs);
	}
	return 0;
}

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
		       size_t len)
{
	struct corosync *cs = NULL;
	const uint8_t *p = msg;

	if (cpg_context_get(handle, (void **)&cs) != CS_OK || !cs || cs->broken)
		return;
	if (len < 1) {
		log_warn("corosync: dropped an empty message from node %u", nodeid);
		return;
	}
	switch (p[0]) {
	case MSG_EVENT:
		if (cs->waiting) {
			struct item it = {.sender = nodeid, .len = len - 1};

			it.buf = malloc(it.len ? it.len : 1);
			if (!it.buf || items_add(cs, &it) < 0) {
				free(it.buf);
				schedule_lost(cs);
				return;
			}
			memcpy(it.buf, p + 1, it.len);
			return;
		}
		apply_event(cs, nodeid, p + 1, len - 1);
		break;
	case MSG_STATE:
		on_state(cs, nodeid, p + 1, len - 1);
		break;
	default:
		log_warn("corosync: dropped a message of unknown kind %u from node %u", p[0], nodeid);
	}
}

/* Processes, not nodes: another CPG client of the group on a node is not
 * that node's dvipad. */
static bool in_list(const struct cpg_address *l, size_t n, uint32_t id, uint32_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (l[i].nodeid == id && l[i].pid == pid)
			return true;
	return false;
}

/* A state that never comes (lost, or unusable here) would leave this node
 * buffering for ever: start over instead. */
static int sync_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;

	cs->sync_src = sd_event_source_disable_unref(cs->sync_src);
	if (cs->waiting) {
		log_err("corosync: no usable state from the group in %d s; joining again", SYNC_TIMEOUT_S);
		schedule_lost(cs);
	}
	return 0;
}

static void arm_sync_timeout(struct corosync *cs)
{
	if (cs->sync_src)
		return; /* from the first change that made this node wait */
	if (sd_event_add_time_relative(cs->ev, &cs->sync_src, CLOCK_MONOTONIC, SYNC_TIMEOUT_S * 1000000ULL, 100000,
				       sync_timeout, cs) < 0)
		log_err("corosync: cannot arm the state transfer timeout");
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group, const struct cpg_address *members,
		       size_t n_members, const struct cpg_address *left, size_t n_left,
		       const struct cpg_address *joined, size_t n_joined)
{
	struct corosync *cs = NULL;
	dv_nodeid_t *view, src = 0;
	size_t n = 0;

	if (cpg_context_get(handle, (void **)&cs) != CS_OK || !cs || cs->broken)
		return;
	if (n_members > DV_ENGINE_MAX_NODES) {
		log_err("corosync: group '%s' has %zu members; at most %d are supported", cs->group_str, n_members,
			DV_ENGINE_MAX_NODES);
		schedule_lost(cs);
		return;
	}
	view = malloc((n_members ? n_members : 1) * sizeof(*view));
	if (!view) {
		schedule_lost(cs);
		return;
	}
	for (size_t i = 0; i < n_members; i++)
		view[n++] = members[i].nodeid;
	qsort(view, n, sizeof(*view), id_cmp);
	/* One dvipad per node: duplicates would be a misconfiguration. */
	{
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (k == 0 || view[k - 1] != view[i])
				view[k++] = view[i];
		n = k;
	}
	free(cs->view);
	cs->view = view;
	cs->n_view = n;
	cs->joined = true;
	for (size_t i = 0; i < n_members; i++)
		if (!in_list(joined, n_joined, members[i].nodeid, members[i].pid) && (!src || members[i].nodeid < src))
			src = members[i].nodeid;
	if (!src && n)
		src = view[0];
	log_info("corosync: group '%s': %zu member(s), %zu joined, %zu left; state source node %u", cs->group_str, n,
		 n_joined, n_left, src);
	/* Members left: this partition may have lost quorum, and the quorum
	 * notification comes through another connection, possibly later.
	 * Ask now, so that the daemon closes its gate before the membership
	 * change grants anything (a standby must not be told to bind to an
	 * address a non-quorate node will not install). */
	if (n_left > 0) {
		int q = 0;

		if (quorum_getquorate(cs->quorum, &q) == CS_OK && !!q != cs->local_quorate)
			set_local_quorum(cs, !!q);
	}

	if (cs->has_state && !cs->waiting) {
		deliver_membership(cs, view, n);
	} else if (cs->has_state) {
		struct item it = {.members = malloc(n * sizeof(*view) + 1), .n_members = n};

		if (!it.members || items_add(cs, &it) < 0) {
			free(it.members);
			schedule_lost(cs);
			return;
		}
		memcpy(it.members, view, n * sizeof(*view));
	} else {
		/* Covered by the snapshot the source takes now. */
		items_clear(cs, cs->n_items);
	}

	cs->defer_src = sd_event_source_disable_unref(cs->defer_src);
	if (n_joined > 0 || cs->waiting) {
		bool merge = false;

		if (src == cs->c.self) {
			if (!cs->has_state) {
				deliver_membership(cs, view, n);
				cs->has_state = true;
			} else if (cs->waiting) {
				items_apply(cs);
			}
			/* Two partitions merge when members that were not
			 * with this node joined and this node did not. A
			 * side not known to be quorate lets the quorate
			 * side's state win, and sends its own only if none
			 * comes. */
			merge = !in_list(joined, n_joined, cs->c.self, (uint32_t)getpid()) && n_joined > 0 &&
				cs->stream_quorate != 1;
			if (!merge)
				send_state(cs);
			else if (sd_event_add_time_relative(cs->ev, &cs->defer_src, CLOCK_MONOTONIC, defer_us(cs), 1000,
							    defer_tick, cs) < 0)
				send_state(cs);
		}
		cs->waiting = true;
		cs->source = src;
		arm_sync_timeout(cs);
	}
	if (!cs->waiting)
		send_quorum(cs);
}

static void on_quorum(quorum_handle_t handle, uint32_t quorate, uint64_t ring_seq, uint32_t n, uint32_t *list)
{
	struct corosync *cs = NULL;

	if (quorum_context_get(handle, (const void **)&cs) != CS_OK || !cs || cs->broken)
		return;
	set_local_quorum(cs, !!quorate);
	if (!cs->waiting)
		send_quorum(cs);
}

/* ---- connection ---- */

static void teardown(struct corosync *cs)
{
	struct pending *p;

	cs->cpg_src = sd_event_source_disable_unref(cs->cpg_src);
	cs->quorum_src = sd_event_source_disable_unref(cs->quorum_src);
	cs->retry_src = sd_event_source_disable_unref(cs->retry_src);
	cs->defer_src = sd_event_source_disable_unref(cs->defer_src);
	cs->sync_src = sd_event_source_disable_unref(cs->sync_src);
	if (cs->has_cpg)
		cpg_finalize(cs->cpg);
	if (cs->has_quorum)
		quorum_finalize(cs->quorum);
	cs->has_cpg = cs->has_quorum = cs->up = false;
	while ((p = STAILQ_FIRST(&cs->queue))) {
		STAILQ_REMOVE_HEAD(&cs->queue, link);
		free(p);
	}
	cs->q_n = cs->q_bytes = cs->flow_episode = 0;
	items_clear(cs, cs->n_items);
	free(cs->view);
	cs->view = NULL;
	cs->n_view = 0;
	cs->joined = cs->has_state = cs->in_sync = cs->waiting = false;
	cs->broken = false;
	cs->stream_quorate = -1;
}

static int recon_tick(sd_event_source *s, uint64_t usec, void *ud);

static void arm_recon(struct corosync *cs, uint64_t ms)
{
	if (!cs->recon_src) {
		if (sd_event_add_time_relative(cs->ev, &cs->recon_src, CLOCK_MONOTONIC, ms * 1000, 1000, recon_tick,
					       cs) < 0)
			log_err("corosync: cannot arm the reconnect timer");
		return;
	}
	(void)sd_event_source_set_time_relative(cs->recon_src, ms * 1000);
	(void)sd_event_source_set_enabled(cs->recon_src, SD_EVENT_ONESHOT);
}

static void lost(struct corosync *cs)
{
	if (!cs->up && !cs->broken)
		return;
	log_err("corosync: lost the connection to Corosync; dropping every address and reconnecting");
	teardown(cs);
	cs->c.ops->connected(cs->c.ud, false);
	cs->backoff_ms = BACKOFF_MIN_MS;
	arm_recon(cs, cs->backoff_ms);
}

/* Noticed where the handles must not be finalized (inside a callback or a
 * send): tear down from the event loop. */
static void schedule_lost(struct corosync *cs)
{
	if (cs->broken)
		return;
	cs->broken = true;
	arm_recon(cs, 0);
}

static int on_cpg_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct corosync *cs = ud;
	cs_error_t err = cpg_dispatch(cs->cpg, CS_DISPATCH_ALL);

	if ((err != CS_OK && err != CS_ERR_TRY_AGAIN) || (revents & (EPOLLHUP | EPOLLERR)) || cs->broken) {
		cs->broken = true;
		lost(cs);
	}
	return 0;
}

static int on_quorum_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct corosync *cs = ud;
	cs_error_t err = quorum_dispatch(cs->quorum, CS_DISPATCH_ALL);

	if ((err != CS_OK && err != CS_ERR_TRY_AGAIN) || (revents & (EPOLLHUP | EPOLLERR)) || cs->broken) {
		cs->broken = true;
		lost(cs);
	}
	return 0;
}

static int try_connect(struct corosync *cs)
{
	cpg_model_v1_data_t md = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = on_deliver,
		.cpg_confchg_fn = on_confchg,
	};
	quorum_callbacks_t qcb = {.quorum_notify_fn = on_quorum};
	uint32_t qtype = 0, nodeid = 0;
	int fd = -1, quorate = 0, r;
	cs_error_t err;

	err = cpg_model_initialize(&cs->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&md, cs);
	if (err != CS_OK)
		return -ENOTCONN;
	cs->has_cpg = true;
	err = quorum_initialize(&cs->quorum, &qcb, &qtype);
	if (err != CS_OK) {
		r = -ENOTCONN;
		goto fail;
	}
	cs->has_quorum = true;
	if (quorum_context_set(cs->quorum, cs) != CS_OK || cpg_local_get(cs->cpg, &nodeid) != CS_OK || nodeid == 0) {
		r = -ENOTCONN;
		goto fail;
	}
	if (cs->c.self && cs->c.self != nodeid)
		log_err("corosync: this node's id changed from %u to %u; restart dvipad", cs->c.self, nodeid);
	else
		cs->c.self = nodeid;
	if (quorum_trackstart(cs->quorum, CS_TRACK_CHANGES) != CS_OK ||
	    quorum_getquorate(cs->quorum, &quorate) != CS_OK) {
		r = -ENOTCONN;
		goto fail;
	}
	if (cpg_fd_get(cs->cpg, &fd) != CS_OK ||
	    sd_event_add_io(cs->ev, &cs->cpg_src, fd, EPOLLIN, on_cpg_io, cs) < 0) {
		r = -EIO;
		goto fail;
	}
	if (quorum_fd_get(cs->quorum, &fd) != CS_OK ||
	    sd_event_add_io(cs->ev, &cs->quorum_src, fd, EPOLLIN, on_quorum_io, cs) < 0) {
		r = -EIO;
		goto fail;
	}
	err = cpg_join(cs->cpg, &cs->group);
	if (err != CS_OK) {
		r = err == CS_ERR_TRY_AGAIN ? -EAGAIN : -EIO;
		goto fail;
	}
	cs->up = true;
	cs->local_quorate = !quorate; /* reported below in any case */
	set_local_quorum(cs, !!quorate);
	log_notice("corosync: joined group '%s' as node %u; partition %squorate", cs->group_str, nodeid,
		   quorate ? "" : "not ");
	return 0;
fail:
	teardown(cs);
	return r;
}

static int recon_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;

	if (cs->broken) {
		lost(cs);
		return 0;
	}
	if (cs->up)
		return 0;
	if (try_connect(cs) == 0) {
		cs->backoff_ms = BACKOFF_MIN_MS;
		return 0;
	}
	cs->backoff_ms = cs->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cs->backoff_ms * 2;
	arm_recon(cs, cs->backoff_ms);
	return 0;
}

/* ---- the backend ---- */

static int corosync_submit(struct dv_cluster *c, const struct dv_event *ev)
{
	struct corosync *cs = (struct corosync *)c;

	if (ev->type == DV_EV_MEMBERSHIP)
		return -EINVAL; /* Corosync tells */
	if (!cs->up)
		return -ENOTCONN;
	return send_event(cs, ev);
}

static void corosync_free(struct dv_cluster *c)
{
	struct corosync *cs = (struct corosync *)c;

	teardown(cs);
	cs->recon_src = sd_event_source_disable_unref(cs->recon_src);
	free(cs->items);
	sd_event_unref(cs->ev);
	free(cs);
}

static const struct dv_cluster_vtable corosync_vtable = {
	.submit = corosync_submit,
	.free = corosync_free,
};

int dv_cluster_corosync_new(sd_event *ev, const char *group, const struct dv_cluster_ops *ops, void *ud,
			    struct dv_cluster **ret)
{
	struct corosync *cs;
	size_t glen = strlen(group);
	int r;

	if (glen == 0 || glen >= sizeof(cs->group.value) || glen >= DV_GROUP_NAME_MAX)
		return -EINVAL;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->c.vt = &corosync_vtable;
	cs->c.ops = ops;
	cs->c.ud = ud;
	cs->ev = sd_event_ref(ev);
	memcpy(cs->group.value, group, glen);
	cs->group.length = glen;
	memcpy(cs->group_str, group, glen + 1);
	STAILQ_INIT(&cs->queue);
	cs->backoff_ms = BACKOFF_MIN_MS;
	cs->stream_quorate = -1;
	r = try_connect(cs);
	if (r < 0) {
		/* Corosync may start after dvipad: keep trying. The node id
		 * is 0 until then. */
		log_warn("corosync: cannot reach Corosync yet; retrying");
		arm_recon(cs, cs->backoff_ms);
	}
	*ret = &cs->c;
	return 0;
}
