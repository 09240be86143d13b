/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Cluster sync (sync.h): the state exchange after view changes, the
 * ordered delivery of engine events around it, the digest checks and the
 * quorum events.
 *
 * Wire: one byte of kind, then
 *   EVENT    dv_event_encode()
 *   SUMMARY  view  u64 qring  u64 qcount  u32 unconfirmed  u8 lost  u64 applied  u64 digest
 *            u64 ring (the sender's ring if it is quorate now, else 0)
 *            u64 vq (the latest earlier ring Corosync called quorate while
 *            the sender was in it)
 *   STATE    view  u64 digest  the engine snapshot
 *   DIGEST   view  u32 check  u64 digest
 *   CHECK    view
 *   RESYNC   view
 *   QUORUM   view  u8 quorate  u64 ring  u64 time_ms (a DV_EV_QUORUM for the engine)
 *   QUORUM_ASK view
 *   REPLAY   (nothing: the sender's own events follow again, see below)
 *   BEAT     u16 proto (DV_SYNC_PROTO; absent from a dvipad before batches,
 *            and trailing bytes are a later protocol's)
 *   BATCHED  (u32 len, message) x n, n >= 1: consecutive messages of one
 *            sender in one multicast (sync.h), none of them BATCHED
 * where view = u32 round (exchanges since the change), u32 n, n x u32 node
 * id, sorted: which view and exchange the message was sent for. A message
 * for another view or round is dropped: it was sent before its sender saw
 * the latest change. All little-endian.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "sync.h"
#include "wire.h"

enum {
	MSG_EVENT = 1,
	/* 2 was the timed state transfer of dvipa before the exchange */
	MSG_SUMMARY = 3,
	MSG_STATE = 4,
	MSG_DIGEST = 5,
	MSG_CHECK = 6,
	MSG_RESYNC = 7,
	/* The partition's quorum, from the view's lowest member. Not an EVENT:
	 * virtual synchrony may carry a message into its sender's next view,
	 * and a "quorate" of the last view must not count in the next one. */
	MSG_QUORUM = 8,
	/* A member asks the lowest one to put the quorum into the stream
	 * again (its gate waits for a QUORUM sent after its own loss). */
	MSG_QUORUM_ASK = 9,
	/* Nothing but a message in flight: the ring lease (fence.h). */
	MSG_BEAT = 10,
	/* The sender sends again, right after this, every event of its own
	 * that no member has applied: drop what is buffered of its events. */
	MSG_REPLAY = 11,
	MSG_BATCHED = 12,
};

enum phase {
	IDLE = 0,    /* applying the stream as it comes */
	COLLECT,     /* waiting for the view's summaries */
	AWAIT_STATE, /* waiting for the winner's state */
};

struct contrib {
	bool got, lost;
	uint32_t unconfirmed;
	uint64_t qring, qcount, applied, digest, ring, vq;
};

/* An EVENT or QUORUM message (kind byte included) delivered during an
 * exchange, applied after it. */
struct item {
	dv_nodeid_t sender;
	bool own;
	size_t len;
	uint8_t *buf;
};

struct dv_sync {
	dv_nodeid_t self;
	const struct dv_sync_ops *ops;
	void *ud;

	bool joined;
	dv_nodeid_t *view; /* sorted, unique */
	size_t n_view;
	uint32_t round; /* exchanges started in this view */
	enum phase phase;
	bool synced;
	bool membership_due;	 /* the exchange follows a view change */
	struct contrib *contrib; /* per view member */
	uint64_t own_digest;	 /* at the start of the exchange */
	size_t winner;		 /* index into view */

	struct item *items;
	size_t n_items, cap_items, items_bytes;
	/* This node's EVENT and REPLAY messages sent and not yet delivered
	 * back to it (Totem delivers a sender's messages to itself in the
	 * order it sent them). */
	struct item *outbox;
	size_t n_out, cap_out, out_bytes;

	uint64_t qring, qcount, applied;
	/* Memberships applied since the stream last said quorate (0: the
	 * state is confirmed quorate). */
	uint32_t unconfirmed;
	/* Members left in a view change whose membership is not applied yet
	 * (its exchange was interrupted): the summary counts it as
	 * unconfirmed too, or a minority that never finished an exchange
	 * would look confirmed next to the partition that went on (tests/sim
	 * seed 70919). */
	bool left_pending;
	/* The stream said "not quorate" since the state's last quorate mark,
	 * or Corosync said that the ring of its last membership was not
	 * quorate (the state went its own way there; its QUORUM may never
	 * have been applied). */
	bool lost;
	/* This node's ring lease ran out (lease_out: it is out now) since the
	 * stream last said quorate with the lease held: nothing it sent came
	 * back, so it may have been cut off from the ring while the others
	 * went on without it (they wait for its lease before they take its
	 * addresses over). Members that leave its view then may have left it,
	 * not the other way round: unless Corosync says that ring is quorate,
	 * the membership marks the state lost, even when Corosync never says
	 * the ring was not quorate (its quorum service may not answer at all
	 * after a stall: CI, test_stalled_corosync_owner_fences_itself, where
	 * the stale state won the merge and put back the address a standby
	 * had taken over). A majority's lease may run out too while its ring
	 * re-forms; its fresh read says quorate (tests/sim seed 1405: marked
	 * all the same, a majority's state lost a merge and a standby with
	 * it). */
	bool cut_off, lease_out;
	uint64_t view_ring; /* the totem ring of the current view */
	/* Corosync's notification said quorate for the current view's ring
	 * (vq_now), and the latest earlier ring it did while this node was in
	 * it (vq_mark): a partition that went on quorate but whose QUORUM the
	 * stream never applied (its exchanges kept being interrupted) still
	 * shows it went on on the quorate side (tests/sim seed 70560). Only a
	 * notification counts here, which names its ring: a fresh read answers
	 * for whatever ring Corosync is in by then, maybe a later one than
	 * CPG has shown, and a minority's ring must never look quorate. */
	uint64_t vq_now, vq_mark;
	uint64_t nt_ring; /* Corosync's latest quorum notification: its ring, */
	bool nt_quorate;  /* and what it said */
	uint64_t mring;	  /* the ring of the state's last membership */
	uint64_t qn_ring; /* Corosync's latest quorum notification: its ring, */
	bool qn_quorate;  /* and what it said */
	uint32_t exchanges;

	int stream_quorate; /* the last QUORUM applied; -1: unknown */
	bool quorum_due;    /* a membership was applied and no QUORUM since */

	uint32_t check;
	uint64_t check_digest;
	bool mismatch, resync_sent;
	struct dv_sync_member *members; /* per view member */
	int mutation;			/* test only: dv_sync_set_mutation() */
};

static void note(struct dv_sync *s, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void note(struct dv_sync *s, int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->ops->note(s->ud, prio, msg);
}

uint64_t dv_sync_digest(const uint8_t *buf, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= buf[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int state_digest(struct dv_sync *s, uint64_t *ret)
{
	uint8_t *snap = NULL;
	size_t len = 0;
	int r = s->ops->snapshot(s->ud, &snap, &len);

	if (r < 0)
		return r;
	*ret = dv_sync_digest(snap, len);
	free(snap);
	return 0;
}

static ssize_t view_index(const struct dv_sync *s, dv_nodeid_t node)
{
	for (size_t i = 0; i < s->n_view; i++)
		if (s->view[i] == node)
			return (ssize_t)i;
	return -1;
}

/* ---- sending ---- */

static void w_view(struct dv_sync *s, struct dv_wbuf *w, uint8_t kind)
{
	dv_w_u8(w, kind);
	dv_w_u32(w, s->round);
	dv_w_u32(w, (uint32_t)s->n_view);
	for (size_t i = 0; i < s->n_view; i++)
		dv_w_u32(w, s->view[i]);
}

static int send_w(struct dv_sync *s, struct dv_wbuf *w)
{
	int r = w->err ? w->err : s->ops->send(s->ud, w->data, w->len);

	free(w->data);
	return r;
}

static int send_summary(struct dv_sync *s)
{
	struct dv_wbuf w = {0};

	w_view(s, &w, MSG_SUMMARY);
	dv_w_u64(&w, s->qring);
	dv_w_u64(&w, s->qcount);
	dv_w_u32(&w, s->unconfirmed + (s->left_pending && s->unconfirmed < UINT32_MAX));
	dv_w_u8(&w, s->lost);
	dv_w_u64(&w, s->applied);
	dv_w_u64(&w, s->own_digest);
	dv_w_u64(&w, s->ops->quorate(s->ud) > 0 ? s->ops->ring(s->ud) : 0);
	dv_w_u64(&w, s->vq_mark);
	return send_w(s, &w);
}

static int send_state(struct dv_sync *s)
{
	struct dv_wbuf w = {0};
	uint8_t *snap = NULL;
	size_t len = 0;
	int r = s->ops->snapshot(s->ud, &snap, &len);

	if (r < 0)
		return r;
	/* Nothing was applied since the summary: the same state. */
	if (dv_sync_digest(snap, len) != s->own_digest) {
		free(snap);
		note(s, LOG_ERR, "this node's state changed during the exchange");
		return -EPROTO;
	}
	w_view(s, &w, MSG_STATE);
	dv_w_u64(&w, s->own_digest);
	dv_w_bytes(&w, snap, len);
	free(snap);
	note(s, LOG_INFO, "sending this node's state (%zu bytes) to the group", len);
	return send_w(s, &w);
}

static int send_simple(struct dv_sync *s, uint8_t kind)
{
	struct dv_wbuf w = {0};

	w_view(s, &w, kind);
	return send_w(s, &w);
}

static int send_tracked(struct dv_sync *s, const uint8_t *buf, size_t len);

int dv_sync_submit(struct dv_sync *s, const struct dv_event *ev)
{
	struct dv_wbuf w = {0};
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (!s->joined)
		return -ENOTCONN;
	r = dv_event_encode(ev, &buf, &len);
	if (r < 0)
		return r;
	dv_w_u8(&w, MSG_EVENT);
	dv_w_bytes(&w, buf, len);
	free(buf);
	r = w.err ? w.err : send_tracked(s, w.data, w.len);
	free(w.data);
	return r;
}

/* The lowest member puts this partition's quorum into the stream when it
 * differs from what the stream says, or a membership wants it confirmed:
 * after members left, the engine chooses no new owner until it is. */
static int send_quorum(struct dv_sync *s)
{
	struct dv_wbuf w = {0};
	int quorate;

	if (!s->synced || s->phase != IDLE || s->n_view == 0 || s->view[0] != s->self)
		return 0;
	quorate = s->ops->quorate(s->ud);
	if (quorate < 0)
		return 0; /* said when known (sync.h) */
	/* Quorate in a later ring than the stream says: say it again, so
	 * that the state is marked with the latest quorate ring. */
	if (s->stream_quorate == quorate && !s->quorum_due && !(quorate && s->ops->ring(s->ud) > s->qring))
		return 0;
	w_view(s, &w, MSG_QUORUM);
	dv_w_u8(&w, (uint8_t)quorate);
	dv_w_u64(&w, s->ops->ring(s->ud));
	/* Owners chosen at this event (after members left) get their
	 * "since" from it. */
	dv_w_u64(&w, s->ops->wall_ms(s->ud));
	return send_w(s, &w);
}

/* ---- applying the stream ---- */

/* Corosync's word on the ring of the state's last membership, once it has
 * one: "not quorate" marks the state lost. (A "quorate" waits for the
 * stream's QUORUM, which marks the ring for every member alike.) */
static void judge_membership(struct dv_sync *s)
{
	if (s->mring && s->qn_ring == s->mring && !s->qn_quorate && !s->lost) {
		s->lost = true;
		note(s, LOG_DEBUG, "the state's last membership (ring %llu) is not quorate",
		     (unsigned long long)s->mring);
	}
}

/* Corosync said that ring is quorate: its notification, or the fresh read
 * at the membership (for the ring the configuration change names). */
static bool said_quorate(const struct dv_sync *s, uint64_t ring)
{
	return (s->qn_ring == ring && s->qn_quorate) || (s->vq_now && s->vq_now == ring);
}

static void deliver_membership(struct dv_sync *s)
{
	struct dv_event ev = {.type = DV_EV_MEMBERSHIP, .node = s->self, .membership = {s->n_view, s->view}};

	s->quorum_due = true;
	if (s->unconfirmed < UINT32_MAX)
		s->unconfirmed++;
	if (s->cut_off && s->left_pending && !s->lost && !said_quorate(s, s->view_ring)) {
		s->lost = true;
		note(s, LOG_DEBUG,
		     "members left while this node was cut off from the ring, and Corosync did not say "
		     "this ring is quorate: the state went its own way");
	}
	s->left_pending = false;
	s->applied++;
	s->mring = s->view_ring;
	s->ops->deliver(s->ud, &ev);
	judge_membership(s);
}

static void apply_event(struct dv_sync *s, dv_nodeid_t sender, const uint8_t *buf, size_t len)
{
	struct dv_event ev;
	void *storage = NULL;

	if (dv_event_decode(buf, len, &ev, &storage) < 0) {
		note(s, LOG_WARNING, "dropped a malformed event (%zu bytes) from node %u", len, sender);
		return;
	}
	if (ev.node != sender || ev.type == DV_EV_MEMBERSHIP || ev.type == DV_EV_QUORUM) {
		note(s, LOG_WARNING, "dropped an event of type %d from node %u claiming to come from node %u",
		     (int)ev.type, sender, ev.node);
		free(storage);
		return;
	}
	s->applied++;
	s->ops->deliver(s->ud, &ev);
	free(storage);
}

static bool r_view(struct dv_sync *s, struct dv_rbuf *r, bool *ret_same_round);

/* A QUORUM message of this view from its lowest member becomes the
 * engine's QUORUM event; one sent for an earlier view is dropped (the
 * lowest member sends one after every membership). Then the lowest member
 * checks the stream against what Corosync says now: a change that came
 * while its last QUORUM was on its way is sent after it. */
static int apply_quorum(struct dv_sync *s, dv_nodeid_t sender, const uint8_t *buf, size_t len)
{
	struct dv_rbuf r = {.data = buf, .len = len, .off = 1};
	struct dv_event ev = {.type = DV_EV_QUORUM, .node = sender};
	uint64_t ring;
	bool round;

	if (!r_view(s, &r, &round) || sender != s->view[0])
		return send_quorum(s);
	ev.quorum.quorate = dv_r_bool(&r);
	ev.quorum.ring = ring = dv_r_u64(&r);
	ev.time_ms = dv_r_u64(&r);
	if (r.bad || r.off != r.len) {
		note(s, LOG_WARNING, "dropped a malformed quorum message from node %u", sender);
		return 0;
	}
	s->stream_quorate = ev.quorum.quorate;
	s->quorum_due = false;
	if (ev.quorum.quorate)
		s->unconfirmed = 0;
	s->lost = !ev.quorum.quorate;
	if (ev.quorum.quorate && !s->lease_out)
		s->cut_off = false;
	if (ev.quorum.quorate) {
		s->qring = ring;
		s->qcount++;
	}
	s->applied++;
	s->ops->deliver(s->ud, &ev);
	return send_quorum(s);
}

static int apply_item(struct dv_sync *s, dv_nodeid_t sender, const uint8_t *buf, size_t len)
{
	if (buf[0] == MSG_QUORUM)
		return apply_quorum(s, sender, buf, len);
	apply_event(s, sender, buf + 1, len - 1);
	return 0;
}

static void items_clear(struct dv_sync *s)
{
	for (size_t i = 0; i < s->n_items; i++)
		free(s->items[i].buf);
	s->n_items = s->items_bytes = 0;
}

static int list_add(struct item **v, size_t *n, size_t *cap, size_t *bytes, dv_nodeid_t sender, bool own,
		    const uint8_t *buf, size_t len)
{
	struct item *it;

	if (*n >= DV_SYNC_BUFFER_MAX || *bytes + len > DV_SYNC_BUFFER_MAX_BYTES)
		return -ENOBUFS;
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		struct item *nv = realloc(*v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	it = &(*v)[*n];
	it->buf = malloc(len ? len : 1);
	if (!it->buf)
		return -ENOMEM;
	memcpy(it->buf, buf, len);
	it->len = len;
	it->sender = sender;
	it->own = own;
	(*n)++;
	*bytes += len;
	return 0;
}

static int items_add(struct dv_sync *s, dv_nodeid_t sender, bool own, const uint8_t *buf, size_t len)
{
	int r = list_add(&s->items, &s->n_items, &s->cap_items, &s->items_bytes, sender, own, buf, len);

	if (r == -ENOBUFS)
		note(s, LOG_ERR, "too many events during the state exchange");
	return r;
}

/* Sends an EVENT or REPLAY and keeps it until it comes back. */
static int send_tracked(struct dv_sync *s, const uint8_t *buf, size_t len)
{
	int r = list_add(&s->outbox, &s->n_out, &s->cap_out, &s->out_bytes, s->self, true, buf, len);

	if (r == -ENOBUFS)
		note(s, LOG_ERR, "too many messages of this node in flight");
	if (r < 0)
		return r;
	return s->ops->send(s->ud, buf, len);
}

/* One of this node's tracked messages came back: the oldest one, unless
 * the caller lost some. */
static void outbox_delivered(struct dv_sync *s, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < s->n_out; i++) {
		struct item *it = &s->outbox[i];

		if (it->len != len || memcmp(it->buf, buf, len) != 0)
			continue;
		for (size_t k = 0; k <= i; k++) {
			s->out_bytes -= s->outbox[k].len;
			free(s->outbox[k].buf);
		}
		memmove(s->outbox, s->outbox + i + 1, (s->n_out - i - 1) * sizeof(*s->outbox));
		s->n_out -= i + 1;
		return;
	}
}

/* A REPLAY from sender: what was buffered of its events comes again. */
static void items_drop_sender(struct dv_sync *s, dv_nodeid_t sender)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n_items; i++) {
		if (s->items[i].sender == sender && s->items[i].buf[0] == MSG_EVENT) {
			s->items_bytes -= s->items[i].len;
			free(s->items[i].buf);
			continue;
		}
		s->items[k++] = s->items[i];
	}
	s->n_items = k;
}

/* The view changed during an exchange: every member drops the events
 * delivered during it, so this node sends its own again. They must stay
 * in the order this node sent them, and its events still in flight (sent
 * in the old view, not ordered there) come in the new view before anything
 * sent now: a RELEASE sent again after the CLAIM that followed it would
 * end the hold the program was just granted (tests/sim seeds 641 and 975).
 * So this node sends REPLAY, then its dropped events and copies of those
 * in flight, in order; every member drops what it buffered of this node's
 * events when the REPLAY comes (the originals in flight among them). A
 * REPLAY still in flight already covers everything before it.
 *
 * flight: the view brought members in while this node's messages went
 * batched, and those in flight are delivered to the newcomers too: one
 * that runs a dvipad from before batches drops them (sync.h's
 * DV_SYNC_PROTO), a REPLAY in one among them. The events in flight, or
 * the REPLAY's copies, go again one by one after a new REPLAY: every member
 * then buffers the same events of this node. */
static int resend_own(struct dv_sync *s, bool flight)
{
	uint8_t kind = MSG_REPLAY;
	size_t n_out = s->n_out, from = 0;
	bool replay = false, any = false;
	int r;

	/* A REPLAY in flight: what it covers comes after it in the outbox. */
	for (size_t i = 0; i < n_out; i++)
		if (s->outbox[i].buf[0] == MSG_REPLAY) {
			replay = true;
			from = i + 1;
		}
	if (replay && !flight)
		return 0;
	for (size_t i = 0; i < s->n_items && !replay && !any; i++)
		any = s->items[i].own && s->items[i].buf[0] == MSG_EVENT;
	for (size_t i = from; i < n_out && flight && !any; i++)
		any = s->outbox[i].buf[0] == MSG_EVENT;
	if (!any)
		return 0;
	r = send_tracked(s, &kind, 1);
	for (size_t i = 0; i < s->n_items && !replay && r == 0; i++)
		if (s->items[i].own && s->items[i].buf[0] == MSG_EVENT)
			r = send_tracked(s, s->items[i].buf, s->items[i].len);
	/* send_tracked may move the outbox array (not the buffers). */
	for (size_t i = from; i < n_out && r == 0; i++) {
		struct item it = s->outbox[i];

		if (it.buf[0] == MSG_EVENT)
			r = send_tracked(s, it.buf, it.len);
	}
	return r;
}

/* ---- the exchange ---- */

static int start_exchange(struct dv_sync *s, bool membership_due)
{
	int r;

	if (s->phase == IDLE)
		s->ops->exchanging(s->ud, true);
	s->phase = COLLECT;
	s->membership_due = membership_due;
	memset(s->contrib, 0, s->n_view * sizeof(*s->contrib));
	r = state_digest(s, &s->own_digest);
	if (r < 0)
		return r;
	return send_summary(s);
}

/* Which state wins a merge, in this order:
 *  1. one that was ever quorate, over a fresh one (a dvipad that just
 *     started has nothing to offer);
 *  2. one that did not go its own way since its last quorate mark, over one
 *     that did ("lost": the stream said "not quorate", or Corosync said the
 *     ring of its last membership was not quorate, or members left while
 *     this node was cut off, see cut_off). What a minority applies
 *     (the holds of the nodes it lost, dropped) must not win over a state
 *     that stayed on the quorate side, even one marked in an older ring: a
 *     quorate partition whose exchanges kept being interrupted marks
 *     nothing (tests/sim seeds 273, 292, 928);
 *  3. the later quorate ring: the stream's mark, or a ring Corosync called
 *     quorate while the node was in it (vq);
 *  4. fewer memberships applied since the stream last confirmed quorum (a
 *     membership never confirmed may be a minority's view: seeds 7, 12);
 *  5. more quorum events, then more events, then the lowest node id.
 * Only liveness rides on this order (which holds survive a merge): no
 * address is installed on the strength of a merge alone (gate.h). */
static uint64_t quorate_ring(const struct contrib *c)
{
	return c->vq > c->qring ? c->vq : c->qring;
}

static bool fresher(const struct contrib *a, dv_nodeid_t an, const struct contrib *b, dv_nodeid_t bn)
{
	if ((a->qring != 0) != (b->qring != 0))
		return a->qring != 0;
	if (a->lost != b->lost)
		return !a->lost;
	if (quorate_ring(a) != quorate_ring(b))
		return quorate_ring(a) > quorate_ring(b);
	if (a->unconfirmed != b->unconfirmed)
		return a->unconfirmed < b->unconfirmed;
	if (a->qcount != b->qcount)
		return a->qcount > b->qcount;
	if (a->applied != b->applied)
		return a->applied > b->applied;
	return an < bn;
}

/* A check point: this node's digest here, to every member. */
static int check_point(struct dv_sync *s)
{
	struct dv_wbuf w = {0};
	int r = state_digest(s, &s->check_digest);

	if (r < 0)
		return r;
	s->check++;
	s->mismatch = s->resync_sent = false;
	w_view(s, &w, MSG_DIGEST);
	dv_w_u32(&w, s->check);
	dv_w_u64(&w, s->check_digest);
	return send_w(s, &w);
}

static int complete(struct dv_sync *s, bool restored)
{
	const struct contrib *win = &s->contrib[s->winner];
	struct item *its;
	size_t n;
	bool first = !s->synced;
	int r;

	s->qring = win->qring;
	s->qcount = win->qcount;
	s->unconfirmed = win->unconfirmed;
	s->lost = win->lost;
	/* A member quorate in a later ring marks the state at once: what
	 * this view applies next was decided in a quorate configuration,
	 * even if the view changes before its QUORUM message is delivered. */
	for (size_t i = 0; i < s->n_view; i++)
		if (s->contrib[i].ring > s->qring)
			s->qring = s->contrib[i].ring;
	s->applied = win->applied;
	s->phase = IDLE;
	s->exchanges++;
	if (restored)
		s->stream_quorate = -1;
	note(s, LOG_INFO, "state exchange %u of %zu member(s) done: node %u's state (%s)", s->exchanges, s->n_view,
	     s->view[s->winner],
	     restored ? "taken"
	     : first  ? "the same here"
		      : "kept");
	for (size_t i = 0; i < s->n_view; i++)
		if (s->members[i].proto == 0)
			note(s, LOG_WARNING,
			     "node %u announced no protocol: it runs a dvipad from before batches; this node sends "
			     "unbatched while it is a member, and every node should run the same version",
			     s->view[i]);
	/* A node that took the group's state publishes its own part of it
	 * (configuration, standbys) first, before anything it applies next
	 * can make it send more. */
	s->synced = true;
	if (restored || first)
		s->ops->synced(s->ud, true);
	if (s->membership_due)
		deliver_membership(s);
	r = check_point(s);
	if (r < 0)
		return r;
	/* Applying may start nothing new (no callback delivers a view), but
	 * take the list out first all the same. */
	its = s->items;
	n = s->n_items;
	s->items = NULL;
	s->n_items = s->cap_items = s->items_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = apply_item(s, its[i].sender, its[i].buf, its[i].len);
		free(its[i].buf);
	}
	free(its);
	if (r < 0)
		return r;
	if (!restored && !first)
		s->ops->synced(s->ud, false);
	s->ops->exchanging(s->ud, false);
	return send_quorum(s);
}

static int decide(struct dv_sync *s)
{
	bool same = true;

	s->winner = 0;
	for (size_t i = 0; i < s->n_view; i++) {
		const struct contrib *c = &s->contrib[i];

		note(s, LOG_DEBUG,
		     "node %u's state: last quorate in ring %llu (%llu quorum events), %u membership(s) not confirmed "
		     "since%s, %llu events, digest %016llx; quorate now in ring %llu, Corosync said quorate in ring "
		     "%llu",
		     s->view[i], (unsigned long long)c->qring, (unsigned long long)c->qcount, c->unconfirmed,
		     c->lost ? ", not quorate since" : "", (unsigned long long)c->applied,
		     (unsigned long long)c->digest, (unsigned long long)c->ring, (unsigned long long)c->vq);
		if (i > 0 && fresher(c, s->view[i], &s->contrib[s->winner], s->view[s->winner]))
			s->winner = i;
	}
	for (size_t i = 0; i < s->n_view; i++)
		if (s->contrib[i].digest != s->contrib[s->winner].digest)
			same = false;
	if (same)
		return complete(s, false);
	s->phase = AWAIT_STATE;
	if (s->view[s->winner] == s->self)
		return send_state(s);
	return 0;
}

/* ---- messages ---- */

/* Reads the view header; whether it names the current view and round. */
static bool r_view(struct dv_sync *s, struct dv_rbuf *r, bool *ret_same_round)
{
	uint32_t round = dv_r_u32(r);
	size_t n = dv_r_count(r, DV_ENGINE_MAX_NODES, 4);
	bool match = !r->bad && n == s->n_view;

	for (size_t i = 0; i < n; i++) {
		uint32_t id = dv_r_u32(r);

		if (!match || id != s->view[i])
			match = false;
	}
	*ret_same_round = round == s->round;
	return match && !r->bad;
}

static int on_summary(struct dv_sync *s, dv_nodeid_t sender, struct dv_rbuf *r)
{
	struct contrib c = {.got = true};
	bool round;
	ssize_t i;

	if (!r_view(s, r, &round) || !round || s->phase != COLLECT)
		return 0;
	c.qring = dv_r_u64(r);
	c.qcount = dv_r_u64(r);
	c.unconfirmed = dv_r_u32(r);
	c.lost = dv_r_bool(r);
	c.applied = dv_r_u64(r);
	c.digest = dv_r_u64(r);
	c.ring = dv_r_u64(r);
	c.vq = dv_r_u64(r);
	i = view_index(s, sender);
	if (r->bad || r->off != r->len || i < 0) {
		note(s, LOG_WARNING, "dropped a malformed summary from node %u", sender);
		return 0;
	}
	if (s->contrib[i].got)
		return 0;
	s->contrib[i] = c;
	for (size_t k = 0; k < s->n_view; k++)
		if (!s->contrib[k].got)
			return 0;
	return decide(s);
}

static int on_state(struct dv_sync *s, dv_nodeid_t sender, struct dv_rbuf *r)
{
	const uint8_t *snap;
	uint64_t digest;
	size_t len;
	bool round;
	int ret;

	if (!r_view(s, r, &round) || !round || s->phase != AWAIT_STATE || sender != s->view[s->winner])
		return 0;
	digest = dv_r_u64(r);
	if (r->bad || digest != s->contrib[s->winner].digest) {
		note(s, LOG_ERR, "the state from node %u is not the one it announced", sender);
		return -EPROTO;
	}
	/* TEST ONLY (tests/sim): mutation 1 brings back the merge race of
	 * issue 9, where a state that went through a quorate configuration
	 * was kept instead of the winner's. */
	if (s->own_digest == digest || (s->mutation == 1 && s->qcount > 0))
		return complete(s, false);
	snap = r->data + r->off;
	len = r->len - r->off;
	if (dv_sync_digest(snap, len) != digest) {
		note(s, LOG_ERR, "the state from node %u does not match its digest", sender);
		return -EPROTO;
	}
	ret = s->ops->restore(s->ud, snap, len);
	if (ret < 0) {
		note(s, LOG_ERR, "the state from node %u is unusable here: %s", sender, strerror(-ret));
		return ret;
	}
	note(s, LOG_INFO, "took the group's state (%zu bytes) from node %u", len, sender);
	return complete(s, true);
}

static int on_digest(struct dv_sync *s, dv_nodeid_t sender, struct dv_rbuf *r)
{
	struct dv_sync_member *m;
	uint32_t check;
	uint64_t digest;
	bool round;
	ssize_t i;

	if (!r_view(s, r, &round))
		return 0;
	check = dv_r_u32(r);
	digest = dv_r_u64(r);
	i = view_index(s, sender);
	if (r->bad || r->off != r->len || i < 0) {
		note(s, LOG_WARNING, "dropped a malformed digest from node %u", sender);
		return 0;
	}
	m = &s->members[i];
	m->known = true;
	m->check = check;
	m->digest = digest;
	if (check != s->check || digest == s->check_digest || sender == s->self)
		return 0;
	s->mismatch = true;
	note(s, LOG_ERR,
	     "node %u's state differs from this node's at check point %u of the view (digest %016llx, here %016llx); "
	     "exchanging states again",
	     sender, check, (unsigned long long)digest, (unsigned long long)s->check_digest);
	if (s->view[0] != s->self || s->resync_sent || s->phase != IDLE)
		return 0;
	s->resync_sent = true;
	return send_simple(s, MSG_RESYNC);
}

/* buf: the whole message, EVENT or QUORUM. */
static int on_event(struct dv_sync *s, dv_nodeid_t sender, bool own, const uint8_t *buf, size_t len)
{
	if (s->phase != IDLE || !s->synced)
		return items_add(s, sender, own, buf, len);
	return apply_item(s, sender, buf, len);
}

/* ---- batches ---- */

#define BATCH_HEAD 1 /* the kind byte */
#define PART_HEAD 4  /* a message's length */

bool dv_sync_batch_fits(const struct dv_sync_batch *b, size_t len)
{
	size_t used = b->n ? b->w.len : BATCH_HEAD;

	return len <= DV_SYNC_BATCH_BYTES && used + PART_HEAD + len <= DV_SYNC_BATCH_BYTES;
}

bool dv_sync_batch_first(const struct dv_sync_batch *b, size_t len, bool *alone)
{
	*alone = len > DV_SYNC_BATCH_BYTES / 2;
	return b->n > 0 && (*alone || !dv_sync_batch_fits(b, len));
}

int dv_sync_batch_add(struct dv_sync_batch *b, const uint8_t *buf, size_t len)
{
	size_t was;

	if (len == 0 || !dv_sync_batch_fits(b, len))
		return -EINVAL;
	if (b->n == 0) {
		b->w.len = 0;
		dv_w_u8(&b->w, MSG_BATCHED);
	}
	was = b->w.len;
	dv_w_u32(&b->w, (uint32_t)len);
	dv_w_bytes(&b->w, buf, len);
	if (b->w.err) {
		int r = b->w.err;

		/* Out of memory: the batch as it was. */
		b->w.err = 0;
		b->w.len = b->n ? was : 0;
		return r;
	}
	b->n++;
	return 0;
}

static bool batch_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **part, size_t *part_len, bool *bad);

bool dv_sync_batch_take(struct dv_sync_batch *b, bool whole, const uint8_t **buf, size_t *len)
{
	bool bad = false;

	if (b->n == 0)
		return false;
	if (b->off == 0 && (whole || b->n == 1)) {
		*buf = b->n == 1 ? b->w.data + BATCH_HEAD + PART_HEAD : b->w.data;
		*len = b->n == 1 ? b->w.len - BATCH_HEAD - PART_HEAD : b->w.len;
		b->n = 0;
		return true;
	}
	if (b->off == 0)
		b->off = BATCH_HEAD;
	/* Well-formed: dv_sync_batch_add() wrote it. */
	(void)batch_next(b->w.data, b->w.len, &b->off, buf, len, &bad);
	if (b->off >= b->w.len)
		b->n = b->off = 0;
	return true;
}

void dv_sync_batch_free(struct dv_sync_batch *b)
{
	free(b->w.data);
	*b = (struct dv_sync_batch){0};
}

/* The batch's message at *off, if any: *part and *part_len, *off past it.
 * False at the end, and when malformed (*bad). */
static bool batch_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **part, size_t *part_len, bool *bad)
{
	struct dv_rbuf r = {.data = buf, .len = len, .off = *off};
	uint32_t n;

	if (*off >= len)
		return false;
	n = dv_r_u32(&r);
	if (r.bad || n == 0 || n > len - r.off || buf[r.off] == MSG_BATCHED) {
		*bad = true;
		return false;
	}
	*part = buf + r.off;
	*part_len = n;
	*off = r.off + n;
	return true;
}

/* A BATCHED: checked whole first (a malformed one is dropped whole), then
 * its messages delivered in their order. */
static int on_batch(struct dv_sync *s, dv_nodeid_t sender, bool own, const uint8_t *buf, size_t len)
{
	const uint8_t *part;
	size_t off = BATCH_HEAD, n = 0, part_len;
	bool bad = false;
	int r = 0;

	while (batch_next(buf, len, &off, &part, &part_len, &bad))
		n++;
	if (bad || n == 0) {
		note(s, LOG_WARNING, "dropped a malformed batch from node %u", sender);
		return 0;
	}
	/* Sent in the last view, before its sender's BEAT of this one: a
	 * protocol-1 member drops it, so every member does, and the sender
	 * sends its events again (resend_own's flight). The sender counts its
	 * own as come back all the same: its outbox would keep a REPLAY in it
	 * as in flight (the copies after the next one sent again at a later
	 * join, or none at an interrupted exchange), and its gate a question. */
	if (!dv_sync_may_batch(s)) {
		note(s, LOG_DEBUG, "dropped a batch from node %u sent before the view changed", sender);
		off = BATCH_HEAD;
		while (own && batch_next(buf, len, &off, &part, &part_len, &bad)) {
			if (part[0] == MSG_EVENT || part[0] == MSG_REPLAY)
				outbox_delivered(s, part, part_len);
			if (part[0] == MSG_QUORUM_ASK)
				s->ops->asked(s->ud, false);
		}
		return 0;
	}
	off = BATCH_HEAD;
	while (r == 0 && batch_next(buf, len, &off, &part, &part_len, &bad))
		r = dv_sync_message(s, sender, own, part, part_len);
	return r;
}

/* A member's protocol, from its BEAT. */
static int on_beat(struct dv_sync *s, dv_nodeid_t sender, struct dv_rbuf *r)
{
	ssize_t i = view_index(s, sender);
	uint16_t proto;

	if (r->len == 1 || i < 0)
		return 0;
	proto = dv_r_u16(r);
	if (r->bad || proto == 0) {
		note(s, LOG_WARNING, "dropped a malformed beat from node %u", sender);
		return 0;
	}
	s->members[i].proto = proto;
	return 0;
}

bool dv_sync_may_batch(const struct dv_sync *s)
{
	if (!s->joined)
		return false;
	for (size_t i = 0; i < s->n_view; i++)
		if (s->members[i].proto < DV_SYNC_PROTO)
			return false;
	return true;
}

int dv_sync_message(struct dv_sync *s, dv_nodeid_t sender, bool own, const uint8_t *buf, size_t len)
{
	struct dv_rbuf r = {.data = buf, .len = len, .off = 1};
	bool round, same_view;

	if (!s->joined)
		return 0;
	if (len < 1) {
		note(s, LOG_WARNING, "dropped an empty message from node %u", sender);
		return 0;
	}
	if (own && (buf[0] == MSG_EVENT || buf[0] == MSG_REPLAY))
		outbox_delivered(s, buf, len);
	switch (buf[0]) {
	case MSG_EVENT:
	case MSG_QUORUM:
		return on_event(s, sender, own, buf, len);
	case MSG_REPLAY:
		/* Sent at a view change during an exchange, so delivered
		 * during one (this view's, or the next if it changes first). */
		if (s->phase != IDLE || !s->synced)
			items_drop_sender(s, sender);
		return 0;
	case MSG_SUMMARY:
		return on_summary(s, sender, &r);
	case MSG_STATE:
		return on_state(s, sender, &r);
	case MSG_DIGEST:
		return on_digest(s, sender, &r);
	case MSG_CHECK:
		if (r_view(s, &r, &round) && round && s->phase == IDLE && s->synced && sender == s->view[0])
			return check_point(s);
		return 0;
	case MSG_QUORUM_ASK:
		/* The asker's gate counts what follows as sent after its loss,
		 * and counts its questions: one delivered in a later view than
		 * it was sent in is counted too, or the gate would take a
		 * later question for one sent before the loss and wait for
		 * ever (tests/sim invariant 6). */
		same_view = r_view(s, &r, &round);
		if (own)
			s->ops->asked(s->ud, same_view);
		if (!same_view || s->view[0] != s->self)
			return 0;
		s->quorum_due = true;
		return send_quorum(s);
	case MSG_BEAT:
		return on_beat(s, sender, &r);
	case MSG_BATCHED:
		return on_batch(s, sender, own, buf, len);
	case MSG_RESYNC:
		if (r_view(s, &r, &round) && round && s->phase == IDLE && s->synced && sender == s->view[0]) {
			s->round++;
			note(s, LOG_NOTICE, "node %u asked for a new state exchange", sender);
			return start_exchange(s, false);
		}
		return 0;
	default:
		note(s, LOG_WARNING, "dropped a message of unknown kind %u from node %u", buf[0], sender);
		return 0;
	}
}

/* ---- view changes ---- */

static int id_cmp(const void *a, const void *b)
{
	dv_nodeid_t x = *(const dv_nodeid_t *)a, y = *(const dv_nodeid_t *)b;

	return (x > y) - (x < y);
}

static int set_view(struct dv_sync *s, const dv_nodeid_t *members, size_t n)
{
	dv_nodeid_t *view = malloc((n ? n : 1) * sizeof(*view));
	struct contrib *contrib = calloc(n ? n : 1, sizeof(*contrib));
	struct dv_sync_member *mem = calloc(n ? n : 1, sizeof(*mem));
	size_t k = 0;

	if (!view || !contrib || !mem) {
		free(view);
		free(contrib);
		free(mem);
		return -ENOMEM;
	}
	memcpy(view, members, n * sizeof(*view));
	qsort(view, n, sizeof(*view), id_cmp);
	/* One dvipad per node: duplicates would be a misconfiguration. */
	for (size_t i = 0; i < n; i++)
		if (k == 0 || view[k - 1] != view[i])
			view[k++] = view[i];
	for (size_t i = 0; i < k; i++) {
		ssize_t was = view_index(s, view[i]);

		mem[i].node = view[i];
		/* Known in the last view, known in this one (dv_sync_confchg). */
		mem[i].proto = was >= 0 ? s->members[was].proto : 0;
	}
	free(s->view);
	free(s->contrib);
	free(s->members);
	s->view = view;
	s->n_view = k;
	s->contrib = contrib;
	s->members = mem;
	s->round = 0;
	s->check = 0;
	s->mismatch = s->resync_sent = false;
	return 0;
}

int dv_sync_confchg(struct dv_sync *s, const dv_nodeid_t *members, size_t n, bool joined, uint64_t ring)
{
	/* What this node sent in the last view may have gone batched. */
	bool flight = joined && dv_sync_may_batch(s);
	int r;

	/* Only a ring this node has left counts as earlier: a view change in
	 * the same ring (a dvipad came or went, Corosync stayed) leaves it
	 * the current one, or a member told of it before the change would
	 * count it and one told after would not (tests/sim seed 1145). */
	if (ring != s->view_ring) {
		if (s->vq_now > s->vq_mark)
			s->vq_mark = s->vq_now;
		/* Corosync may have said it before this view came. */
		s->vq_now = s->nt_ring == ring && s->nt_quorate ? ring : 0;
	}
	s->view_ring = ring;
	if (n > DV_ENGINE_MAX_NODES)
		return -E2BIG;
	for (size_t i = 0; s->synced && i < s->n_view; i++) {
		bool stays = false;

		for (size_t k = 0; k < n && !stays; k++)
			stays = members[k] == s->view[i];
		s->left_pending |= !stays;
	}
	r = set_view(s, members, n);
	if (r < 0)
		return r;
	s->joined = true;
	if (view_index(s, s->self) < 0) {
		note(s, LOG_ERR, "a view without this node");
		return -EPROTO;
	}
	/* Members came: every member announces its protocol again, before
	 * its summary, and each one counts as announced once its BEAT was
	 * delivered in this view, this node too. So every member knows the
	 * same at each point of the stream, and a batch sent once its sender
	 * knew them all is delivered where every member does; one still in
	 * flight from the last view comes before its sender's BEAT, and every
	 * member drops it (on_batch; resend_own's flight sends it again). */
	if (joined) {
		for (size_t i = 0; i < s->n_view; i++)
			s->members[i].proto = 0;
		r = dv_sync_beat(s);
		if (r < 0)
			return r;
	}
	if (!joined && s->phase == IDLE && s->synced) {
		/* Members only left: everyone here had the same state. */
		deliver_membership(s);
		return send_quorum(s);
	}
	if (s->phase != IDLE) {
		/* Interrupted: events delivered during it are dropped by every
		 * member that goes on with this node; its own go again. */
		note(s, LOG_INFO, "the view changed during the state exchange; starting over");
		/* A QUORUM is for its view only: the next one follows this
		 * view's membership. */
		r = resend_own(s, flight);
		if (r < 0)
			return r;
		items_clear(s);
	} else if (flight) {
		r = resend_own(s, true);
		if (r < 0)
			return r;
	}
	return start_exchange(s, true);
}

void dv_sync_quorum_seen(struct dv_sync *s, uint64_t ring, bool quorate)
{
	s->qn_ring = ring;
	s->qn_quorate = quorate;
	judge_membership(s);
}

int dv_sync_quorum_changed(struct dv_sync *s, uint64_t ring, bool quorate)
{
	dv_sync_quorum_seen(s, ring, quorate);
	return send_quorum(s);
}

int dv_sync_quorum_notified(struct dv_sync *s, uint64_t ring, bool quorate)
{
	s->nt_ring = ring;
	s->nt_quorate = quorate;
	if (ring == s->view_ring)
		s->vq_now = quorate ? ring : 0;
	return dv_sync_quorum_changed(s, ring, quorate);
}

void dv_sync_lease(struct dv_sync *s, bool held)
{
	s->lease_out = !held;
	s->cut_off |= !held;
}

int dv_sync_ask_quorum(struct dv_sync *s)
{
	int r;

	if (!s->synced || s->n_view == 0)
		return 0;
	r = send_simple(s, MSG_QUORUM_ASK);
	return r < 0 ? r : 1;
}

int dv_sync_beat(struct dv_sync *s)
{
	struct dv_wbuf w = {0};

	if (!s->joined)
		return 0;
	dv_w_u8(&w, MSG_BEAT);
	dv_w_u16(&w, DV_SYNC_PROTO);
	return send_w(s, &w);
}

int dv_sync_check(struct dv_sync *s)
{
	if (!s->synced || s->phase != IDLE || s->n_view == 0 || s->view[0] != s->self)
		return 0;
	return send_simple(s, MSG_CHECK);
}

void dv_sync_set_mutation(struct dv_sync *s, int m)
{
	s->mutation = m;
}

void dv_sync_info(const struct dv_sync *s, struct dv_sync_info *ret)
{
	*ret = (struct dv_sync_info){
		.joined = s->joined,
		.exchanging = s->phase != IDLE,
		.synced = s->synced,
		.exchanges = s->exchanges,
		.check = s->check,
		.digest = s->check_digest,
		.mismatch = s->mismatch,
		.qring = s->qring,
		.qcount = s->qcount,
		.applied = s->applied,
		.n_members = s->n_view,
		.members = s->members,
	};
}

struct dv_sync *dv_sync_new(dv_nodeid_t self, const struct dv_sync_ops *ops, void *ud)
{
	struct dv_sync *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->self = self;
	s->ops = ops;
	s->ud = ud;
	s->stream_quorate = -1;
	return s;
}

struct dv_sync *dv_sync_free(struct dv_sync *s)
{
	if (!s)
		return NULL;
	items_clear(s);
	free(s->items);
	for (size_t i = 0; i < s->n_out; i++)
		free(s->outbox[i].buf);
	free(s->outbox);
	free(s->view);
	free(s->contrib);
	free(s->members);
	free(s);
	return NULL;
}
