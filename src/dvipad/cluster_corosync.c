/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CLUSTER COROSYNC: the ordered stream is a Corosync CPG group.
 *
 * This file is the glue between Corosync and the pure sync protocol
 * (sync.h): it joins the group, passes CPG's configuration changes and
 * messages to it in the order CPG delivers them, multicasts what it sends
 * (CPG_TYPE_AGREED, queued under flow control), answers its questions about
 * quorum, and starts over (leave, join again) when anything goes wrong.
 *
 * Quorum comes from Corosync's quorum service: a change is reported to the
 * daemon at once (local_quorum: on loss it drops its addresses without
 * waiting for the stream) and to the sync protocol, whose lowest member
 * puts it into the stream so that every engine applies it at the same
 * point.
 *
 * The ring lease (fence.h) is kept here too: every message handed to
 * Corosync is timed until it comes back, a heartbeat goes out when nothing
 * else does, and the daemon hears when the lease runs out (it drops its
 * addresses) and when a member vanished from the ring (new owners wait
 * until that member's lease has surely run out).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <unistd.h>

#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>

#include "clock.h"
#include "cluster.h"
#include "fence.h"
#include "log.h"
#include "metrics.h"
#include "prio.h"
#include "quorum_probe.h"
#include "sync.h"

#define SYNC_TIMEOUT_S 30   /* an exchange that never ends: leave and join again */
#define CHECK_INTERVAL_S 10 /* the lowest member asks for digests this often */
#define RETRY_US 5000	    /* CPG flow control: retry sends after 5 ms */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define QUEUE_MAX 65536 /* messages waiting for flow control */
#define QUEUE_MAX_BYTES (256u << 20)

struct pending {
	STAILQ_ENTRY(pending) link;
	size_t len;
	uint8_t buf[];
};

struct corosync {
	struct dv_cluster c; /* first: the vtable functions cast back */
	sd_event *ev;
	struct cpg_name group;
	char group_str[DV_GROUP_NAME_MAX];

	cpg_handle_t cpg;
	quorum_handle_t quorum;
	struct dv_qprobe *probe; /* the fresh quorum read, bounded */
	bool has_cpg, has_quorum, up;
	sd_event_source *cpg_src, *quorum_src, *retry_src, *recon_src, *sync_src, *check_src, *beat_src, *wait_src,
		*probe_src;
	uint64_t backoff_ms;
	bool broken; /* noticed inside a callback; torn down after dispatch */

	struct dv_sync *sync; /* while connected */
	bool in_sync;	      /* connected(true) reported on this connection */
	size_t n_view;

	struct dv_sync_batch batch; /* sent at the end of this turn of the loop */
	sd_event_source *batch_src;
	STAILQ_HEAD(, pending) queue;
	size_t q_n, q_bytes;
	size_t flow_episode; /* messages queued since the queue was last empty */

	bool local_quorate;
	bool quorum_unknown; /* a fresh read timed out; no answer or notification since */
	/* Quorum notifications so far, and how many there were and which CPG
	 * ring it was when the fresh read was asked: a late answer counts
	 * only if neither moved since (fresh_quorate). */
	uint64_t quorum_notes, probe_notes, probe_ring;
	uint64_t ring;	   /* the totem ring this node is in (its sequence number) */
	uint64_t cpg_ring; /* the ring of CPG's latest configuration change */

	struct dv_fence fence;
	uint32_t token_ms, consensus_ms; /* Corosync's, read at connect */
	bool waiting;			 /* new owners wait for a vanished member's lease */
	uint64_t wait_until;
};

static void schedule_lost(struct corosync *cs);
static void lost(struct corosync *cs);

/* ---- sending, with flow control ---- */

static int mcast(struct corosync *cs, const uint8_t *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	cs_error_t err = cpg_mcast_joined(cs->cpg, CPG_TYPE_AGREED, &iov, 1);

	if (err == CS_OK)
		return dv_fence_handed(&cs->fence, dv_mono_us());
	if (err == CS_ERR_TRY_AGAIN) {
		dv_fence_refused(&cs->fence, dv_mono_us());
		return -EAGAIN;
	}
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

/* Multicast, queued behind earlier messages under flow control. */
static int send_now(struct corosync *cs, const uint8_t *buf, size_t len)
{
	struct pending *p;
	int r;

	if (STAILQ_EMPTY(&cs->queue)) {
		r = mcast(cs, buf, len);
		if (r == 0)
			return 0;
		if (r != -EAGAIN)
			return r;
		arm_retry(cs);
	}
	if (cs->q_n >= QUEUE_MAX || cs->q_bytes + len > QUEUE_MAX_BYTES)
		return -ENOBUFS;
	p = malloc(sizeof(*p) + len);
	if (!p)
		return -ENOMEM;
	p->len = len;
	memcpy(p->buf, buf, len);
	cs->flow_episode++;
	STAILQ_INSERT_TAIL(&cs->queue, p, link);
	cs->q_n++;
	cs->q_bytes += len;
	return 0;
}

/* What this turn of the loop sent goes (sync.h's batches): one by one if
 * a member runs a dvipad from before batches. */
static void send_batch(struct corosync *cs)
{
	bool whole = cs->sync && dv_sync_may_batch(cs->sync);
	const uint8_t *buf;
	size_t len;
	int r;

	while (dv_sync_batch_take(&cs->batch, whole, &buf, &len)) {
		r = send_now(cs, buf, len);
		if (r < 0) {
			log_err("corosync: cannot send to group '%s': %s", cs->group_str, strerror(-r));
			schedule_lost(cs);
			return;
		}
	}
}

static int batch_due(sd_event_source *s, void *ud)
{
	send_batch(ud);
	return 0;
}

/* sync.h's send: into this turn's batch, which goes when the turn ends
 * (before any other work: DV_PRIO_SEND); a large message goes alone,
 * after it. */
static int sync_send(void *ud, const uint8_t *buf, size_t len)
{
	struct corosync *cs = ud;
	bool alone;
	int r;

	if (!cs->up)
		return -ENOTCONN;
	if (dv_sync_batch_first(&cs->batch, len, &alone))
		send_batch(cs);
	if (alone)
		return send_now(cs, buf, len);
	r = dv_sync_batch_add(&cs->batch, buf, len);
	if (r < 0)
		return r;
	if (sd_event_source_set_enabled(cs->batch_src, SD_EVENT_ONESHOT) < 0)
		send_batch(cs);
	return 0;
}

static void set_local_quorum(struct corosync *cs, bool quorate)
{
	if (cs->local_quorate != quorate)
		log_notice("corosync: this node's partition %s quorum", quorate ? "has" : "lost");
	cs->local_quorate = quorate;
	cs->c.ops->local_quorum(cs->c.ud, quorate, cs->ring);
}

/* What the sync protocol puts into its messages: the partition's quorum as
 * this node last learnt it (never a call that could block), or -1 while a
 * fresh read owes its answer (sync.h). */
static int sync_quorate(void *ud)
{
	struct corosync *cs = ud;

	return cs->quorum_unknown ? -1 : cs->local_quorate;
}

/* Asked afresh when members leave: the quorum notification and the CPG
 * change come through different connections, and the daemon must close
 * its gate before the membership change grants anything. Corosync gets
 * half a lease to answer (quorum_probe.h); without an answer this node
 * counts itself not quorate until the answer or a notification comes,
 * and -ETIMEDOUT tells the caller not to judge the ring by it. */
static int fresh_quorate(struct corosync *cs)
{
	int q = cs->probe ? dv_qprobe_ask(cs->probe, cs->fence.lease_us / 2) : -EIO;

	cs->probe_notes = cs->quorum_notes;
	cs->probe_ring = cs->cpg_ring;
	cs->quorum_unknown = q < 0;
	if (q < 0) {
		log_warn("corosync: the quorum service did not answer within %llu ms; this partition counts as "
			 "not quorate until it does",
			 (unsigned long long)cs->fence.lease_us / 2000);
		set_local_quorum(cs, false);
		return q;
	}
	if (!!q != cs->local_quorate)
		set_local_quorum(cs, !!q);
	return q;
}

/* The answer that came after fresh_quorate() stopped waiting. It goes into
 * the stream too: the timeout made the lowest member say "not quorate"
 * there, and no notification may come to say otherwise (one came before
 * the question): a 3-node campaign saw every address down for 29 s after
 * a corosync restart. An answer older than a notification that came since,
 * or than a later membership, is dropped: those tell newer news. */
static int on_probe_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct corosync *cs = ud;
	int q = dv_qprobe_late(cs->probe);

	if (q == -EIO) {
		/* The thread is gone: the next fresh read says so. */
		(void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
		return 0;
	}
	if (q < 0 || cs->broken)
		return 0;
	/* Unknown stays until the notification of the later ring. */
	if (cs->quorum_notes != cs->probe_notes || cs->cpg_ring != cs->probe_ring) {
		log_debug("corosync: dropped the quorum service's late answer: newer news came since");
		return 0;
	}
	log_info("corosync: the quorum service answered late: partition %squorate", q ? "" : "not ");
	cs->quorum_unknown = false;
	if (!!q != cs->local_quorate)
		set_local_quorum(cs, !!q);
	if (cs->sync && dv_sync_quorum_changed(cs->sync, cs->cpg_ring, !!q) < 0)
		schedule_lost(cs);
	return 0;
}

static void sync_deliver(void *ud, const struct dv_event *ev)
{
	struct corosync *cs = ud;

	cs->c.ops->deliver(cs->c.ud, ev);
}

static int sync_snapshot(void *ud, uint8_t **ret, size_t *ret_len)
{
	struct corosync *cs = ud;

	return cs->c.ops->snapshot(cs->c.ud, ret, ret_len);
}

static int sync_restore(void *ud, const uint8_t *buf, size_t len)
{
	struct corosync *cs = ud;

	return cs->c.ops->restore(cs->c.ud, buf, len);
}

static void sync_synced(void *ud, bool restored)
{
	struct corosync *cs = ud;

	cs->sync_src = sd_event_source_disable_unref(cs->sync_src);
	if (!cs->in_sync)
		log_notice("corosync: in sync with group '%s' as node %u (%zu member(s))", cs->group_str, cs->c.self,
			   cs->n_view);
	cs->in_sync = true;
	if (restored)
		cs->c.ops->connected(cs->c.ud, true);
}

static void sync_asked(void *ud, bool answered)
{
	struct corosync *cs = ud;

	cs->c.ops->asked(cs->c.ud, answered);
}

static int sync_timeout(sd_event_source *s, uint64_t usec, void *ud);

static void sync_exchanging(void *ud, bool on)
{
	struct corosync *cs = ud;

	/* After a view change or a member's RESYNC alike; a view change
	 * during the exchange does not restart the clock. */
	if (on && !cs->sync_src &&
	    sd_event_add_time_relative(cs->ev, &cs->sync_src, CLOCK_MONOTONIC, SYNC_TIMEOUT_S * 1000000ULL, 100000,
				       sync_timeout, cs) < 0)
		log_err("corosync: cannot arm the state exchange timeout");

	cs->c.ops->exchanging(cs->c.ud, on);
}

static uint64_t sync_ring(void *ud)
{
	return ((struct corosync *)ud)->ring;
}

static uint64_t sync_wall_ms(void *ud)
{
	return dv_wall_ms();
}

static void sync_note(void *ud, int prio, const char *msg)
{
	dv_log(prio, "corosync: %s", msg);
}

static const struct dv_sync_ops sync_ops = {
	.send = sync_send,
	.deliver = sync_deliver,
	.snapshot = sync_snapshot,
	.restore = sync_restore,
	.synced = sync_synced,
	.exchanging = sync_exchanging,
	.asked = sync_asked,
	.quorate = sync_quorate,
	.ring = sync_ring,
	.wall_ms = sync_wall_ms,
	.note = sync_note,
};

/* ---- delivery ---- */

static struct corosync *from_handle(cpg_handle_t handle)
{
	struct corosync *cs = NULL;

	if (cpg_context_get(handle, (void **)&cs) != CS_OK || !cs || cs->broken || !cs->sync)
		return NULL;
	return cs;
}

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
		       size_t len)
{
	struct corosync *cs = from_handle(handle);
	bool own;

	if (!cs)
		return;
	own = nodeid == cs->c.self && pid == (uint32_t)getpid();
	if (own)
		dv_fence_returned(&cs->fence);
	if (dv_sync_message(cs->sync, nodeid, own, msg, len) < 0)
		schedule_lost(cs);
}

/* An exchange that never ends (a member that sends nothing, a state
 * unusable here) would leave this node buffering for ever: start over. */
static int sync_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;
	struct dv_sync_info info;

	cs->sync_src = sd_event_source_disable_unref(cs->sync_src);
	dv_sync_info(cs->sync, &info);
	if (info.exchanging) {
		log_err("corosync: the state exchange did not end in %d s; joining again", SYNC_TIMEOUT_S);
		schedule_lost(cs);
	}
	return 0;
}

static int wait_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;

	cs->wait_src = sd_event_source_disable_unref(cs->wait_src);
	if (cs->waiting) {
		cs->waiting = false;
		log_info("corosync: the members that vanished have surely dropped their addresses");
		cs->c.ops->takeover_wait(cs->c.ud, false);
	}
	return 0;
}

/* A member vanished from the ring (cut off, its host or its Corosync
 * died): it may still have its addresses until its lease runs out, so
 * nothing new goes up here before then (fence.h). */
static void wait_for_lease(struct corosync *cs)
{
	uint64_t now = dv_mono_us(), at = dv_fence_takeover_at(&cs->fence, now);

	if (at <= now || (cs->waiting && at <= cs->wait_until))
		return;
	cs->wait_src = sd_event_source_disable_unref(cs->wait_src);
	if (sd_event_add_time(cs->ev, &cs->wait_src, CLOCK_MONOTONIC, at, 1000, wait_tick, cs) < 0) {
		log_err("corosync: cannot arm the takeover wait; joining again");
		schedule_lost(cs);
		return;
	}
	(void)sd_event_source_set_priority(cs->wait_src, DV_PRIO_KERNEL);
	cs->wait_until = at;
	log_info("corosync: a member vanished from the ring: new owners wait %llu ms for its lease to run out",
		 (unsigned long long)(at - now) / 1000);
	if (!cs->waiting) {
		cs->waiting = true;
		cs->c.ops->takeover_wait(cs->c.ud, true);
	}
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group, const struct cpg_address *members,
		       size_t n_members, const struct cpg_address *left, size_t n_left,
		       const struct cpg_address *joined, size_t n_joined)
{
	struct corosync *cs = from_handle(handle);
	dv_nodeid_t ids[DV_ENGINE_MAX_NODES];
	struct dv_sync_info info;

	if (!cs)
		return;
	if (n_members > DV_ENGINE_MAX_NODES) {
		log_err("corosync: group '%s' has %zu members; at most %d are supported", cs->group_str, n_members,
			DV_ENGINE_MAX_NODES);
		schedule_lost(cs);
		return;
	}
	for (size_t i = 0; i < n_members; i++)
		ids[i] = members[i].nodeid;
	log_info("corosync: group '%s': %zu member(s), %zu joined, %zu left", cs->group_str, n_members, n_joined,
		 n_left);
	/* The quorum notification comes through another connection, possibly
	 * later, so ask now. Members left: this partition may have lost
	 * quorum, and the daemon must close its gate before the membership
	 * change grants anything (a standby must not be told to bind to an
	 * address a non-quorate node will not install). Members joined: it
	 * may have gained quorum, and the lowest member puts what it knows
	 * into the stream after the exchange; an old "not quorate" there
	 * marks the quorate side's state lost, and a merge can then prefer a
	 * minority's (tests/sim invariant 3, seed 3159). */
	dv_metrics.view_changed_us = dv_mono_us(); /* where the takeovers it causes start */
	{
		int q = fresh_quorate(cs);

		if (q >= 0)
			dv_sync_quorum_seen(cs->sync, cs->cpg_ring, q);
	}
	for (size_t i = 0; i < n_left; i++)
		if (left[i].reason == CPG_REASON_NODEDOWN)
			wait_for_lease(cs);
	if (dv_sync_confchg(cs->sync, ids, n_members, n_joined > 0, cs->cpg_ring) < 0) {
		schedule_lost(cs);
		return;
	}
	dv_sync_info(cs->sync, &info);
	cs->n_view = info.n_members;
}

/* The totem ring, delivered on the CPG connection before the group's
 * configuration change that it brings. */
static void on_totem(cpg_handle_t handle, struct cpg_ring_id ring_id, uint32_t n, const uint32_t *members)
{
	struct corosync *cs = from_handle(handle);

	if (!cs)
		return;
	cs->cpg_ring = ring_id.seq;
	if (ring_id.seq > cs->ring)
		cs->ring = ring_id.seq;
}

static void on_quorum(quorum_handle_t handle, uint32_t quorate, uint64_t ring_seq, uint32_t n, uint32_t *list)
{
	struct corosync *cs = NULL;

	if (quorum_context_get(handle, (const void **)&cs) != CS_OK || !cs || cs->broken)
		return;
	/* Notifications come one per ring, in order, but on their own
	 * connection: one for a ring older than the one CPG already showed is
	 * stale (a later one follows or came), and a "not quorate" of it
	 * would drop every address for nothing. */
	if (ring_seq < cs->ring) {
		log_debug("corosync: ignored a quorum notification of ring %llu (in ring %llu now)",
			  (unsigned long long)ring_seq, (unsigned long long)cs->ring);
		return;
	}
	cs->ring = ring_seq;
	cs->quorum_notes++;
	cs->quorum_unknown = false;
	set_local_quorum(cs, !!quorate);
	if (cs->sync && dv_sync_quorum_notified(cs->sync, ring_seq, !!quorate) < 0)
		schedule_lost(cs);
}

/* Every member's state is compared with the others' from time to time,
 * not only after exchanges (sync.h). */
static int check_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;

	if (cs->up && cs->sync && !cs->broken && dv_sync_check(cs->sync) < 0)
		schedule_lost(cs);
	(void)sd_event_source_set_time_relative(s, CHECK_INTERVAL_S * 1000000ULL);
	return 0;
}

/* What came back, what went out: CPG's queue read, and ended with the
 * connection if it is broken. 0, or -ENOTCONN (torn down). */
static int dispatch(struct corosync *cs, uint32_t revents)
{
	cs_error_t err = cpg_dispatch(cs->cpg, CS_DISPATCH_ALL);

	if ((err != CS_OK && err != CS_ERR_TRY_AGAIN) || (revents & (EPOLLHUP | EPOLLERR)) || cs->broken) {
		cs->broken = true;
		lost(cs);
		return -ENOTCONN;
	}
	return 0;
}

/* Every period: a heartbeat if nothing else went out, and the lease. */
static int beat_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct corosync *cs = ud;
	bool changed, lapsed;
	uint64_t now;

	(void)sd_event_source_set_time_relative(s, cs->fence.period_us);
	if (!cs->up || cs->broken || !cs->sync)
		return 0;
	/* What came back while this process was not running counts first: a
	 * stalled dvipad is not a broken ring. */
	if (dispatch(cs, 0) < 0)
		return 0;
	now = dv_mono_us();
	if (STAILQ_EMPTY(&cs->queue) && dv_fence_beat_due(&cs->fence, now) && dv_sync_beat(cs->sync) < 0) {
		schedule_lost(cs);
		return 0;
	}
	lapsed = dv_fence_check(&cs->fence, now, &changed);
	if (!changed)
		return 0;
	if (lapsed)
		log_err("corosync: ring lease ran out: nothing this node sent came back for %llu ms; dropping every "
			"address until the ring is whole again",
			(unsigned long long)cs->fence.lease_us / 1000);
	else
		log_notice("corosync: the ring is whole again (ring lease held)");
	dv_sync_lease(cs->sync, !lapsed);
	cs->c.ops->lease(cs->c.ud, !lapsed);
	return 0;
}

/* The totem timeouts the lease derives from, as Corosync runs them. */
static int read_totem(struct corosync *cs)
{
	cmap_handle_t h;
	uint32_t token = 0, consensus = 0;
	int r = 0;

	if (cmap_initialize(&h) != CS_OK)
		return -ENOTCONN;
	if (cmap_get_uint32(h, "runtime.config.totem.token", &token) != CS_OK ||
	    cmap_get_uint32(h, "runtime.config.totem.consensus", &consensus) != CS_OK || token == 0) {
		log_err("corosync: cannot read the totem token and consensus timeouts from cmap");
		r = -ENOTCONN;
	}
	cmap_finalize(h);
	if (r == 0 && (token != cs->token_ms || consensus != cs->consensus_ms))
		log_info("corosync: totem token %u ms, consensus %u ms: ring lease %llu ms", token, consensus,
			 (unsigned long long)(token + consensus + token / 2));
	cs->token_ms = token;
	cs->consensus_ms = consensus;
	return r;
}

/* ---- connection ---- */

static void teardown(struct corosync *cs)
{
	struct pending *p;

	cs->cpg_src = sd_event_source_disable_unref(cs->cpg_src);
	cs->quorum_src = sd_event_source_disable_unref(cs->quorum_src);
	cs->retry_src = sd_event_source_disable_unref(cs->retry_src);
	cs->sync_src = sd_event_source_disable_unref(cs->sync_src);
	cs->check_src = sd_event_source_disable_unref(cs->check_src);
	cs->beat_src = sd_event_source_disable_unref(cs->beat_src);
	cs->batch_src = sd_event_source_disable_unref(cs->batch_src);
	dv_sync_batch_free(&cs->batch);
	cs->wait_src = sd_event_source_disable_unref(cs->wait_src);
	cs->probe_src = sd_event_source_disable_unref(cs->probe_src);
	cs->probe = dv_qprobe_free(cs->probe);
	cs->waiting = false;
	dv_fence_clear(&cs->fence);
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
	cs->sync = dv_sync_free(cs->sync);
	cs->n_view = 0;
	cs->in_sync = false;
	cs->broken = false;
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
	/* Addresses first, then the group: the others may grant them as
	 * soon as this node has left. */
	cs->up = false;
	cs->c.ops->connected(cs->c.ud, false);
	teardown(cs);
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

	/* Messages queued under flow control go as soon as Corosync has
	 * delivered something (its queue moved, and the flow control state
	 * comes with deliveries), not only when the retry timer says: a
	 * client's end or a hand-over queued behind it waited up to RETRY_US
	 * more (issue 15 item 5). */
	if (dispatch(cs, revents) == 0 && cs->up && !STAILQ_EMPTY(&cs->queue))
		(void)flush_queue(cs);
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
		.cpg_totem_confchg_fn = on_totem,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	quorum_callbacks_t qcb = {.quorum_notify_fn = on_quorum};
	uint32_t qtype = 0, nodeid = 0;
	int fd = -1, quorate = 0, r;
	cs_error_t err;

	if (read_totem(cs) < 0)
		return -ENOTCONN;
	dv_fence_init(&cs->fence, cs->token_ms, cs->consensus_ms, dv_mono_us());
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
	cs->sync = dv_sync_new(cs->c.self, &sync_ops, cs);
	if (!cs->sync) {
		r = -ENOMEM;
		goto fail;
	}
	if (quorum_trackstart(cs->quorum, CS_TRACK_CHANGES) != CS_OK ||
	    quorum_getquorate(cs->quorum, &quorate) != CS_OK) {
		r = -ENOTCONN;
		goto fail;
	}
	cs->probe = dv_qprobe_new();
	if (!cs->probe ||
	    sd_event_add_io(cs->ev, &cs->probe_src, dv_qprobe_fd(cs->probe), EPOLLIN, on_probe_io, cs) < 0) {
		r = -EIO;
		goto fail;
	}
	if (cpg_fd_get(cs->cpg, &fd) != CS_OK ||
	    sd_event_add_io(cs->ev, &cs->cpg_src, fd, EPOLLIN, on_cpg_io, cs) < 0) {
		r = -EIO;
		goto fail;
	}
	if (quorum_fd_get(cs->quorum, &fd) != CS_OK ||
	    sd_event_add_io(cs->ev, &cs->quorum_src, fd, EPOLLIN, on_quorum_io, cs) < 0 ||
	    sd_event_add_time_relative(cs->ev, &cs->check_src, CLOCK_MONOTONIC, CHECK_INTERVAL_S * 1000000ULL, 1000000,
				       check_tick, cs) < 0 ||
	    sd_event_source_set_enabled(cs->check_src, SD_EVENT_ON) < 0 ||
	    sd_event_add_time_relative(cs->ev, &cs->beat_src, CLOCK_MONOTONIC, cs->fence.period_us, 1000, beat_tick,
				       cs) < 0 ||
	    sd_event_source_set_enabled(cs->beat_src, SD_EVENT_ON) < 0 ||
	    sd_event_add_defer(cs->ev, &cs->batch_src, batch_due, cs) < 0 ||
	    sd_event_source_set_enabled(cs->batch_src, SD_EVENT_OFF) < 0 ||
	    sd_event_source_set_priority(cs->batch_src, DV_PRIO_SEND) < 0) {
		r = -EIO;
		goto fail;
	}
	/* Quorum loss and the ring lease before any client (prio.h). */
	(void)sd_event_source_set_priority(cs->cpg_src, DV_PRIO_KERNEL);
	(void)sd_event_source_set_priority(cs->quorum_src, DV_PRIO_KERNEL);
	(void)sd_event_source_set_priority(cs->beat_src, DV_PRIO_KERNEL);
	(void)sd_event_source_set_priority(cs->probe_src, DV_PRIO_KERNEL);
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
	if (!cs->up || !cs->sync)
		return -ENOTCONN;
	return dv_sync_submit(cs->sync, ev);
}

static void corosync_free(struct dv_cluster *c)
{
	struct corosync *cs = (struct corosync *)c;

	teardown(cs);
	cs->recon_src = sd_event_source_disable_unref(cs->recon_src);
	sd_event_unref(cs->ev);
	free(cs);
}

static int corosync_sync_info(const struct dv_cluster *c, struct dv_sync_info *ret)
{
	const struct corosync *cs = (const struct corosync *)c;

	if (!cs->sync)
		return -ENOTCONN;
	dv_sync_info(cs->sync, ret);
	return 0;
}

static int corosync_ask_quorum(struct dv_cluster *c)
{
	struct corosync *cs = (struct corosync *)c;

	return cs->up && cs->sync ? dv_sync_ask_quorum(cs->sync) : -ENOTCONN;
}

/* Read-only: nodelist.node.K.{nodeid,name,ringN_addr} in cmap. A host name
 * as ringN_addr is skipped (resolving it would block the event loop). */
static int corosync_nodelist(const struct dv_cluster *c, struct dv_cluster_node *ret, size_t max, size_t *ret_n)
{
	cmap_handle_t h;
	size_t n = 0;

	(void)c;
	if (cmap_initialize(&h) != CS_OK)
		return -ENOTCONN;
	for (unsigned k = 0; n < max; k++) {
		struct dv_cluster_node *nd = &ret[n];
		char key[64], *str = NULL;

		snprintf(key, sizeof(key), "nodelist.node.%u.nodeid", k);
		*nd = (struct dv_cluster_node){0};
		if (cmap_get_uint32(h, key, &nd->id) != CS_OK)
			break;
		snprintf(key, sizeof(key), "nodelist.node.%u.name", k);
		if (cmap_get_string(h, key, &str) == CS_OK)
			snprintf(nd->name, sizeof(nd->name), "%s", str);
		free(str);
		for (unsigned ring = 0; ring < 8; ring++) {
			struct dv_addr a;

			str = NULL;
			snprintf(key, sizeof(key), "nodelist.node.%u.ring%u_addr", k, ring);
			if (cmap_get_string(h, key, &str) == CS_OK && dv_addr_parse(str, &a) == 0) {
				if (a.family == AF_INET && !nd->v4.family)
					nd->v4 = a;
				if (a.family == AF_INET6 && !nd->v6.family)
					nd->v6 = a;
			}
			free(str);
		}
		n++;
	}
	cmap_finalize(h);
	*ret_n = n;
	return 0;
}

static const struct dv_cluster_vtable corosync_vtable = {
	.nodelist = corosync_nodelist,
	.ask_quorum = corosync_ask_quorum,
	.submit = corosync_submit,
	.free = corosync_free,
	.sync_info = corosync_sync_info,
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
