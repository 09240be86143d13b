/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine: dvipa's pure state machine (DESIGN §4).
 *
 * It takes one totally ordered stream of events and keeps the ownership
 * table of every VIPA in the cluster. It does no I/O, reads no clock and has
 * no globals: every node that applies the same stream computes the same
 * owners. The only node-specific thing is `self`, which selects the effects
 * reported back (replies and notifications to this node's clients, and
 * whether this node must have an address installed).
 *
 * With CLUSTER NONE the stream is simply the local events looped back
 * (cluster_solo.c); with Corosync it is CPG's agreed order.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "conf.h"
#include "proto.h"
#include "result.h"

typedef uint32_t dv_nodeid_t; /* Corosync node id; 1 with CLUSTER NONE */

#define DV_ENGINE_MAX_VIPAS 65536
#define DV_ENGINE_MAX_HOLDS 1024   /* per VIPA */
#define DV_ENGINE_MAX_STANDBYS 256 /* per VIPA */
#define DV_ENGINE_MAX_NODES 64
#define DV_RANK_DEFINE 255

/* Facts a node observes about one address (DV_EV_ADDR_STATE). */
enum {
	DV_AS_BOUND = 1 << 0,	  /* some socket on the node is bound to it */
	DV_AS_BUSY = 1 << 1,	  /* established connections on it (WHENIDLE) */
	DV_AS_LISTENING = 1 << 2, /* the define's TRACKPORT has a listener */
	/* Alone: the node took the address off its interface (the engine
	 * told it to): the next owner may put it on (the hand-over). */
	DV_AS_REMOVED = 1 << 3,
};
/* A distributed VIPA's port has a listener on the node (for the VIPA or the
 * wildcard): bit i for the i-th of the VIPADISTRIBUTE's ports in ascending
 * order (DV_DIST_MAX_PORTS of them). The distributor sends new connections
 * for that port only to nodes that report it ready. */
#define DV_AS_READY_SHIFT 4
#define DV_AS_READY(i) (1u << (DV_AS_READY_SHIFT + (i)))
#define DV_AS_READY_ALL (((1u << DV_DIST_MAX_PORTS) - 1) << DV_AS_READY_SHIFT)
/* The node's weight for the i-th port while ready (BASEWLM: its spare CPU;
 * SERVERWLM: that times its listener's accept-queue headroom; dist.h),
 * 1..DV_AS_WEIGHT_MAX, kept as weight - 1 in 4 bits: a report without
 * them says 1 for every port, equal weights. Replicated with the report, so
 * that every node computes the same weighted table. */
#define DV_AS_WEIGHT_SHIFT (DV_AS_READY_SHIFT + DV_DIST_MAX_PORTS)
#define DV_AS_WEIGHT_MAX 16u
#define DV_AS_WEIGHT(i, w) ((((unsigned)(w)-1u) & 15u) << (DV_AS_WEIGHT_SHIFT + 4 * (i)))
#define DV_AS_WEIGHT_ALL (((1u << (4 * DV_DIST_MAX_PORTS)) - 1) << DV_AS_WEIGHT_SHIFT)
#define DV_AS_ALL (DV_AS_BOUND | DV_AS_BUSY | DV_AS_LISTENING | DV_AS_REMOVED | DV_AS_READY_ALL | DV_AS_WEIGHT_ALL)
_Static_assert(DV_AS_WEIGHT_SHIFT + 4 * DV_DIST_MAX_PORTS <= 32, "the weights fit the flags");

static inline unsigned dv_as_weight(unsigned flags, size_t i)
{
	return ((flags >> (DV_AS_WEIGHT_SHIFT + 4 * i)) & 15u) + 1;
}

enum dv_event_type {
	DV_EV_NODE_CONFIG = 1, /* a node's ranges and defines (start, reload) */
	DV_EV_CLAIM,	       /* activate */
	DV_EV_RELEASE,	       /* release / deactivate */
	DV_EV_STANDBY,	       /* register as standby with a rank */
	DV_EV_CLIENT_GONE,     /* a client connection of the node ended */
	DV_EV_ADDR_STATE,      /* observed facts about an address on the node */
	DV_EV_MEMBERSHIP,      /* the set of live nodes */
	DV_EV_QUORUM,	       /* this partition is quorate or not */
	DV_EV_MOVE,	       /* operator: move an active range VIPA to a node */
	DV_EV_DEFINE_STATE,    /* operator: (de)activate a node's define of an address */
	DV_EV_NODE_ADMIN,      /* operator: a node leaves or joins (drain) */
	DV_EV_DIST_PINS,       /* a target's connections a distributor must pin (dist.c) */
	DV_EV_PORT_SLICE,      /* SYSPLEXPORTS: a node asks for (or gives back) its ports of an address */
	DV_EV_QUIESCE,	       /* operator: a target of a distributed VIPA takes no new connections */
	DV_EV_MOVING,	       /* a moved VIPA's old owner still serves these connections (dist_move.c) */
};
#define DV_EV_LAST DV_EV_MOVING
/* Quiesced (node, port) pairs of one distributed VIPA. */
#define DV_ENGINE_MAX_QUIESCED (DV_ENGINE_MAX_NODES * DV_DIST_MAX_PORTS)
/* Connections in one DV_EV_DIST_PINS: within DV_WIRE_MAX (19 bytes each). */
#define DV_DIST_PINS_MAX 40000

/*
 * SYSPLEXPORTS (engine_slices.c): each node gets one contiguous slice of
 * the ephemeral ports of a distributed VIPA, so that its outbound
 * connections from the shared address have ports no other node uses and the
 * distributor can send their replies to it. Slices are whole blocks of the
 * pool (conf.h), granted first fit, else the largest free run;
 * a node that leaves the membership gives its slices back.
 */
#define DV_SLICE_POOL_LO DV_DIST_SLICE_POOL_LO
#define DV_SLICE_POOL_HI DV_DIST_SLICE_POOL_HI
#define DV_SLICE_BLOCK 64
#define DV_SLICE_POOL_BLOCKS ((DV_SLICE_POOL_HI - DV_SLICE_POOL_LO + 1) / DV_SLICE_BLOCK)
#define DV_SLICE_MAX 16384 /* slices in the cluster; further requests get none */

struct dv_port_slice {
	struct dv_addr addr;
	dv_nodeid_t node;
	uint16_t lo, hi; /* inclusive */
};

/* The part of a node's configuration the engine needs: the same on every
 * node for a given node. Allow lists stay local (authorization happens at
 * the node that receives the request, with SO_PEERCRED). */
struct dv_node_conf {
	char name[DV_NODE_NAME_MAX];
	/* The node's interface MAC: a duplicate-address probe answered from it
	 * met a cluster node (an address it still has, or its lease has not
	 * ended), not a foreign host. */
	uint8_t mac[6];
	size_t n_ranges;
	const struct dv_conf_range *ranges; /* users/groups ignored */
	size_t n_defines;
	const struct dv_conf_define *defines;
};

/* A client of a distributed VIPA: its address and port. */
struct dv_peer_pin {
	struct dv_addr addr;
	uint16_t port;
};

/* An address MOVING on node (DV_EV_MOVING): connections there at its
 * last list (status). */
struct dv_moving {
	dv_nodeid_t node;
	size_t connections;
};

struct dv_event {
	enum dv_event_type type;
	dv_nodeid_t node; /* the node the event comes from */
	uint64_t time_ms; /* the originator's wall clock; only for "since" */
	union {
		struct dv_node_conf node_config; /* engine copies it */
		struct {
			uint64_t client; /* connection id on `node`; 0 = the node itself */
			uint32_t seq;	 /* request number, echoed in the reply */
			struct dv_addr addr;
			enum dv_kind kind;
			uid_t uid; /* who asked, for status */
			/* claim: wanted as a source only (DV_A_SOURCE_USE):
			 * granted if free or already this node's, never
			 * moved from another node */
			bool source_use;
		} claim, release;
		struct {
			uint64_t client;
			uint32_t seq;
			struct dv_addr addr;
			unsigned rank;	   /* 1..254, higher is granted first */
			enum dv_kind kind; /* the hold it becomes: API or SOCKET */
			uid_t uid;
		} standby;
		struct {
			uint64_t client;
		} client_gone;
		struct {
			struct dv_addr addr;
			unsigned flags; /* DV_AS_* */
		} addr_state;
		struct {
			size_t n;
			const dv_nodeid_t *nodes; /* engine copies them */
		} membership;
		struct {
			bool quorate;
			uint64_t ring; /* the sender's Corosync ring when it sent it */
		} quorum;
		struct {
			uint64_t client; /* the requester, on `node` */
			uint32_t seq;
			struct dv_addr addr;
			dv_nodeid_t to; /* the member that gets the address */
			uid_t uid;
		} move;
		struct {
			uint64_t client; /* the requester, on `node` */
			uint32_t seq;
			struct dv_addr addr;
			dv_nodeid_t target; /* whose define or backup */
			bool active;	    /* reactivate (true) or deactivate */
		} define_state;
		struct {
			uint64_t client; /* the requester, on `node` */
			uint32_t seq;
			dv_nodeid_t target;
			bool joined; /* join (true) or leave */
		} node_admin;
		/* Not state: the engine only checks it. Every established
		 * connection of `node` on addr:port that the slot table
		 * does not send to `node`, so that any node that distributes
		 * addr pins it there; replaces the node's previous list for
		 * addr:port. */
		struct {
			struct dv_addr addr;
			uint16_t port;
			size_t n;
			const struct dv_peer_pin *pins; /* not copied */
		} dist_pins;
		/* Not state either: `node` lost addr in a NONDISRUPTIVE move
		 * and still serves these established connections on it (all
		 * ports: the peers' address and port), so that its owner
		 * sends their packets there; replaces the node's previous
		 * list for addr; n = 0: none left, MOVING ends. */
		struct {
			struct dv_addr addr;
			size_t n;
			const struct dv_peer_pin *pins; /* not copied */
		} moving;
		/* `node` wants a slice of `blocks` blocks of addr's ports (it
		 * keeps the one it has), or gives its slice back (0). */
		struct {
			struct dv_addr addr;
			unsigned blocks; /* 0..DV_SLICE_POOL_BLOCKS */
		} port_slice;
		/* dvipactl quiesce|resume: target takes no new connections
		 * for addr:port (0: every port) from any distributor, or
		 * takes them again. Kept until resumed or until target's
		 * configuration no longer defines addr. */
		struct {
			uint64_t client; /* the requester, on `node` */
			uint32_t seq;
			struct dv_addr addr;
			dv_nodeid_t target;
			uint16_t port;
			bool on; /* quiesce (true) or resume */
		} quiesce;
	};
};

/* The client request an event carries, if any: false for observations,
 * node events and the daemon's own requests (seq 0: nobody waits).
 * *ret_addr is NULL for node requests. */
bool dv_event_request(const struct dv_event *ev, uint64_t *ret_client, uint32_t *ret_seq,
		      const struct dv_addr **ret_addr);

enum dv_notify {
	DV_NOTIFY_GRANTED = 1, /* a standby of this client now holds the address */
	DV_NOTIFY_LOST,	       /* a hold of this client ended without its asking */
};

/*
 * Effects, reported only for this engine's `self` node, appended to the
 * caller's list by dv_engine_apply() and dv_engine_restore(). Local effects
 * of an event come first, then its replies and notifications in the order
 * they were decided: the daemon installs an address before it tells a
 * client that the address is its.
 */
enum dv_effect_type {
	/* The address must (up) or must no longer (!up) be installed on this
	 * node. */
	DV_FX_LOCAL = 1,
	/* The answer to a CLAIM/RELEASE/STANDBY/MOVE/DEFINE_STATE/NODE_ADMIN
	 * request (client, seq) made on this node; addr has family 0 for
	 * NODE_ADMIN. result is DV_R_OK, DV_R_PENDING (standby registered) or
	 * an error. */
	DV_FX_REPLY,
	/* News for a client of this node about one of its holds or standbys. */
	DV_FX_NOTIFY,
};

struct dv_effect {
	enum dv_effect_type type;
	struct dv_addr addr;
	bool up;		    /* LOCAL */
	uint64_t client;	    /* REPLY, NOTIFY */
	uint32_t seq;		    /* REPLY */
	enum dv_result result;	    /* REPLY */
	enum dv_notify what;	    /* NOTIFY */
	char reason[DV_REASON_MAX]; /* REPLY, NOTIFY: a sentence for humans */
};

/* Owned by the caller; the engine only appends. */
struct dv_effects {
	struct dv_effect *v;
	size_t n, cap;
};

/* Forget the effects, keep the buffer for the next event. */
void dv_effects_clear(struct dv_effects *fx);
/* Free the buffer; fx is empty and may be used again. */
void dv_effects_free(struct dv_effects *fx);

struct dv_engine;

struct dv_engine *dv_engine_new(dv_nodeid_t self);
struct dv_engine *dv_engine_free(struct dv_engine *e);

/*
 * Apply one event and append its effects to fx (NULL: drop them). Returns
 * 0, or -EINVAL for an event that is malformed as such (unknown type, bad
 * family); refusals of well-formed requests are not errors but replies.
 * Never aborts on any input.
 */
int dv_engine_apply(struct dv_engine *e, const struct dv_event *ev, struct dv_effects *fx);

/* ---- read-only views, for status and tests ---- */

enum dv_origin {
	DV_ORIGIN_NONE = 0,
	DV_ORIGIN_BIND,	    /* socket hold: VIPARANGE bind */
	DV_ORIGIN_API,	    /* libdvipa / dvipactl run */
	DV_ORIGIN_OPERATOR, /* dvipactl activate */
	DV_ORIGIN_DEFINE,   /* VIPADEFINE owner */
	DV_ORIGIN_BACKUP,   /* VIPABACKUP took over */
};

enum dv_vipa_state {
	DV_VS_ACTIVE = 1, /* owned by a node */
	DV_VS_WAITING,	  /* no owner; standbys registered */
	DV_VS_INACTIVE,	  /* a define with no eligible node */
};

struct dv_hold {
	enum dv_kind kind;
	dv_nodeid_t node;
	uint64_t client;
	uid_t uid;
	uint64_t since_ms;
};

struct dv_standby {
	dv_nodeid_t node;
	uint64_t client;
	unsigned rank;
	enum dv_kind kind;
	uid_t uid;
	uint64_t order; /* engine sequence number at registration */
	uint64_t since_ms;
};

/* A member's VIPADEFINE (rank 255) or VIPABACKUP entry for one address. */
struct dv_cand {
	dv_nodeid_t node;
	unsigned rank;
	enum dv_moveable moveable;
	uint16_t trackport;
	bool deactivated; /* by the operator (dvipactl deactivate --node) */
};

struct dv_vipa_info {
	struct dv_addr addr;
	dv_nodeid_t owner; /* 0: none */
	/* The member whose interface has it; differs from the owner while
	 * the previous owner has not reported it removed (the hand-over). */
	dv_nodeid_t on;
	enum dv_origin origin;
	enum dv_vipa_state state;
	uint64_t since_ms;  /* time of the last owner change */
	const char *reason; /* the last decision about this VIPA, for status */
	size_t n_holds;
	const struct dv_hold *holds;
	size_t n_standbys;
	const struct dv_standby *standbys; /* in grant order */
	size_t n_cands;
	const struct dv_cand *cands; /* defines and backups of members */
};

/* Visit every VIPA the engine knows (active, waiting or defined), sorted by
 * address. Stops and returns the callback's value if it is non-zero. */
int dv_engine_foreach(const struct dv_engine *e, int (*cb)(void *ud, const struct dv_vipa_info *v), void *ud);
/* 0 and *ret, or -ENOENT. The pointers in *ret live until the next apply. */
int dv_engine_lookup(const struct dv_engine *e, const struct dv_addr *a, struct dv_vipa_info *ret);

/* A VIPA whose owner the last dv_engine_apply() changed, and its owner
 * before. */
struct dv_owner_change {
	struct dv_addr addr;
	dv_nodeid_t owner_was; /* 0: none, or it did not exist */
};
/* The VIPAs whose owner the last dv_engine_apply() changed (at some point
 * in it: it may have changed back), or that it removed while they had
 * one, in that order: an address twice if it was removed and made again,
 * its first entry with the owner before the event. What an event changed
 * then costs what it changed, not a walk of every VIPA. *ret_complete
 * false: the list could not grow (out of memory), any owner may have
 * changed. Lives until the next apply. */
size_t dv_engine_owner_changes(const struct dv_engine *e, const struct dv_owner_change **ret, bool *ret_complete);

dv_nodeid_t dv_engine_self(const struct dv_engine *e);
bool dv_engine_quorate(const struct dv_engine *e);
/* Members left while quorate and the next QUORUM event has not come yet:
 * no new owners meanwhile (existing ones keep their addresses). */
bool dv_engine_confirming(const struct dv_engine *e);
/* The configuration a node published (its ranges and defines; the pointers
 * live until the next apply): 0, or -ENOENT if it published none. */
int dv_engine_node_config(const struct dv_engine *e, dv_nodeid_t node, struct dv_node_conf *ret);
/* The name a node published in its NODE_CONFIG, or NULL. */
const char *dv_engine_node_name(const struct dv_engine *e, dv_nodeid_t node);
size_t dv_engine_members(const struct dv_engine *e, const dv_nodeid_t **ret);
bool dv_engine_is_member(const struct dv_engine *e, dv_nodeid_t node);
/* How many holds and standbys uid has on this node. */
size_t dv_engine_uid_vipas(const struct dv_engine *e, uid_t uid);
/* The node left the group by the operator (dvipactl leave) and takes
 * nothing until it joins again. */
bool dv_engine_node_left(const struct dv_engine *e, dv_nodeid_t node);
/* The DV_AS_* flags node last reported for a (0 if none, or a unknown). */
unsigned dv_engine_report(const struct dv_engine *e, const struct dv_addr *a, dv_nodeid_t node);
/* node's slice of a's ports: true and *ret, or false if it has none. */
bool dv_engine_port_slice(const struct dv_engine *e, const struct dv_addr *a, dv_nodeid_t node,
			  struct dv_port_slice *ret);
/* Every slice, sorted by address then port: the count, the array in *ret
 * (lives until the next apply). */
size_t dv_engine_port_slices(const struct dv_engine *e, const struct dv_port_slice **ret);
/* Whether node is quiesced for a's port (DV_EV_QUIESCE: that port, or all). */
bool dv_engine_quiesced(const struct dv_engine *e, const struct dv_addr *a, uint16_t port, dv_nodeid_t node);
/* How many events have been applied. */
uint64_t dv_engine_seq(const struct dv_engine *e);

/* ---- state transfer (cluster join) ---- */

/*
 * The whole replicated state (node configs, members, quorum, every VIPA
 * with its holds, standbys, per-node address states, "ever active" marks,
 * the sequence counters) as a versioned byte string, so that a joining
 * node can start from exactly the state its peers have.
 */
int dv_engine_snapshot(const struct dv_engine *e, uint8_t **ret, size_t *ret_len);
/*
 * Replace the engine's state with a snapshot. Validates everything first
 * (-EBADMSG, state unchanged). On success, appends to fx (NULL: drops)
 * the local effects between what self had installed and what it owns now
 * (downs first); no replies or notifications.
 */
int dv_engine_restore(struct dv_engine *e, const uint8_t *buf, size_t len, struct dv_effects *fx);
