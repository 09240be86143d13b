/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine's private header, shared by its parts (OpenBGPD's rde.h):
 *   engine.c           apply (checks, dispatch, effects), life cycle, views
 *   engine_state.c     nodes, the VIPA table, holds and standbys, settling
 *   engine_define.c    stack-managed VIPAs (VIPADEFINE / VIPABACKUP)
 *   engine_events.c    one handler per event type
 *   engine_snapshot.c  state transfer (snapshot, restore)
 *   engine_slices.c    SYSPLEXPORTS port slices
 *   engine_quiesce.c   quiesced targets of distributed VIPAs
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"
#include "hashtab.h"

#define REASON_MAX 256
#define LABEL_MAX (DV_NODE_NAME_MAX + 16)
#define DESC_MAX (LABEL_MAX + 64) /* a hold or a define described */
/* Members plus nodes that published a configuration before joining. */
#define MAX_NODE_ENTRIES (2 * DV_ENGINE_MAX_NODES)
#define MAX_RANGES DV_CONF_MAX_STATEMENTS
#define MAX_DEFINES DV_ENGINE_MAX_VIPAS

/* The last DV_EV_ADDR_STATE flags a node reported for the address. */
struct report {
	dv_nodeid_t node;
	unsigned flags;
};

/* A target quiesced for a port of a distributed VIPA (0: all its ports). */
struct quiesce {
	dv_nodeid_t node;
	uint16_t port;
};

struct vipa {
	struct dv_addr addr;
	dv_nodeid_t owner;
	/* The member whose interface has the address, as the stream knows:
	 * the owner, or a previous owner that has not reported it removed
	 * yet (the next one waits: two hosts never have it at once). */
	dv_nodeid_t on;
	enum dv_origin origin;
	enum dv_vipa_state state;
	uint64_t since_ms;
	bool ever_active; /* had an owner once: lets a MOVE_NONE backup take over */
	bool installed;	  /* local(up) was reported and not yet undone */
	bool dirty;	  /* queued for the local-effect pass of this event */
	uint64_t noted;	  /* the apply whose owner changes list it (e->applying) */
	/* NULL: none. On the heap, at its length: one per VIPA, 65,536 of
	 * them, and most reasons are a few dozen bytes of REASON_MAX. */
	char *reason;
	size_t n_holds, cap_holds;
	struct dv_hold *holds;
	size_t n_standbys, cap_standbys;
	struct dv_standby *standbys; /* grant order */
	size_t n_cands, cap_cands;
	struct dv_cand *cands;
	size_t n_reports, cap_reports;
	struct report *reports;
	/* By node, then port; kept while the node is away (a restart). */
	size_t n_quiesced, cap_quiesced;
	struct quiesce *quiesced;
};

/* Index of a client's api holds and standbys, so that CLIENT_GONE costs what
 * the client had, not the size of the table, and one release what one
 * address has, not what the client has (65,536 of them). A multiset of
 * addresses: each with how many holds and standbys of the client it has. */
struct cref {
	dv_nodeid_t node;
	uint64_t client;
	size_t n;		 /* holds and standbys: the counts' sum */
	struct dv_hashtab addrs; /* of struct cref_addr */
};

struct cref_addr {
	struct dv_addr a; /* first: the key of dv_addr_item_hash() */
	size_t count;
};

struct node {
	dv_nodeid_t id;
	bool member;
	bool has_conf;
	bool left; /* dvipactl leave: takes nothing until join */
	char name[DV_NODE_NAME_MAX];
	uint8_t mac[6];
	size_t n_ranges;
	struct dv_conf_range *ranges;
	size_t n_defines;
	struct dv_conf_define *defines; /* sorted by address, unique */
};

struct uidn {
	uid_t uid;
	size_t n;
};

struct dv_engine {
	dv_nodeid_t self;
	bool quorate;
	/* Members left while quorate: the partition may have lost quorum and
	 * does not know yet. The membership change grants nothing (standbys,
	 * backups) until the next QUORUM event says (the cluster puts one
	 * into the stream after every membership change); existing owners
	 * keep their addresses, and requests are still served. */
	bool confirm;
	char confirm_why[REASON_MAX]; /* which members left, for the reasons */
	uint64_t seq;
	uint64_t now; /* time_ms of the event being applied */
	int err;      /* first resource failure during the event */

	size_t n_nodes, cap_nodes;
	struct node *nodes; /* sorted by id */
	size_t n_members, cap_members;
	dv_nodeid_t *members; /* sorted */

	struct dv_hashtab vipas;
	/* Every VIPA in address order (vipa_sorted), kept until one comes or
	 * goes: a membership or quorum event walks them all several times,
	 * and sorting 65,536 each time was a fifth of a takeover's CPU.
	 * Behind a pointer, as read-only walks (dv_engine_foreach) fill it
	 * too; NULL (a restore's scratch engine): sorted each time. */
	struct vipa_order *order;
	struct dv_hashtab crefs;
	size_t n_slices, cap_slices;
	struct dv_port_slice *slices; /* sorted by address, then lo */
	/* This node's holds and standbys per uid (struct uidn): what a user
	 * has here, for the daemon's per-user cap, without a walk. Derived,
	 * not in snapshots (rebuilt at restore). */
	struct dv_hashtab uidns;

	/* Replies and notifications of the event being applied, until they
	 * follow its local effects into the caller's list. */
	struct dv_effects fx;
	struct dv_effects *out; /* the caller's list, or NULL */
	size_t n_dirty, cap_dirty;
	struct dv_addr *dirty;
	bool sync_all; /* the dirty list could not grow: check every VIPA */
	/* Owners the event being applied changed (vipa_owner_note), then,
	 * swapped, the last event's (dv_engine_owner_changes). */
	uint64_t applying; /* counts applies: a VIPA's `noted` in this one */
	size_t n_changed, cap_changed, n_last, cap_last;
	struct dv_owner_change *changed, *last;
	bool changed_lost, last_complete;
};

struct vipa_order {
	struct vipa **v;
	size_t n, cap;
	bool valid;
};

struct cref_key {
	dv_nodeid_t node;
	uint64_t client;
};

/* ---- engine.c ---- */

int engine_grow(void **p, size_t *cap, size_t need, size_t size);
bool hold_kind_ok(enum dv_kind k);
enum dv_origin hold_origin(enum dv_kind k);
void fx_local(struct dv_engine *e, struct dv_effects *fx, const struct dv_addr *a, bool up);
void fx_reply(struct dv_engine *e, const struct dv_event *ev, uint64_t client, uint32_t seq, const struct dv_addr *a,
	      enum dv_result r, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void fx_notify(struct dv_engine *e, dv_nodeid_t node, uint64_t client, const struct dv_addr *a, enum dv_notify what,
	       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void engine_clear(struct dv_engine *e);

/* ---- engine_state.c ---- */

uint32_t cref_hash(const void *item);
struct node *node_find(const struct dv_engine *e, dv_nodeid_t id);
struct node *node_add(struct dv_engine *e, dv_nodeid_t id);
void node_conf_free(struct node *n);
bool node_is_member(const struct dv_engine *e, dv_nodeid_t id);
const char *node_label(const struct dv_engine *e, dv_nodeid_t id, char buf[static LABEL_MAX]);
const struct dv_conf_range *node_range(const struct node *n, const struct dv_addr *a);
void vipa_set_reason(struct vipa *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool engine_may_assign(const struct dv_engine *e);
const char *engine_no_assign_why(const struct dv_engine *e);
void vipa_touch(struct dv_engine *e, struct vipa *v);
void vipa_sync_local(struct dv_engine *e, struct vipa *v);
/* Whether node self should have v on its interface now. */
bool vipa_wants_local(const struct dv_engine *e, dv_nodeid_t self, const struct vipa *v);
/* node reported v removed from its interface (the hand-over). */
void vipa_removed_on(struct dv_engine *e, struct vipa *v, dv_nodeid_t node);
struct cref *cref_find(const struct dv_engine *e, dv_nodeid_t node, uint64_t client);
int cref_add(struct dv_engine *e, dv_nodeid_t node, uint64_t client, const struct dv_addr *a);
void cref_del(struct dv_engine *e, dv_nodeid_t node, uint64_t client, const struct dv_addr *a);
/* c's entries, sorted by address (each once, with its count); *ret_n of
 * them. NULL: no memory. */
const struct cref_addr **cref_sorted(const struct cref *c, size_t *ret_n);
void cref_free(struct cref *c);
struct vipa *vipa_find(const struct dv_engine *e, const struct dv_addr *a);
struct vipa *vipa_new(struct dv_engine *e, const struct dv_addr *a);
void vipa_destroy(struct vipa *v);
ssize_t hold_find(const struct vipa *v, enum dv_kind kind, dv_nodeid_t node, uint64_t client);
ssize_t standby_find(const struct vipa *v, dv_nodeid_t node, uint64_t client);
int hold_add(struct dv_engine *e, struct vipa *v, enum dv_kind kind, dv_nodeid_t node, uint64_t client, uid_t uid);
void hold_del(struct dv_engine *e, struct vipa *v, size_t i);
void standby_del(struct dv_engine *e, struct vipa *v, size_t i);
bool standby_before(const struct dv_standby *a, const struct dv_standby *b);
void standby_place(struct dv_engine *e, struct vipa *v, const struct dv_standby *s);
/* This node's count of holds and standbys of uid changes by delta (a
 * hold or standby of another node: nothing). */
void uidn_count(struct dv_engine *e, dv_nodeid_t node, uid_t uid, int delta);
/* The counts again from the table (after a restore). */
void uidn_rebuild(struct dv_engine *e);
void vipa_set_owner(struct dv_engine *e, struct vipa *v, dv_nodeid_t node);
const char *hold_desc(const struct dv_engine *e, enum dv_kind kind, dv_nodeid_t node, uint64_t client,
		      char buf[static DESC_MAX]);
void hold_end_except(struct dv_engine *e, struct vipa *v, dv_nodeid_t keep, const char *why);
void vipa_settle(struct dv_engine *e, struct vipa *v, const char *why);
struct vipa **vipa_sorted(const struct dv_engine *e, size_t *ret_n);
/* A VIPA came or went, or the set was swapped: vipa_sorted sorts again. */
void vipa_order_stale(const struct dv_engine *e);

/* ---- engine_define.c ---- */

const struct dv_cand *cand_find(const struct vipa *v, dv_nodeid_t node);
const struct report *report_find(const struct vipa *v, dv_nodeid_t node);
bool vipa_is_define(const struct dv_engine *e, const struct vipa *v);
const char *cand_desc(const struct dv_engine *e, const struct dv_cand *c, char buf[static DESC_MAX]);
const struct dv_cand *define_face(const struct dv_engine *e, const struct vipa *v);
void define_settle(struct dv_engine *e, struct vipa *v, const char *why);
void node_uncandidate(struct dv_engine *e, const struct node *n);

/* ---- engine_events.c ---- */

int ev_claim(struct dv_engine *e, const struct dv_event *ev);
int ev_release(struct dv_engine *e, const struct dv_event *ev);
int ev_standby(struct dv_engine *e, const struct dv_event *ev);
int ev_client_gone(struct dv_engine *e, const struct dv_event *ev);
int ev_addr_state(struct dv_engine *e, const struct dv_event *ev);
int ev_move(struct dv_engine *e, const struct dv_event *ev);
int ev_define_state(struct dv_engine *e, const struct dv_event *ev);
int ev_node_admin(struct dv_engine *e, const struct dv_event *ev);
int ev_quiesce(struct dv_engine *e, const struct dv_event *ev);
/* Drop node's quiesces of addresses its configuration no longer defines. */
void quiesce_prune(struct dv_engine *e, const struct node *n);
int ev_membership(struct dv_engine *e, const struct dv_event *ev);
int ev_quorum(struct dv_engine *e, const struct dv_event *ev);
int ev_node_config(struct dv_engine *e, const struct dv_event *ev);

/* ---- engine_slices.c ---- */

int ev_port_slice(struct dv_engine *e, const struct dv_event *ev);
/* Slices of nodes that are no longer members go back to the pool. */
void slices_drop_nonmembers(struct dv_engine *e);
struct dv_wbuf;
struct dv_rbuf;
void slices_snap(struct dv_wbuf *w, const struct dv_engine *e);
/* Into t (empty); every slice checked. 0 or -EBADMSG. */
int slices_restore(struct dv_engine *t, struct dv_rbuf *r);
