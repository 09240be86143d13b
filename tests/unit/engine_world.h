/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine tests' world (engine_world.c): one engine per node, all fed
 * the same stream, checked after every event; the helpers that make its
 * events and the fixtures. Shared by test_engine.c and
 * test_engine_join.c.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "wire.h"

#define NPEERS 3
#define MAX_RECS 512
/* The VIPADEFINE of the define tests. */
#define VD "10.9.9.1"

enum rec_type {
	REC_REPLY,
	REC_NOTIFY,
	REC_LOCAL,
};

struct rec {
	enum rec_type type;
	uint64_t client;
	uint32_t seq;
	struct dv_addr addr;
	int code; /* result, notify kind, or up */
	char reason[256];
	bool reported; /* a local down reported removed (hand_over) */
};

struct peer {
	struct dv_engine *e;
	dv_nodeid_t self;
	size_t n_recs, dropped;
	struct rec recs[MAX_RECS];
	size_t n_installed, cap_installed;
	struct dv_addr *installed;
	bool track; /* keep the installed set (off for bulk tests) */
	size_t n_local_up;
};

struct world {
	size_t n;
	struct peer p[NPEERS + 2];
	uint64_t time;
	uint32_t seq;
	bool check;	   /* compare engines after each event */
	bool no_hand_over; /* the daemon's removal reports are not sent */
};

struct snap {
	size_t n, cap;
	struct snap_vipa {
		struct dv_addr addr;
		dv_nodeid_t owner, on;
		enum dv_origin origin;
		enum dv_vipa_state state;
		uint64_t since_ms;
		char reason[256];
		size_t n_holds, n_standbys;
		struct dv_hold holds[8];
		struct dv_standby standbys[8];
	} * v;
};

struct uid_tally {
	dv_nodeid_t self;
	size_t n[17]; /* uids 0..15 (the random scripts), [16]: uid 1000 */
};

#define STD_RANGES                                                                                                     \
	"range 10.1.1.0/24 nondisruptive; range 10.2.2.0/24 disruptive; range 10.3.3.0/24 unique; "                    \
	"range fd00:1::/64"

struct dv_addr A(const char *s);
struct rec *rec_add(struct peer *p, enum rec_type t);
void cb_reply(void *ud, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result,
	      const char *reason);
void cb_notify(void *ud, uint64_t client, const struct dv_addr *a, enum dv_notify what, const char *reason);
ssize_t installed_find(const struct peer *p, const struct dv_addr *a);
void cb_local(void *ud, const struct dv_addr *a, bool up);
void record(struct peer *p, const struct dv_effects *fx);
int peer_apply(struct peer *p, const struct dv_event *ev);
struct world *world_new(size_t n);
void world_free(struct world *w);
struct peer *peer(struct world *w, dv_nodeid_t node);
int snap_cb(void *ud, const struct dv_vipa_info *v);
void snap_take(struct dv_engine *e, struct snap *s);
void hold_equal(const struct dv_hold *a, const struct dv_hold *b);
void standby_equal(const struct dv_standby *a, const struct dv_standby *b);
void world_check(struct world *w);
size_t *tally_of(struct uid_tally *t, uid_t uid);
int tally_cb(void *ud, const struct dv_vipa_info *v);
void check_uid_counts(struct world *w);
void hand_over(struct world *w);
int apply_ex(struct world *w, struct dv_event *ev, bool keep);
int apply(struct world *w, struct dv_event *ev);
const struct rec *the_reply(struct world *w, dv_nodeid_t node);
int request(struct world *w, struct dv_event *ev, uint64_t client);
int claim_as(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind, bool source_use);
int claim(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind);
int claim_source(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr);
int release(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind);
int standby_k(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, unsigned rank, enum dv_kind kind);
int standby(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, unsigned rank);
void gone(struct world *w, dv_nodeid_t node, uint64_t client);
void addr_state(struct world *w, dv_nodeid_t node, const char *addr, unsigned flags);
void members(struct world *w, size_t n, ...);
void quorum(struct world *w, bool q);
int conf_rc(struct world *w, dv_nodeid_t node, const char *name, const char *script);
void conf(struct world *w, dv_nodeid_t node, const char *name, const char *script);
void std_conf(struct world *w, dv_nodeid_t node);
bool info(struct world *w, const char *addr, struct dv_vipa_info *ret);
dv_nodeid_t owner(struct world *w, const char *addr);
enum dv_vipa_state vstate(struct world *w, const char *addr);
const char *reason(struct world *w, const char *addr);
bool installed(struct world *w, dv_nodeid_t node, const char *addr);
const struct rec *notified(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_notify what);
size_t count(struct world *w, dv_nodeid_t node, enum rec_type t);
size_t all_notifies(struct world *w);
const char *last_reply_reason(struct world *w, dv_nodeid_t node);
int setup3(void **state);
int setup_bare(void **state);
int teardown(void **state);
uint32_t rnd(uint64_t *s);
void random_operator(struct dv_event *ev, uint64_t *s, uint32_t x, uint64_t c, uint32_t seq, const char *a);
