/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ring lease: a node keeps its addresses only while it can prove that
 * it is still in its Corosync ring, and a node taking over from a member
 * that vanished waits until that member's proof has surely run out.
 *
 * Why: a node cut off from the others keeps believing that its partition
 * is quorate until its own Corosync has formed a new ring, and that can
 * take longer than the majority needs to form its ring and take the
 * addresses over (measured 720 ms against 450 ms with token 200, when the
 * link came back while the cut-off side was still forming). Both hosts had
 * the address meanwhile.
 *
 * The proof: CPG hands a node its own message back only after the ring has
 * ordered it, so a message that comes back proves that the ring was whole
 * at some moment after it was handed to Corosync. A node lapses when
 * something it handed over (or tried to: flow control) has not come back
 * within `lease`. Heartbeats keep a message in flight when nothing else is.
 *
 * The bound, on each node's own monotonic clock (only durations compare):
 *  - X, cut off, had its last message ordered in the old ring at oX. What
 *    it hands over after oX never comes back in that ring, and it hands
 *    something over at least every `period` (+ one tick): it lapses by
 *    oX + lease + 2 periods, and removes its addresses.
 *  - M, in the majority, last got back a message handed over at sM (its
 *    proof). Any message M handed over up to one token rotation before oX
 *    was ordered before the ring broke, and M hands one over every period:
 *    oX <= sM + 2 periods + a rotation.
 *  - So X is fenced by sM + lease + 4 periods + a rotation, and M may put
 *    X's addresses up at dv_fence_takeover_at() = sM + lease + margin.
 *
 * The lease is token + consensus + token / 2: a majority's new ring forms
 * within token + consensus of the cut, and its members, which lapse just as
 * the cut-off node does, must have their new ring (and its quorum) before
 * their own lease runs out, or they too drop their addresses for a moment.
 *
 * Pure: the caller passes the time in microseconds (monotonic).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dv_fence {
	uint64_t period_us; /* a heartbeat goes out when nothing did for this long */
	uint64_t lease_us;
	uint64_t margin_us;
	/* Hand-over times of this node's messages in flight, oldest first
	 * (CPG hands a sender its own messages back in the order sent). */
	uint64_t *inflight;
	size_t head, n, cap;
	uint64_t blocked_since; /* a send was refused (flow control) since; 0: none */
	uint64_t last_handed;	/* the last hand-over (or refused attempt) */
	uint64_t proof;		/* hand-over time of the last message that came back; 0: none yet */
	bool lapsed;
};

/* token_ms, consensus_ms: Corosync's runtime totem timeouts. */
void dv_fence_init(struct dv_fence *f, uint32_t token_ms, uint32_t consensus_ms, uint64_t now);
void dv_fence_clear(struct dv_fence *f);

/* A message was handed to Corosync at now: 0, or -ENOMEM. */
int dv_fence_handed(struct dv_fence *f, uint64_t now);
/* A send was refused at now (flow control): it counts as in flight. */
void dv_fence_refused(struct dv_fence *f, uint64_t now);
/* One of this node's own messages came back (in the order handed over). */
void dv_fence_returned(struct dv_fence *f);
/* Whether to send a heartbeat at now: nothing handed over for a period. */
bool dv_fence_beat_due(const struct dv_fence *f, uint64_t now);

/* Whether the lease ran out at now (something in flight for longer than
 * the lease), and whether that changed since the last call: *changed is
 * set on the step into and out of the lapse. */
bool dv_fence_check(struct dv_fence *f, uint64_t now, bool *changed);
/* When a member that vanished from this node's ring has surely lapsed:
 * this node's proof + lease + margin (now + lease + margin without one). */
uint64_t dv_fence_takeover_at(const struct dv_fence *f, uint64_t now);
