/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Cluster sync (DESIGN §4): the protocol that turns Corosync CPG's agreed
 * order and virtual synchrony into one ordered stream of engine events
 * that every member applies to the same state.
 *
 * Exchange. After every configuration change that brings members together
 * (or when a member asks for one, see below), every member of the new view
 * multicasts a SUMMARY of the state it has at that point of the stream:
 * its digest and how recent it is. Once the summaries of the whole view
 * are delivered, every member picks the same winner from them alone:
 *
 *   the state that went through the most recent quorate configuration
 *   (qring, then qcount: see below), then the one that applied the most
 *   events, then the lowest node id.
 *
 * If every digest equals the winner's, the exchange ends there; otherwise
 * the winner multicasts its STATE and every member whose own digest
 * differs restores it. Then each member applies the view's membership and
 * the events delivered since the change, in stream order. Nothing is timed:
 * who wins and when the exchange ends follow from the messages delivered,
 * which every member of the view sees in the same order. A change of view
 * during an exchange starts it over from the states as they were before
 * (events delivered meanwhile are dropped on every member alike; this
 * node's own are sent again, after a REPLAY and together with copies of
 * those still in flight, so that they stay in the order it sent them).
 *
 * Recency. When the stream says quorate (a QUORUM message), the state is
 * marked with the Corosync ring the sender was in (qring) and a count of
 * such messages (++qcount). Two partitions are never quorate at once, and a
 * partition that becomes quorate after another one was shares a Corosync
 * node with it (votes overlap), whose totem carries the ring numbers on:
 * the later quorate configuration has the higher ring. This holds even
 * when that shared node's dvipad is down, which a count kept by dvipad
 * alone would not survive (the simulator found that).
 *
 * Self-check. At the end of every exchange, and when the lowest member
 * asks (CHECK), every member takes the digest of its state at that point of
 * the stream and multicasts it (DIGEST); every member compares the others'
 * with its own. A difference is reported and repaired: the lowest member
 * multicasts RESYNC, which starts a new exchange at that point.
 *
 * Quorum. The lowest member puts this partition's quorum into the stream
 * (a QUORUM event) whenever it differs from what the stream said last, and
 * after every membership it applies.
 *
 * Pure: no I/O, no clock, no CPG calls. The caller feeds it configuration
 * changes, delivered messages and Corosync's quorum reports, and carries
 * out what it asks through the ops.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "wire.h"

/* Events buffered during an exchange at most; beyond, the caller leaves the
 * group and joins again. */
#define DV_SYNC_BUFFER_MAX 65536
#define DV_SYNC_BUFFER_MAX_BYTES (256u << 20)

struct dv_sync_ops {
	/* Multicast buf in agreed order to the group. 0 or -errno (the
	 * caller then leaves and joins again). */
	int (*send)(void *ud, const uint8_t *buf, size_t len);
	/* Apply one event to the engine, in stream order. */
	void (*deliver)(void *ud, const struct dv_event *ev);
	/* The engine's state, canonical (malloc'ed), and a state to continue
	 * from instead of the local one (0 or -errno). */
	int (*snapshot)(void *ud, uint8_t **ret, size_t *ret_len);
	int (*restore)(void *ud, const uint8_t *buf, size_t len);
	/* An exchange ended: the engine holds the group's state. restored:
	 * this node's state was replaced (or it is the first exchange). */
	void (*synced)(void *ud, bool restored);
	/* An exchange started (on), or ended and what was buffered during it
	 * is applied. */
	void (*exchanging)(void *ud, bool on);
	/* Whether this node's partition is quorate, as this node last learnt
	 * from Corosync: 1, 0, or -1 when it does not know (the quorum
	 * service did not answer a fresh read in time). Unknown is not "not
	 * quorate": the lowest member then puts nothing into the stream, or a
	 * majority's state would be marked lost and a merge could prefer a
	 * minority's (tests/sim invariant 3, seed 154); it does once it
	 * knows (dv_sync_quorum_changed). */
	int (*quorate)(void *ud);
	/* The Corosync ring (totem configuration) this node is in now: its
	 * sequence number. */
	uint64_t (*ring)(void *ud);
	/* Wall clock in ms, only for the "since" of QUORUM events. */
	uint64_t (*wall_ms)(void *ud);
	/* This node's QUORUM_ASK was delivered (dv_sync_ask_quorum). answered:
	 * in the view it was sent in, so the lowest member answers it; one
	 * delivered in a later view is answered by nobody (its stamp names
	 * the old view): the asker must ask again. */
	void (*asked)(void *ud, bool answered);
	/* Something worth a log line (LOG_* priority). */
	void (*note)(void *ud, int prio, const char *msg);
};

struct dv_sync;

/* What this node knows of a member: the protocol it speaks, its state
 * digest. */
struct dv_sync_member {
	dv_nodeid_t node;
	uint16_t proto;	 /* the protocol it announced (DV_SYNC_PROTO), 0: none */
	bool known;	 /* a digest was delivered for the current view */
	uint32_t check;	 /* which check point of the view (see dv_sync_info) */
	uint64_t digest; /* its digest there */
};

struct dv_sync_info {
	bool joined;	 /* a view was delivered */
	bool exchanging; /* an exchange is under way */
	bool synced;	 /* an exchange ended on this connection */
	uint32_t exchanges;
	uint32_t check;	 /* check points of this view so far */
	uint64_t digest; /* this node's digest at the latest check point */
	bool mismatch;	 /* a member's digest differed there */
	uint64_t qring, qcount, applied;
	size_t n_members;
	const struct dv_sync_member *members; /* sorted by node id */
};

struct dv_sync *dv_sync_new(dv_nodeid_t self, const struct dv_sync_ops *ops, void *ud);
struct dv_sync *dv_sync_free(struct dv_sync *s);

/* A configuration change: members (any order, duplicates ignored; this
 * node among them), whether any process joined, and the totem ring that
 * brought it (its sequence number). 0 or -errno (the caller leaves and
 * joins again). */
int dv_sync_confchg(struct dv_sync *s, const dv_nodeid_t *members, size_t n, bool joined, uint64_t ring);
/* A message delivered by CPG from node `sender` (own: sent by this
 * process), a batch's messages each in turn. Malformed messages are
 * reported and dropped. 0 or -errno. */
int dv_sync_message(struct dv_sync *s, dv_nodeid_t sender, bool own, const uint8_t *buf, size_t len);
/*
 * Batches: the messages one turn of the caller's loop sends, packed into
 * one multicast. A partition that loses quorum reports every address it
 * took off (one EVENT each): 21,845 multicasts kept its Corosync on a whole
 * core for 0.8 s on a shared machine (issue 15). Delivering a batch is
 * delivering its messages one after another, in their order, which
 * Corosync's agreed order could have done anyway (nothing of another
 * member between them, all in the same view).
 */
#define DV_SYNC_BATCH_BYTES (64u << 10) /* a batch at most; a larger message goes alone */

/*
 * The protocol this dvipad speaks. Every member announces it in its BEATs,
 * and in one right after each view change that brought a member in, before
 * its summary; at such a change every member's protocol counts as unknown
 * (this node's too) until its BEAT of the view is delivered, so every
 * member knows the same at each point of the stream. A member that
 * announced none runs a dvipad from before batches (protocol 1), which
 * drops a batch as a message of unknown kind (its events lost, its engine
 * wrong until the next digest check): while one is in the view, nothing
 * goes batched. Every member drops a batch delivered while a protocol is
 * unknown (one in flight from the last view), and its sender sends its
 * events in flight again, one by one, behind a REPLAY (sync.c's
 * resend_own; docs/cluster.md's rolling upgrade).
 */
#define DV_SYNC_PROTO 2

/* Whether every member announced, in this view, a protocol with batches. */
bool dv_sync_may_batch(const struct dv_sync *s);

struct dv_sync_batch {
	struct dv_wbuf w; /* kept between batches */
	size_t n;	  /* messages in it */
	size_t off;	  /* taken one by one: the next one's offset, or 0 */
};

/* Whether a message of len bytes still fits into b. */
bool dv_sync_batch_fits(const struct dv_sync_batch *b, size_t len);
/* Before a message of len bytes is sent: whether b must go first (the
 * message does not fit, or goes alone), and whether the message then goes
 * alone (*alone: more than half a batch, a state), not into b. Earlier
 * messages never go after a later one. */
bool dv_sync_batch_first(const struct dv_sync_batch *b, size_t len, bool *alone);
/* Add a message (1 to DV_SYNC_BATCH_BYTES bytes, b with room for it): 0,
 * -EINVAL, or -ENOMEM. */
int dv_sync_batch_add(struct dv_sync_batch *b, const uint8_t *buf, size_t len);
/* The next multicast for b's messages: false when b is empty. With whole
 * (dv_sync_may_batch), all of them (the only one as it is), else one
 * message after another. Valid until the next call on b; b is empty once
 * all were taken. */
bool dv_sync_batch_take(struct dv_sync_batch *b, bool whole, const uint8_t **buf, size_t *len);
void dv_sync_batch_free(struct dv_sync_batch *b);

/* Multicast an engine event. -ENOTCONN before the first view. */
int dv_sync_submit(struct dv_sync *s, const struct dv_event *ev);
/* Corosync reported this partition's quorum in ring `ring`. */
int dv_sync_quorum_changed(struct dv_sync *s, uint64_t ring, bool quorate);
/* Corosync's quorum notification, which names the ring it is for (a fresh
 * read does not): as dv_sync_quorum_changed(), and a quorate ring this
 * node was in counts for it at a merge (the summary's vq). */
int dv_sync_quorum_notified(struct dv_sync *s, uint64_t ring, bool quorate);
/* Corosync's quorum in ring `ring`, read afresh at every membership (before
 * the configuration change is passed on): its notification comes through
 * another connection and may arrive only after a later ring's, and then be
 * dropped as stale, and the state's last membership would never be judged
 * (a 5-node fault campaign: a whole ring split into single nodes, none of
 * them marked lost, and holds were lost at the merge). */
void dv_sync_quorum_seen(struct dv_sync *s, uint64_t ring, bool quorate);
/* The ring lease (fence.h) ran out (held false) or holds again: a
 * membership in which members left, applied after the lease ran out and
 * before the stream says quorate again, marks the state lost (this node
 * may be the one cut off), unless Corosync said that ring is quorate. */
void dv_sync_lease(struct dv_sync *s, bool held);
/* The lowest member asks every member for its digest (periodic check);
 * does nothing on the others or during an exchange. */
int dv_sync_check(struct dv_sync *s);
/* A heartbeat: a message every member ignores, sent so that one of this
 * node's is in flight (fence.h). */
int dv_sync_beat(struct dv_sync *s);
/* Ask the lowest member to put the quorum into the stream again; ops->asked
 * tells when the question is delivered (what the stream says next was sent
 * after it). 1: sent; 0: not in sync yet, nothing sent; or -errno. */
int dv_sync_ask_quorum(struct dv_sync *s);

void dv_sync_info(const struct dv_sync *s, struct dv_sync_info *ret);
/* TEST ONLY, for the simulator (tests/sim): 1 re-creates the merge race of
 * issue 9 (a member whose state went through a quorate configuration keeps
 * it instead of taking the winner's); 0, the default, is the real code. */
void dv_sync_set_mutation(struct dv_sync *s, int m);
/* FNV-1a, 64 bits: the digest of a snapshot. */
uint64_t dv_sync_digest(const uint8_t *buf, size_t len);
