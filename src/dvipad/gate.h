/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The gate: whether this node may have its addresses installed now, and
 * what its clients hear while the cluster changes under them (DESIGN §4).
 *
 * The kernel has an address exactly when the engine says this node owns
 * it, the partition is quorate as Corosync reports it now (not only as the
 * stream said last), and the node is in sync with its group. While the gate
 * is closed:
 *  - grants are held back: a program told GRANTED would bind to an address
 *    that is not there; they are passed on when the gate opens, if the
 *    client still holds the address then (the same for grants and OK
 *    replies about an address handed over to this node, until the
 *    previous owner has taken it off: engine_state.c);
 *  - a state taken from the group may lack this node's standbys (the other
 *    side of a partition dropped them): they are registered again once the
 *    node's configuration is published, without their programs noticing;
 *  - holds and standbys that vanished are reported, so that the daemon
 *    tells their programs LOST.
 *
 * Pure: no I/O, no clock, no callbacks. The daemon feeds it Corosync's
 * reports and the engine's effects, and carries out what it answers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "engine.h"
#include "hashtab.h"
#include "proto.h"

/* Grants held back at most; beyond, a grant is passed on at once. */
#define DV_GATE_MAX_GRANTS 65536
/* Requests in flight tracked at most; beyond, one lost with the cluster
 * connection goes unanswered (its program's own timeout applies). */
#define DV_GATE_MAX_REQUESTS 65536

struct dv_gate_grant {
	TAILQ_ENTRY(dv_gate_grant) link;
	uint64_t client;
	struct dv_addr addr;
	bool reply; /* an OK reply to request seq, not a GRANTED notice */
	uint32_t seq;
	char reason[DV_REASON_MAX];
};

struct dv_gate_restandby {
	TAILQ_ENTRY(dv_gate_restandby) link;
	uint64_t client;
	struct dv_addr addr;
	unsigned rank;
	enum dv_kind kind;
	uid_t uid;
	bool sent; /* submitted; waiting for the engine's answer */
};

struct dv_gate {
	bool connected;	 /* in the group and in sync with it */
	bool quorate;	 /* Corosync's latest word on this partition */
	bool exchanging; /* a state exchange is under way (sync.h) */
	bool lapsed;	 /* the ring lease ran out (fence.h) */
	bool waiting;	 /* for a vanished member's lease to run out (fence.h) */
	/* Quorum was lost (or never confirmed on this connection): the
	 * engine's state may be stale until the stream says quorate again,
	 * whatever Corosync says meanwhile (a heal makes votequorum say
	 * "quorate" before the configuration change reaches the stream: the
	 * state from before the cut must not put addresses back). And only a
	 * QUORUM sent after the loss counts: one that follows a "not quorate"
	 * in the stream or this node's own question (RECONFIRM_SEEN), not one
	 * sent before the loss and delivered after it. (Not a membership: one
	 * applied at the end of an exchange stands for a change that may
	 * precede the loss.) */
	enum { RECONFIRM_NONE = 0, RECONFIRM_WAIT, RECONFIRM_SEEN } reconfirm;
	/* This node's questions in flight (dv_gate_ask_sent), and how many of
	 * them were sent before the latest loss: such a question, delivered
	 * after the loss, does not make what follows it "sent after the loss"
	 * (tests/sim seed 1530: an address on two nodes). */
	uint32_t asks, stale_asks;
	/* The Corosync ring of the latest loss of quorum: a QUORUM of an
	 * earlier ring was sent before it, and counts neither way (tests/sim
	 * seed 801: a "not quorate" and a "quorate" both sent before the loss
	 * reopened the gate at the heal, on a state from before it, and an
	 * address was on two nodes). */
	uint64_t loss_ring;
	TAILQ_HEAD(, dv_gate_grant) grants;
	size_t n_grants;
	/* Sent ones first, in the order sent: the replies come in that order,
	 * and the next to send is found without a walk (21,845 standbys
	 * registered again after a heal took minutes with one, issue 15). */
	TAILQ_HEAD(, dv_gate_restandby) restandbys;
	struct dv_gate_restandby *restandby_next; /* the first not sent; NULL: none */
	struct dv_hashtab requests;		  /* struct dv_gate_request, by (client, seq) */
};

/* A client's request submitted to the cluster and not answered yet. */
struct dv_gate_request {
	uint64_t client;
	uint32_t seq;
	struct dv_addr addr; /* family 0: a node request */
};

/* solo (CLUSTER NONE): connected and quorate for good. */
void dv_gate_init(struct dv_gate *g, bool solo);
void dv_gate_clear(struct dv_gate *g);

bool dv_gate_is_open(const struct dv_gate *g);
/* Why the gate is closed, for status ("open" when it is not). */
const char *dv_gate_describe(const struct dv_gate *g);
/* Whether address a must be installed on this node now. */
bool dv_gate_wants(const struct dv_gate *g, const struct dv_engine *e, const struct dv_addr *a);

/* What a report from Corosync does to the addresses of this node. */
enum dv_gate_move {
	DV_GATE_KEEP = 0, /* nothing */
	DV_GATE_OPEN,	  /* install what the engine says this node owns; pass held grants on */
	DV_GATE_CLOSE,	  /* remove every address at once */
};

/* This node's partition gained or lost quorum (immediate, not ordered with
 * the stream), in Corosync ring `ring` (its sequence number, as far as the
 * caller knows it). */
enum dv_gate_move dv_gate_quorum(struct dv_gate *g, bool quorate, uint64_t ring);
/* up: this node is in the group and in sync (again). !up: the connection to
 * the cluster is lost; no re-registration can be answered any more. */
enum dv_gate_move dv_gate_connected(struct dv_gate *g, bool up);
/* The stream applied a QUORUM event, sent in Corosync ring `ring`. */
enum dv_gate_move dv_gate_stream_quorum(struct dv_gate *g, bool quorate, uint64_t ring);
/* answered: the question came back in the view it was sent in (sync.h);
 * otherwise nobody answers it and the gate keeps waiting (the daemon asks
 * again). */
void dv_gate_stream_asked(struct dv_gate *g, bool answered);
/* The daemon sent this node's question (dv_cluster_ask_quorum said so). */
void dv_gate_ask_sent(struct dv_gate *g);
/* Corosync says quorate but the gate waits for the stream (after a loss the
 * stream may never show, a flap only this node saw; or on joining): the
 * daemon asks the group for the quorum again (dv_cluster_ask_quorum). */
bool dv_gate_should_ask(const struct dv_gate *g);
/* A state exchange started (on) or ended. During one the engine's state may
 * be about to be replaced by the group's: nothing is installed and grants
 * are held back, but what is installed stays (a merge must not take the
 * quorate side's addresses down). */
enum dv_gate_move dv_gate_exchanging(struct dv_gate *g, bool on);

/* The ring lease (fence.h) ran out (!held): every address goes at once,
 * and the stream must confirm the quorum again before they come back
 * (whatever happened meanwhile, this node did not see it); or it holds
 * again. */
enum dv_gate_move dv_gate_lease(struct dv_gate *g, bool held);
/* A member vanished from the ring (on), and may have its addresses until
 * its lease runs out (off): meanwhile, as during an exchange, nothing is
 * installed and grants are held back, but what is installed stays. */
enum dv_gate_move dv_gate_takeover_wait(struct dv_gate *g, bool on);

/* ---- grants ---- */

/* Whether a is this node's but still on its previous owner's interface
 * (the hand-over). */
bool dv_gate_handing_over(const struct dv_engine *e, const struct dv_addr *a);
/* A GRANTED notice for client about a: true if it is held back (the gate is
 * closed, or a is being handed over), false to pass it on now. */
bool dv_gate_hold_grant(struct dv_gate *g, const struct dv_engine *e, uint64_t client, const struct dv_addr *a,
			const char *reason);
/* An OK reply to client's request seq about a: true if it is held back (a
 * is being handed over and the request made client a holder of it), false
 * to pass it on now. */
bool dv_gate_hold_reply(struct dv_gate *g, const struct dv_engine *e, uint64_t client, uint32_t seq,
			const struct dv_addr *a, const char *reason);
/* Forget the held grants and replies of client (about a, or all if a is
 * NULL): it went away. */
void dv_gate_drop_grants(struct dv_gate *g, uint64_t client, const struct dv_addr *a);
/* Take out the next held grant or reply of client about a (it lost a: the
 * caller passes replies on, the program waits for them, and drops
 * grants); NULL when none is left. */
struct dv_gate_grant *dv_gate_take(struct dv_gate *g, uint64_t client, const struct dv_addr *a);
/* The gate is open: the next held grant or reply, oldest first, whose
 * address is on this node's interface and whose client still holds it
 * (others ended and are dropped; those still handed over wait); the caller
 * passes it on and frees it. NULL when none is left, or the gate is closed. */
struct dv_gate_grant *dv_gate_pop_grant(struct dv_gate *g, const struct dv_engine *e);

/* ---- what this node's clients have, across a change of state ---- */

/* An API hold or a standby of a client of this node. */
struct dv_gate_ref {
	uint64_t client;
	struct dv_addr addr;
	bool standby;
	bool again;	      /* noted for registration again: not lost */
	struct dv_standby sb; /* if standby */
};

struct dv_gate_refs {
	struct dv_gate_ref *v;
	size_t n, cap;
};

/* This node's API holds and standbys in e: 0 or -ENOMEM. */
int dv_gate_refs_collect(const struct dv_engine *e, struct dv_gate_refs *ret);
void dv_gate_refs_clear(struct dv_gate_refs *refs);
/* Whether the hold or standby still stands in e (a standby granted
 * meanwhile counts: it became a hold). */
bool dv_gate_ref_present(const struct dv_engine *e, const struct dv_gate_ref *r);
/* The ref is gone for its program: neither registered again nor still in e
 * (e NULL: the state was dropped). */
bool dv_gate_ref_lost(const struct dv_engine *e, const struct dv_gate_ref *r);

/* ---- standbys registered again after a heal ---- */

/* The state was replaced (e now holds the group's): standbys of clients
 * still connected (alive[i] for refs->v[i]) that e lacks are noted to be
 * registered again, and marked `again`. Holds are not: the address has
 * moved on, and a claim would pull it back. */
void dv_gate_note_restandbys(struct dv_gate *g, const struct dv_engine *e, struct dv_gate_refs *refs,
			     const bool *alive);
/* The next noted standby not yet sent, as a STANDBY event (seq 0: the
 * program was answered when it registered); marked sent. false: none, or
 * the stream has not confirmed e's quorum yet (a standby sent now would be
 * refused "not quorate" and its program told LOST). */
bool dv_gate_next_restandby(struct dv_gate *g, const struct dv_engine *e, struct dv_event *ret);
/* Forget client's noted standbys (it went away). */
void dv_gate_drop_restandbys(struct dv_gate *g, uint64_t client);

/* ---- requests in flight ---- */

/* Request (client, seq) about a (NULL: a node request) goes to the
 * cluster: note it before submitting, as the answer may come at once.
 * 0, -ENOSPC (too many), -ENOMEM. */
int dv_gate_sent(struct dv_gate *g, uint64_t client, uint32_t seq, const struct dv_addr *a);
/* It was answered (by the engine, or at once because it never went). */
void dv_gate_answered(struct dv_gate *g, uint64_t client, uint32_t seq);
/* Forget client's requests: it went away. */
void dv_gate_drop_requests(struct dv_gate *g, uint64_t client);
/* The connection to the cluster is lost: no answer comes for the requests
 * still in flight. The next of them, which the caller answers and frees;
 * NULL when none is left. */
struct dv_gate_request *dv_gate_pop_unanswered(struct dv_gate *g);

/* ---- the engine's replies ---- */

enum dv_gate_say {
	DV_GATE_SAY_REPLY = 1, /* pass the reply on as it is */
	DV_GATE_SAY_GRANTED,   /* a re-registered standby was granted: notify */
	DV_GATE_SAY_LOST,      /* a re-registered standby was refused: notify */
	DV_GATE_SAY_NOTHING,   /* a re-registration was accepted: the program waits on */
};

struct dv_gate_answer {
	enum dv_gate_say say;
	/* The address is this node's now but the kernel refused it: the reply
	 * (or the LOST notice) carries the kernel's reason and DV_R_KERNEL,
	 * and this node's holds on it are released. */
	bool refused;
};

/* How to pass on the engine's reply to (client, seq) about a (NULL: a node
 * request); installed: whether the kernel has a now. */
struct dv_gate_answer dv_gate_reply(struct dv_gate *g, const struct dv_engine *e, uint64_t client, uint32_t seq,
				    const struct dv_addr *a, enum dv_result result, bool installed);
