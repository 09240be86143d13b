/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipa-sim: a deterministic cluster simulator (DESIGN §7, issue 9).
 *
 * N nodes (3..7), each a dvipad made of the REAL engine (engine.h), the
 * REAL cluster sync protocol (sync.h) and the REAL gate (gate.h), wired the
 * way daemon.c and cluster_corosync.c wire them, over a simulated Corosync:
 *
 *   node 1 ─┐                       one agreed-order queue per view;
 *   node 2 ─┼── simulated CPG  ──── virtual synchrony at every view change;
 *   node 3 ─┘   + votequorum        quorum = majority of N corosync votes
 *
 * Everything comes from a seed: one PRNG (splitmix64), simulated time, no
 * clock, no rand(). Each step does one thing (delivers the head of a view's
 * queue, a quorum notification, a client request, a fault...) and then the
 * invariants are checked:
 *
 *   1 no VIPA installed on two nodes of the same quorate component;
 *   2 once stable (nothing queued, no exchange, no quorum notification
 *     pending), every member of a view has byte-identical engine state and
 *     no digest mismatch flag; and a quiet cluster becomes stable;
 *   3 no hold or standby lost (LOST told, or missing from its engine)
 *     while its program and node live and stayed in the quorate component
 *     since it was granted or registered;
 *   4 once stable and quorate, every free VIPA with an eligible standby or
 *     a live define/backup node has an owner;
 *   5 (the model itself) a node whose gate is open has installed exactly
 *     what dv_gate_wants() says; a closed gate, nothing;
 *   6 once stable, a member of a quorate component has its gate open (a
 *     node that lost quorum or its ring lease is not left waiting for a
 *     confirmation nobody sends);
 *   7 the SYSPLEXPORTS port slices of one address never overlap, are
 *     whole blocks of the pool, one a node; once stable, only members
 *     have them.
 *   8 every owner an event changes is in the engine's list of that
 *     event's owner changes (dv_engine_owner_changes), with its owner
 *     before, and every entry's owner before is right: the
 *     changes, the takeover metrics and `dvipactl monitor` read them
 *     instead of a walk of every VIPA.
 *
 * The simulated CPG keeps Corosync's guarantees and nothing more: members
 * of a view deliver its messages in one order; at a view change the members
 * of an old view that go on together deliver the same prefix of its pending
 * messages (a random length per new component), and every message of their
 * own that the old ring had ordered, before the new view's configuration
 * change; messages the old ring had not ordered stay with their sender and
 * are delivered in its new view after the change, or are lost with it.
 * Votequorum's notification is a separate step that may come before or
 * after the configuration change; sync's quorate() reads the truth.
 *
 * Modelling choices: a crashed dvipad's addresses are counted as gone at
 * once (what is left in the kernel until LEASE is the fault campaign's
 * measure, bench/campaign.py); the duplicate-address probe, sock_diag and
 * the control socket's authorization are not modelled; standbys are of
 * kind API (a granted SOCKET standby would be a socket hold, which only
 * sock_diag ends).
 *
 * Usage: dvipa-sim [--seeds A..B | --seed S] [--steps K] [--nodes N]
 *        [--seconds T] [--keep-going] [--mutant] [--batching none|even|all]
 *        [--old P] [--quiet]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "engine.h"
#include "gate.h"
#include "observe.h"
#include "sync.h"
#include "wire.h"

#include "sim.h"

#define TRACE_LINES 2000
#define TRACE_LEN 320
#define DRAIN_LIMIT 20000

/* ---- PRNG ---- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static unsigned rnd(unsigned n)
{
	return n ? (unsigned)(rnd64() % n) : 0;
}

static bool chance(unsigned percent)
{
	return rnd(100) < percent;
}

/* ---- the world (sim.h) ---- */

unsigned N;
struct node nodes[MAXN + 1]; /* 1..N */
struct view views[MAXVIEWS];
static int next_conn;
static uint64_t now_ms, step_no, cur_seed;
struct dv_addr addrs[NADDR];
static struct dv_prefix prefixes[NRANGE];
static bool opt_quiet, opt_mutant, opt_keep_going;
static unsigned opt_nodes;
/* --loose: at a view change a group may skip its own members' ordered
 * messages too (they go to the sender's next view): weaker than Totem. */
static bool opt_loose;
/* Which seeds send as dvipad does, each step's messages of a node in one
 * batch (sync.h): 0 none, 2 the even ones, 1 all. */
static unsigned opt_batching = 2;
/* --old P: each dvipad started runs wire protocol 1 (no batches) with P %. */
static unsigned opt_old;
static uint64_t old_dropped;	    /* batches a protocol-1 dvipad dropped */
static unsigned opt_checks = 0x1fe; /* invariants checked: bit i for invariant i */
static int mutation;

/* What caused a LOST notice: the event being applied, or one of these. */
enum { CAUSE_RESTORE = 100, CAUSE_CONN, CAUSE_RESTANDBY, CAUSE_OTHER };
static int cause = CAUSE_OTHER;
/* Delivering old views' messages before a configuration change: what is
 * granted then was decided in the old configuration. */
static bool transitional;

/* Figures. */
enum fault {
	F_DVIPAD_CRASH,
	F_DVIPAD_START,
	F_COROSYNC_CRASH,
	F_COROSYNC_START,
	F_PARTITION,
	F_HEAL,
	F_ISOLATE,
	F_MOVE_NODE,
	F_MERGE,
	F_CLIENT_GONE,
	F_CONCURRENT_JOIN,
	F_SYNC_ERROR,
	F_LEASE,
	F_PROBE,
	F__N
};
static const char *const fault_names[F__N] = {
	"dvipad crash",	    "dvipad start",	   "corosync crash",
	"corosync start",   "partition",	   "heal",
	"isolate node",	    "move one node",	   "merge two",
	"program exit",	    "concurrent joins",	   "sync error (rejoin)",
	"ring lease lapse", "quorum read timeout",
};
static uint64_t faults[F__N], total_steps, total_exchanges, total_msgs, total_drains, total_views;
static uint64_t seed_steps; /* steps of the current seed */
static uint64_t n_failures;
static uint64_t stale_quorum; /* QUORUM(true) sent in an earlier view, applied in one not quorate */
static uint64_t delivering_serial, view_serial;

/* ---- trace ---- */

static char trace[TRACE_LINES][TRACE_LEN];
static uint64_t trace_n;

static void tr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tr(const char *fmt, ...)
{
	char *line = trace[trace_n++ % TRACE_LINES];
	int k = snprintf(line, TRACE_LEN, "%6" PRIu64 " t=%-7" PRIu64 " ", step_no, now_ms);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + k, TRACE_LEN - (size_t)k, fmt, ap);
	va_end(ap);
}

struct failure fail;

void violation(int inv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void violation(int inv, const char *fmt, ...)
{
	va_list ap;

	if (fail.failed || !(opt_checks & (1u << inv)))
		return;
	fail.failed = true;
	fail.inv = inv;
	va_start(ap, fmt);
	vsnprintf(fail.what, sizeof(fail.what), fmt, ap);
	va_end(ap);
}

static const char *cause_name(int c)
{
	static const char *const ev[] = {"?",	      "NODE_CONFIG", "CLAIM",	     "RELEASE",
					 "STANDBY",   "CLIENT_GONE", "ADDR_STATE",   "MEMBERSHIP",
					 "QUORUM",    "MOVE",	     "DEFINE_STATE", "NODE_ADMIN",
					 "DIST_PINS", "PORT_SLICE",  "QUIESCE",	     "MOVING"};

	if (c >= 1 && c <= DV_EV_LAST)
		return ev[c];
	return c == CAUSE_RESTORE     ? "the group's state restored"
	       : c == CAUSE_CONN      ? "connection lost"
	       : c == CAUSE_RESTANDBY ? "re-registration refused"
				      : "other";
}

static int addr_index(const struct dv_addr *a)
{
	for (int i = 0; i < NADDR; i++)
		if (dv_addr_eq(&addrs[i], a))
			return i;
	return -1;
}

const char *addr_s(const struct dv_addr *a)
{
	static char buf[4][DV_ADDR_STRLEN];
	static unsigned k;

	return dv_addr_fmt(a, buf[k++ % 4]);
}

/* ---- the daemon model (daemon.c) ---- */

static void submit(struct dmn *d, struct dv_event *ev);
static void eng_notify(struct dmn *d, uint64_t client, const struct dv_addr *a, enum dv_notify what);

static struct client *client_find(struct dmn *d, uint64_t id)
{
	for (size_t i = 0; i < d->n_clients; i++)
		if (d->clients[i].id == id)
			return &d->clients[i];
	return NULL;
}

bool client_alive(struct dmn *d, uint64_t id)
{
	struct client *c = client_find(d, id);

	return c && c->alive;
}

static void ref_drop(struct dmn *d, size_t i)
{
	d->refs[i] = d->refs[--d->n_refs];
}

static void ref_add(struct dmn *d, uint64_t client, const struct dv_addr *a, bool standby)
{
	struct ref *r;

	for (size_t i = 0; i < d->n_refs; i++)
		if (d->refs[i].r.client == client && dv_addr_eq(&d->refs[i].r.addr, a) &&
		    d->refs[i].r.standby == standby)
			return;
	d->refs = realloc(d->refs, (d->n_refs + 1) * sizeof(*d->refs));
	r = &d->refs[d->n_refs++];
	*r = (struct ref){.step = step_no};
	r->r.client = client;
	r->r.addr = *a;
	r->r.standby = standby;
	r->protected =
		!transitional && d->sync && d->gate.connected && truth_quorate(d->node) && dv_engine_quorate(d->e);
}

/* A client of d was told LOST about a. */
static void client_lost(struct dmn *d, uint64_t client, const struct dv_addr *a)
{
	for (size_t i = 0; i < d->n_refs;) {
		struct ref *r = &d->refs[i];
		bool legit;

		if (r->r.client != client || !dv_addr_eq(&r->r.addr, a)) {
			i++;
			continue;
		}
		/* Requests and operator decisions may end holds; view changes,
		 * quorum and state transfers must not. */
		legit = cause == DV_EV_CLAIM || cause == DV_EV_RELEASE || cause == DV_EV_MOVE ||
			cause == DV_EV_DEFINE_STATE || cause == DV_EV_NODE_ADMIN || cause == DV_EV_NODE_CONFIG ||
			cause == DV_EV_ADDR_STATE || cause == DV_EV_CLIENT_GONE;
		if (r->protected && !legit && client_alive(d, client))
			violation(3,
				  "node %u: client %" PRIu64 " told LOST about its %s %s (registered at step %" PRIu64
				  ", on %s) while its node stayed in the quorate component",
				  d->node, client, r->r.standby ? "standby for" : "hold on", addr_s(a), r->step,
				  cause_name(cause));
		ref_drop(d, i);
	}
}

static void client_reply(struct dmn *d, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result)
{
	for (size_t i = 0; i < d->n_reqs; i++) {
		struct req *q = &d->reqs[i];

		if (q->client != client || q->seq != seq)
			continue;
		if (a && client_alive(d, client) && !q->cancelled) {
			if (q->type == DV_EV_CLAIM && q->kind == DV_KIND_API && result == DV_R_OK)
				ref_add(d, client, a, false);
			if (q->type == DV_EV_STANDBY && (result == DV_R_OK || result == DV_R_PENDING))
				ref_add(d, client, a, true);
		}
		d->reqs[i] = d->reqs[--d->n_reqs];
		return;
	}
}

bool gate_open(struct dmn *d)
{
	return dv_gate_is_open(&d->gate);
}

static void eng_local(struct dmn *d, const struct dv_addr *a, bool up)
{
	int i = addr_index(a);

	if (i < 0)
		return;
	if (!up) {
		if (!gate_open(d) && !d->installed[i])
			return;
		if (d->installed[i])
			tr("    n%u: removes %s", d->node, addr_s(a));
		d->installed[i] = false;
		return;
	}
	if (!gate_open(d))
		return;
	if (!d->installed[i])
		tr("    n%u: installs %s", d->node, addr_s(a));
	d->installed[i] = true;
}

static void eng_reply(struct dmn *d, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result)
{
	struct dv_gate_answer ans;
	int i;

	if (a && !a->family)
		a = NULL;
	i = a ? addr_index(a) : -1;
	ans = dv_gate_reply(&d->gate, d->e, client, seq, a, result, i >= 0 && d->installed[i]);
	if (ans.refused) {
		/* The simulated kernel refuses nothing. */
		violation(5, "node %u: the gate says the kernel refused %s", d->node, a ? addr_s(a) : "-");
		return;
	}
	switch (ans.say) {
	case DV_GATE_SAY_GRANTED:
		eng_notify(d, client, a, DV_NOTIFY_GRANTED);
		return;
	case DV_GATE_SAY_LOST: {
		int saved = cause;

		cause = CAUSE_RESTANDBY;
		eng_notify(d, client, a, DV_NOTIFY_LOST);
		cause = saved;
		return;
	}
	case DV_GATE_SAY_NOTHING:
		return;
	case DV_GATE_SAY_REPLY:
		break;
	}
	client_reply(d, client, seq, a, result);
}

static void eng_notify(struct dmn *d, uint64_t client, const struct dv_addr *a, enum dv_notify what)
{
	if (what == DV_NOTIFY_GRANTED) {
		(void)dv_gate_hold_grant(&d->gate, d->e, client, a, "granted");
		return;
	}
	dv_gate_drop_grants(&d->gate, client, a);
	client_lost(d, client, a);
}

/* As the daemon: once an address the engine took off this node is off its
 * interface, report it (the hand-over to the next owner). */
static void report_removed(struct dmn *d, const struct dv_addr *a)
{
	struct dv_event ev = {.type = DV_EV_ADDR_STATE, .addr_state = {.addr = *a, .flags = DV_AS_REMOVED}};
	int i = addr_index(a);

	if (i >= 0 && d->installed[i])
		return;
	submit(d, &ev);
}

static void dispatch_effects(struct dmn *d, const struct dv_effects *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		const struct dv_effect *f = &fx->v[i];

		switch (f->type) {
		case DV_FX_LOCAL:
			eng_local(d, &f->addr, f->up);
			if (!f->up)
				report_removed(d, &f->addr);
			break;
		case DV_FX_REPLY:
			eng_reply(d, f->client, f->seq, &f->addr, f->result);
			break;
		case DV_FX_NOTIFY:
			eng_notify(d, f->client, &f->addr, f->what);
			break;
		}
	}
}

static void restandby_send(struct dmn *d)
{
	struct dv_event ev;

	while (dv_gate_next_restandby(&d->gate, d->e, &ev))
		submit(d, &ev);
}

static void close_gate(struct dmn *d)
{
	for (int i = 0; i < NADDR; i++)
		if (d->installed[i]) {
			tr("    n%u: gate closed: removes every address", d->node);
			break;
		}
	memset(d->installed, 0, sizeof(d->installed));
}

static int install_cb(void *ud, const struct dv_vipa_info *v)
{
	struct dmn *d = ud;
	int i = addr_index(&v->addr);

	if (i >= 0 && dv_gate_wants(&d->gate, d->e, &v->addr) && !d->installed[i])
		eng_local(d, &v->addr, true);
	return 0;
}

static void open_gate(struct dmn *d)
{
	struct dv_gate_grant *gr;

	if (!gate_open(d))
		return;
	(void)dv_engine_foreach(d->e, install_cb, d);
	while ((gr = dv_gate_pop_grant(&d->gate, d->e)))
		free(gr); /* GRANTED told to the program */
}

/* daemon.c's maybe_ask */
static void ask_quorum(struct dmn *d)
{
	int r;

	if (!dv_gate_should_ask(&d->gate) || !d->sync)
		return;
	r = dv_sync_ask_quorum(d->sync);
	if (r > 0)
		dv_gate_ask_sent(&d->gate);
	if (r < 0)
		d->broken = true;
}

static void cl_local_quorum(struct dmn *d, bool quorate)
{
	switch (dv_gate_quorum(&d->gate, quorate, nodes[d->node].ring)) {
	case DV_GATE_CLOSE:
		close_gate(d);
		break;
	case DV_GATE_OPEN:
		open_gate(d);
		break;
	case DV_GATE_KEEP:
		break;
	}
	ask_quorum(d);
}

/* cluster_corosync.c's set_local_quorum */
static void set_local_quorum(struct dmn *d, bool quorate)
{
	d->local_quorate = quorate;
	cl_local_quorum(d, quorate);
}

static void tell_lost(struct dmn *d, struct dv_gate_refs *refs)
{
	for (size_t i = 0; i < refs->n; i++)
		if (dv_gate_ref_lost(d->e, &refs->v[i]))
			eng_notify(d, refs->v[i].client, &refs->v[i].addr, DV_NOTIFY_LOST);
}

static void submit_node_config(struct dmn *d)
{
	struct node *nd = &nodes[d->node];
	struct dv_event ev = {.type = DV_EV_NODE_CONFIG};

	snprintf(ev.node_config.name, sizeof(ev.node_config.name), "n%u", d->node);
	ev.node_config.n_ranges = nd->n_ranges;
	ev.node_config.ranges = nd->ranges;
	ev.node_config.n_defines = nd->n_defines;
	ev.node_config.defines = nd->defines;
	submit(d, &ev);
}

static void cl_connected(struct dmn *d, bool up)
{
	struct dv_gate_refs refs = {0};
	enum dv_gate_move move;
	struct dv_gate_request *q;
	struct dv_engine *old;
	int saved = cause;

	if (up) {
		move = dv_gate_connected(&d->gate, true);
		submit_node_config(d);
		restandby_send(d);
		if (move == DV_GATE_OPEN)
			open_gate(d);
		return;
	}
	(void)dv_gate_connected(&d->gate, false);
	d->lapsed = false;
	close_gate(d);
	while ((q = dv_gate_pop_unanswered(&d->gate))) {
		client_reply(d, q->client, q->seq, NULL, DV_R_NOQUORUM);
		free(q);
	}
	old = d->e;
	d->e = dv_engine_new(d->node);
	(void)dv_gate_refs_collect(old, &refs);
	dv_engine_free(old);
	cause = CAUSE_CONN;
	tell_lost(d, &refs);
	cause = saved;
	dv_gate_refs_clear(&refs);
}

static void submit(struct dmn *d, struct dv_event *ev)
{
	const struct dv_addr *a;
	uint64_t client = 0;
	uint32_t seq = 0;
	bool request = dv_event_request(ev, &client, &seq, &a);
	int r;

	ev->node = d->node;
	ev->time_ms = now_ms;
	if (request)
		(void)dv_gate_sent(&d->gate, client, seq, NULL);
	r = d->sync ? dv_sync_submit(d->sync, ev) : -ENOTCONN;
	if (r >= 0)
		return;
	if (r != -ENOTCONN)
		d->broken = true;
	if (!request)
		return;
	dv_gate_answered(&d->gate, client, seq);
	client_reply(d, client, seq, NULL, DV_R_NOQUORUM);
}

/* ---- sync ops (cluster_corosync.c's glue) ---- */

static void msg_desc(const struct msg *m, char *buf, size_t size);

static int op_send(void *ud, const uint8_t *buf, size_t len)
{
	struct dmn *d = ud;
	struct msg m = {.conn = d->conn, .node = d->node, .len = len};

	if (d->view < 0)
		return -ENOTCONN;
	m.serial = views[d->view].serial;
	if (len >= 9 && buf[0] == 8) {
		char what[64], st[64];
		size_t n = (size_t)le(buf + 5, 4), k = 0;

		msg_desc(&(struct msg){.buf = (uint8_t *)buf, .len = len}, what, sizeof(what));
		for (size_t i = 0; i < n && 9 + 4 * i + 4 <= len && k < sizeof(st); i++)
			k += (size_t)snprintf(st + k, sizeof(st) - k, "%s%u", i ? "," : "",
					      (unsigned)le(buf + 9 + 4 * i, 4));
		tr("    n%u: sends %s stamped {%s} round %u, in view %d%s", d->node, what, n ? st : "",
		   (unsigned)le(buf + 1, 4), d->view, transitional ? " (while the view changes)" : "");
	}
	return cpg_send(d, &m, buf, len, opt_batching && cur_seed % opt_batching == 0);
}

static void op_deliver(void *ud, const struct dv_event *ev)
{
	struct dmn *d = ud;
	struct dv_effects fx = {0};
	const struct dv_addr *a;
	dv_nodeid_t owners[NADDR];
	uint64_t client;
	uint32_t seq;
	int saved = cause;

	cause = ev->type;
	if (ev->type == DV_EV_QUORUM)
		tr("    n%u: the stream says %squorate (from n%u)", d->node, ev->quorum.quorate ? "" : "not ",
		   ev->node);
	if (ev->type == DV_EV_QUORUM && ev->quorum.quorate && !transitional && !truth_quorate(d->node) &&
	    d->view >= 0 && delivering_serial != views[d->view].serial) {
		stale_quorum++;
		tr("    n%u: applies QUORUM(quorate) sent by n%u in an earlier view, in one that is not quorate",
		   d->node, ev->node);
	}
	owners_note(d, owners);
	(void)dv_engine_apply(d->e, ev, &fx);
	check_owner_changes(d, owners);
	dispatch_effects(d, &fx);
	dv_effects_free(&fx);
	if (ev->type == DV_EV_QUORUM &&
	    dv_gate_stream_quorum(&d->gate, ev->quorum.quorate, ev->quorum.ring) == DV_GATE_OPEN)
		open_gate(d);
	if (ev->node == d->node && dv_event_request(ev, &client, &seq, &a))
		dv_gate_answered(&d->gate, client, seq);
	if (ev->type == DV_EV_QUORUM || ev->type == DV_EV_MEMBERSHIP)
		restandby_send(d);
	cause = saved;
}

static int op_snapshot(void *ud, uint8_t **ret, size_t *ret_len)
{
	struct dmn *d = ud;

	return dv_engine_snapshot(d->e, ret, ret_len);
}

static int op_restore(void *ud, const uint8_t *buf, size_t len)
{
	struct dmn *d = ud;
	struct dv_gate_refs refs = {0};
	struct dv_effects fx = {0};
	int r, saved = cause;

	cause = CAUSE_RESTORE;
	(void)dv_gate_refs_collect(d->e, &refs);
	r = dv_engine_restore(d->e, buf, len, &fx);
	dispatch_effects(d, &fx);
	dv_effects_free(&fx);
	if (r == 0) {
		bool *alive = calloc(refs.n + 1, sizeof(*alive));

		for (size_t i = 0; i < refs.n; i++)
			alive[i] = client_alive(d, refs.v[i].client);
		dv_gate_note_restandbys(&d->gate, d->e, &refs, alive);
		free(alive);
		tell_lost(d, &refs);
	}
	dv_gate_refs_clear(&refs);
	cause = saved;
	return r;
}

static void op_synced(void *ud, bool restored)
{
	struct dmn *d = ud;

	total_exchanges++;
	if (restored)
		cl_connected(d, true);
}

static void op_exchanging(void *ud, bool on)
{
	struct dmn *d = ud;

	if (dv_gate_exchanging(&d->gate, on) == DV_GATE_OPEN)
		open_gate(d);
	if (!on)
		ask_quorum(d);
}

static void op_asked(void *ud, bool answered)
{
	struct dmn *d = ud;

	dv_gate_stream_asked(&d->gate, answered);
	ask_quorum(d);
}

/* cluster_corosync.c's sync_quorate: what this node last learnt, never a
 * fresh read; -1 while a timed-out read owes its answer. */
static int op_quorate(void *ud)
{
	struct dmn *d = ud;

	return d->quorum_unknown ? -1 : d->local_quorate;
}

/* cluster_corosync.c's fresh_quorate, at every membership: 1 or 0, or -1
 * when the quorum service did not answer within the wait (a fault): not
 * quorate until it answers (act_probe_answer) or notifies. */
static int fresh_quorate(struct dmn *d)
{
	bool q = truth_quorate(d->node);

	d->probe_notes = d->quorum_notes;
	d->probe_ring = nodes[d->node].ring;
	d->quorum_unknown = false;
	if (chance(4)) {
		d->quorum_unknown = true;
		faults[F_PROBE]++;
		d->probe_late = true;
		tr("    n%u: the quorum service does not answer in time", d->node);
		set_local_quorum(d, false);
		return -1;
	}
	if (q != d->local_quorate)
		set_local_quorum(d, q);
	return q;
}

static uint64_t op_ring(void *ud)
{
	return nodes[((struct dmn *)ud)->node].ring;
}

static uint64_t op_wall_ms(void *ud)
{
	(void)ud;
	return now_ms;
}

static void op_note(void *ud, int prio, const char *msg)
{
	struct dmn *d = ud;

	(void)prio;
	tr("    n%u: %s", d->node, msg);
}

static const struct dv_sync_ops sync_ops = {
	.send = op_send,
	.deliver = op_deliver,
	.snapshot = op_snapshot,
	.restore = op_restore,
	.synced = op_synced,
	.exchanging = op_exchanging,
	.asked = op_asked,
	.quorate = op_quorate,
	.ring = op_ring,
	.wall_ms = op_wall_ms,
	.note = op_note,
};

/* ---- simulated CPG ---- */

struct dmn *dmn_by_conn(int conn)
{
	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d && nodes[i].d->sync && nodes[i].d->conn == conn)
			return nodes[i].d;
	return NULL;
}

static bool live_proc(const struct dmn *d)
{
	return d && d->sync && !d->broken && nodes[d->node].cs_up;
}

static bool conn_in(const int *set, size_t n, int conn)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == conn)
			return true;
	return false;
}

/* Deliver one message to one member. */
static void deliver_to(struct dmn *d, const struct msg *m)
{
	if (!d || d->broken || !d->sync)
		return;
	delivering_serial = m->serial;
	/* As an unknown kind (docs/cluster.md's rolling upgrade). */
	if (d->old && m->len && m->buf[0] == 12 && ++old_dropped)
		return;
	if (dv_sync_message(d->sync, m->node, m->conn == d->conn, m->buf, m->len) < 0)
		d->broken = true;
}

/* Protection (invariant 3) ends when a node leaves the quorate component. */
static void unprotect_pass(void)
{
	for (unsigned i = 1; i <= N; i++) {
		struct dmn *d = nodes[i].d;

		if (!d || (live_proc(d) && d->gate.connected && truth_quorate(d->node)))
			continue;
		for (size_t k = 0; k < d->n_refs; k++)
			d->refs[k].protected = false;
	}
}

/* A component's totem forms a new ring: one past the highest ring any of
 * its corosync nodes was in, so numbers grow across partitions through
 * the nodes they share (what a quorate merge winner relies on). */
static void new_ring(int label)
{
	uint64_t top = 0;

	for (unsigned k = 1; k <= N; k++)
		if (nodes[k].cs_up && nodes[k].label == label && nodes[k].ring > top)
			top = nodes[k].ring;
	for (unsigned k = 1; k <= N; k++)
		if (nodes[k].cs_up && nodes[k].label == label)
			nodes[k].ring = top + 1;
}

/* Quorum truth per node changed: votequorum will tell (a step of its own). */
static void quorum_truth_changed(void)
{
	for (unsigned i = 1; i <= N; i++) {
		unsigned sig = 0;

		if (nodes[i].cs_up) {
			for (unsigned k = 1; k <= N; k++)
				if (nodes[k].cs_up && nodes[k].label == nodes[i].label)
					sig |= 1u << k;
			if (comp_quorate(nodes[i].label))
				sig |= 1u;
		}
		if (sig != nodes[i].sig && nodes[i].d && nodes[i].d->sync)
			nodes[i].d->quorum_pending = true;
		if (sig != nodes[i].sig && nodes[i].cs_up)
			new_ring(nodes[i].label);
		nodes[i].sig = sig;
	}
}

/* Membership changed (partition, heal, crash, join): new views with
 * virtual synchrony. */
static void reconfigure(void)
{
	int nset[MAXN][MAXN];
	size_t nn[MAXN] = {0}, n_sets = 0;
	int set_label[MAXN];
	bool unchanged[MAXVIEWS] = {false}, set_kept[MAXN] = {false};
	struct queue carry[MAXN];

	/* Sent before the ring changes, handed to Corosync before it: dvipad's
	 * batch goes the next turn of its loop (DV_PRIO_SEND). At the step's
	 * end, a QUORUM sent on a notification flush_quorum() delivered went
	 * into the merged view as stale (seed 5376). */
	batch_flush_all();
	unprotect_pass();
	quorum_truth_changed();
	memset(carry, 0, sizeof(carry));
	/* The new sets: live processes by component, by node id. */
	for (unsigned i = 1; i <= N; i++) {
		struct dmn *d = nodes[i].d;
		size_t s;

		if (!live_proc(d))
			continue;
		for (s = 0; s < n_sets; s++)
			if (set_label[s] == nodes[i].label)
				break;
		if (s == n_sets) {
			set_label[s] = nodes[i].label;
			n_sets++;
		}
		nset[s][nn[s]++] = d->conn;
	}
	/* Views that stay as they are. */
	for (int v = 0; v < MAXVIEWS; v++) {
		if (!views[v].used)
			continue;
		for (size_t s = 0; s < n_sets; s++)
			if (nn[s] == views[v].n && memcmp(nset[s], views[v].conn, nn[s] * sizeof(int)) == 0) {
				unchanged[v] = set_kept[s] = true;
				break;
			}
	}
	/* Old views that end: each group of members that goes on together
	 * delivers the same prefix; the rest stays with its sender. */
	transitional = true;
	for (int v = 0; v < MAXVIEWS; v++) {
		struct view *ov = &views[v];
		size_t len0, ordered;
		size_t p[MAXN];

		if (!ov->used || unchanged[v])
			continue;
		len0 = queue_len(&ov->q);
		/* How far the old ring ordered its messages: at least as far as
		 * any group delivers. A group delivers its prefix and, as Totem
		 * does (the sender always has its own), every ordered message of
		 * its own members; what was not ordered goes to the sender's
		 * next view. */
		ordered = 0;
		for (size_t s = 0; s < n_sets; s++) {
			p[s] = rnd((unsigned)len0 + 1);
			if (p[s] < len0 && chance(50))
				p[s] = len0;
			if (p[s] > ordered)
				ordered = p[s];
		}
		ordered = opt_loose ? 0 : ordered + rnd((unsigned)(len0 - ordered) + 1);
		for (size_t s = 0; s < n_sets; s++) {
			int S[MAXN];
			size_t ns = 0, own = 0;

			if (set_kept[s]) {
				p[s] = 0;
				continue;
			}
			for (size_t k = 0; k < ov->n; k++)
				if (conn_in(nset[s], nn[s], ov->conn[k]))
					S[ns++] = ov->conn[k];
			if (ns == 0)
				continue;
			for (size_t m = p[s]; m < ordered; m++)
				own += conn_in(S, ns, ov->q.v[ov->q.head + m].conn);
			tr("  view %d: n%u.. deliver %zu of %zu pending (and %zu of their own) to %zu member(s) going "
			   "on "
			   "together",
			   v, dmn_by_conn(S[0]) ? dmn_by_conn(S[0])->node : 0, p[s], len0, own, ns);
			for (size_t m = 0; m < len0; m++) {
				struct msg msg = ov->q.v[ov->q.head + m];
				char what[128];

				if (m >= p[s] && !(m < ordered && conn_in(S, ns, msg.conn)))
					continue;
				msg_desc(&msg, what, sizeof(what));
				tr("    view %d: at the change: %s from n%u", v, what, msg.node);
				for (size_t k = 0; k < ns; k++)
					deliver_to(dmn_by_conn(S[k]), &msg);
				total_msgs++;
			}
		}
		for (size_t s = 0; s < n_sets; s++) {
			if (set_kept[s])
				continue;
			for (size_t m = ov->q.head + (opt_loose ? p[s] : ordered); m < ov->q.n; m++) {
				struct msg c = ov->q.v[m];

				if (!conn_in(nset[s], nn[s], c.conn))
					continue;
				c.buf = malloc(c.len ? c.len : 1);
				memcpy(c.buf, ov->q.v[m].buf, c.len);
				queue_push(&carry[s], &c);
			}
		}
		queue_free(&ov->q);
		ov->used = false;
	}
	transitional = false;
	/* New views. */
	for (size_t s = 0; s < n_sets; s++) {
		int v;

		if (set_kept[s])
			continue;
		for (v = 0; v < MAXVIEWS && views[v].used; v++)
			;
		views[v] = (struct view){.used = true, .serial = ++view_serial, .n = nn[s], .q = carry[s]};
		memcpy(views[v].conn, nset[s], nn[s] * sizeof(int));
		for (size_t k = 0; k < nn[s]; k++)
			dmn_by_conn(nset[s][k])->view = v;
		total_views++;
	}
	/* Processes in no view (crashed, disconnected, broken). */
	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d && !live_proc(nodes[i].d))
			nodes[i].d->view = -1;
	/* Configuration changes. */
	for (size_t s = 0; s < n_sets; s++) {
		dv_nodeid_t ids[MAXN];
		char desc[64];
		size_t k0 = 0;

		if (set_kept[s])
			continue;
		for (size_t k = 0; k < nn[s]; k++) {
			ids[k] = dmn_by_conn(nset[s][k])->node;
			k0 += (size_t)snprintf(desc + k0, sizeof(desc) - k0, "%s%u", k ? "," : "", ids[k]);
		}
		tr("  confchg {%s}%s", desc, comp_quorate(set_label[s]) ? " quorate" : "");
		for (size_t k = 0; k < nn[s]; k++) {
			struct dmn *d = dmn_by_conn(nset[s][k]);
			bool joined = false, left = false;

			if (!d || d->broken)
				continue;
			for (size_t j = 0; j < nn[s]; j++)
				joined |= !conn_in(d->prev, d->n_prev, nset[s][j]);
			for (size_t j = 0; j < d->n_prev; j++)
				left |= !conn_in(nset[s], nn[s], d->prev[j]);
			memcpy(d->prev, nset[s], nn[s] * sizeof(int));
			d->n_prev = nn[s];
			if (left || joined) {
				int q = fresh_quorate(d);

				if (q >= 0)
					dv_sync_quorum_seen(d->sync, nodes[d->node].ring, q);
			}
			if (dv_sync_confchg(d->sync, ids, nn[s], joined, nodes[d->node].ring) < 0)
				d->broken = true;
		}
	}
}

static struct dmn *dmn_new(dv_nodeid_t node)
{
	struct dmn *d = calloc(1, sizeof(*d));
	static unsigned incs[MAXN + 1];

	d->node = node;
	d->inc = ++incs[node];
	d->old = opt_old && rnd(100) < opt_old;
	d->e = dv_engine_new(node);
	d->view = -1;
	d->next_client = 1;
	dv_gate_init(&d->gate, false);
	return d;
}

static void dmn_free(struct dmn *d)
{
	if (!d)
		return;
	dv_sync_batch_free(&d->batch);
	dv_sync_free(d->sync);
	dv_engine_free(d->e);
	dv_gate_clear(&d->gate);
	free(d->clients);
	free(d->reqs);
	free(d->refs);
	free(d);
}

/* cluster_corosync.c's try_connect: a new CPG connection; joins at the
 * next reconfigure(). */
static void connect_cpg(struct dmn *d)
{
	bool q = truth_quorate(d->node);

	d->sync = dv_sync_new(d->node, &sync_ops, d);
	dv_sync_set_mutation(d->sync, mutation);
	d->conn = ++next_conn;
	d->n_prev = 0;
	d->view = -1;
	d->quorum_pending = d->probe_late = d->quorum_unknown = false;
	d->local_quorate = !q;
	set_local_quorum(d, q);
}

/* cluster_corosync.c's lost(): teardown, connected(false). */
static void lose_cpg(struct dmn *d)
{
	dv_sync_batch_free(&d->batch);
	d->sync = dv_sync_free(d->sync);
	d->view = -1;
	d->broken = false;
	d->quorum_pending = d->probe_late = d->quorum_unknown = false;
	d->n_prev = 0;
	cl_connected(d, false);
}

static void settle_broken(void)
{
	for (int round = 0; round < 100; round++) {
		bool any = false;

		for (unsigned i = 1; i <= N; i++) {
			struct dmn *d = nodes[i].d;

			if (d && d->broken) {
				tr("  n%u: sync error: leaves the group and joins again", d->node);
				faults[F_SYNC_ERROR]++;
				for (size_t k = 0; k < d->n_refs; k++)
					d->refs[k].protected = false;
				lose_cpg(d);
				any = true;
			}
		}
		if (!any)
			return;
		reconfigure();
	}
}

/* ---- configuration of a seed ---- */

static void make_configs(void)
{
	static const enum dv_range_policy pol[NRANGE] = {DV_POLICY_UNIQUE, DV_POLICY_NONDISRUPTIVE,
							 DV_POLICY_DISRUPTIVE};
	dv_nodeid_t def_owner[NDEF];

	for (int r = 0; r < NRANGE; r++)
		def_owner[r] = 0;
	for (int k = 0; k < NDEF; k++)
		def_owner[k] = 1 + rnd(N);
	for (unsigned i = 1; i <= N; i++) {
		struct node *nd = &nodes[i];

		nd->n_ranges = nd->n_defines = 0;
		for (int r = 0; r < NRANGE; r++)
			if (chance(80) || (r == NRANGE - 1 && nd->n_ranges == 0))
				nd->ranges[nd->n_ranges++] =
					(struct dv_conf_range){.prefix = prefixes[r], .policy = pol[r]};
		for (int k = 0; k < NDEF; k++) {
			struct dv_conf_define *df = &nd->defines[nd->n_defines];

			if (def_owner[k] != i && !chance(50))
				continue;
			*df = (struct dv_conf_define){.addr = addrs[NRANGE * 3 + k], .plen = 32};
			df->rank = def_owner[k] == i ? DV_RANK_DEFINE : 1 + rnd(254);
			df->moveable = def_owner[k] == i ? (chance(80) ? DV_MOVE_IMMEDIATE : DV_MOVE_WHENIDLE)
							 : (chance(70) ? DV_MOVE_IMMEDIATE : DV_MOVE_NONE);
			nd->n_defines++;
		}
	}
}

/* ---- actions ---- */

static struct dmn *pick_dmn(bool need_sync)
{
	struct dmn *c[MAXN];
	unsigned n = 0;

	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d && (!need_sync || nodes[i].d->sync))
			c[n++] = nodes[i].d;
	return n ? c[rnd(n)] : NULL;
}

static struct client *pick_client(struct dmn *d, bool create)
{
	struct client *alive[64];
	unsigned n = 0;

	for (size_t i = 0; i < d->n_clients && n < 64; i++)
		if (d->clients[i].alive)
			alive[n++] = &d->clients[i];
	if (n && !(create && (n < 6 ? chance(30) : chance(2))))
		return alive[rnd(n)];
	if (!create)
		return NULL;
	d->clients = realloc(d->clients, (d->n_clients + 1) * sizeof(*d->clients));
	d->clients[d->n_clients] = (struct client){.id = d->next_client++, .alive = true};
	return &d->clients[d->n_clients++];
}

static void note_req(struct dmn *d, uint64_t client, uint32_t seq, enum dv_event_type t, enum dv_kind kind, int a)
{
	d->reqs = realloc(d->reqs, (d->n_reqs + 1) * sizeof(*d->reqs));
	d->reqs[d->n_reqs++] = (struct req){.client = client, .seq = seq, .type = t, .kind = kind, .addr = a};
}

static dv_nodeid_t pick_member(struct dmn *d)
{
	const dv_nodeid_t *m;
	size_t n = dv_engine_members(d->e, &m);

	return n ? m[rnd((unsigned)n)] : 0;
}

static void act_claim(void)
{
	struct dmn *d = pick_dmn(false);
	struct client *c;
	struct dv_event ev = {.type = DV_EV_CLAIM};
	int a = (int)rnd(NRANGE * 3);

	if (!d)
		return;
	c = pick_client(d, true);
	ev.claim.client = c->id;
	ev.claim.seq = ++c->seq;
	ev.claim.addr = addrs[a];
	ev.claim.kind = chance(75) ? DV_KIND_API : DV_KIND_SOCKET;
	tr("n%u: client %" PRIu64 " claims %s (%s)", d->node, c->id, addr_s(&addrs[a]),
	   ev.claim.kind == DV_KIND_API ? "api" : "socket");
	/* daemon.c's submit_request: refused here while Corosync says the
	 * partition is not quorate. */
	if (d->gate.connected && !d->gate.quorate)
		return;
	note_req(d, c->id, ev.claim.seq, DV_EV_CLAIM, ev.claim.kind, a);
	submit(d, &ev);
}

static void act_standby(void)
{
	struct dmn *d = pick_dmn(false);
	struct client *c;
	struct dv_event ev = {.type = DV_EV_STANDBY};
	int a = (int)rnd(NRANGE * 3);

	if (!d)
		return;
	c = pick_client(d, true);
	ev.standby.client = c->id;
	ev.standby.seq = ++c->seq;
	ev.standby.addr = addrs[a];
	ev.standby.rank = 1 + rnd(254);
	ev.standby.kind = DV_KIND_API;
	tr("n%u: client %" PRIu64 " standby for %s rank %u", d->node, c->id, addr_s(&addrs[a]), ev.standby.rank);
	if (d->gate.connected && !d->gate.quorate)
		return;
	note_req(d, c->id, ev.standby.seq, DV_EV_STANDBY, DV_KIND_API, a);
	submit(d, &ev);
}

static void act_release(void)
{
	struct dmn *d = pick_dmn(false);
	struct client *c;
	struct dv_event ev = {.type = DV_EV_RELEASE};
	int a = (int)rnd(NRANGE * 3);

	if (!d || !(c = pick_client(d, false)))
		return;
	/* Mostly what the client has. */
	for (size_t i = 0; i < d->n_refs; i++)
		if (d->refs[i].r.client == c->id && chance(70)) {
			a = addr_index(&d->refs[i].r.addr);
			break;
		}
	ev.release.client = c->id;
	ev.release.seq = ++c->seq;
	ev.release.addr = addrs[a];
	ev.release.kind = chance(80) ? DV_KIND_API : DV_KIND_SOCKET;
	tr("n%u: client %" PRIu64 " releases %s", d->node, c->id, addr_s(&addrs[a]));
	for (size_t i = 0; i < d->n_refs;)
		if (d->refs[i].r.client == c->id && dv_addr_eq(&d->refs[i].r.addr, &addrs[a]))
			ref_drop(d, i);
		else
			i++;
	for (size_t i = 0; i < d->n_reqs; i++)
		if (d->reqs[i].client == c->id && d->reqs[i].addr == a)
			d->reqs[i].cancelled = true;
	note_req(d, c->id, ev.release.seq, DV_EV_RELEASE, ev.release.kind, a);
	submit(d, &ev);
}

static void act_client_gone(void)
{
	struct dmn *d = pick_dmn(false);
	struct client *c;
	struct dv_event ev = {.type = DV_EV_CLIENT_GONE};

	if (!d || !(c = pick_client(d, false)))
		return;
	tr("n%u: client %" PRIu64 " exits", d->node, c->id);
	faults[F_CLIENT_GONE]++;
	c->alive = false;
	for (size_t i = 0; i < d->n_refs;)
		if (d->refs[i].r.client == c->id)
			ref_drop(d, i);
		else
			i++;
	dv_gate_drop_grants(&d->gate, c->id, NULL);
	dv_gate_drop_restandbys(&d->gate, c->id);
	dv_gate_drop_requests(&d->gate, c->id);
	ev.client_gone.client = c->id;
	submit(d, &ev);
}

static void act_operator(void)
{
	struct dmn *d = pick_dmn(true);
	struct dv_event ev = {0};
	uint64_t client;

	if (!d)
		return;
	client = 1000000 + d->next_client++; /* a dvipactl connection */
	switch (rnd(4)) {
	case 0:
		ev.type = DV_EV_MOVE;
		ev.move.client = client;
		ev.move.seq = 1;
		ev.move.addr = addrs[rnd(NRANGE * 3)];
		ev.move.to = pick_member(d);
		tr("n%u: operator moves %s to n%u", d->node, addr_s(&ev.move.addr), ev.move.to);
		if (!ev.move.to || (d->gate.connected && !d->gate.quorate))
			return;
		break;
	case 1:
		ev.type = DV_EV_DEFINE_STATE;
		ev.define_state.client = client;
		ev.define_state.seq = 1;
		ev.define_state.addr = addrs[NRANGE * 3 + rnd(NDEF)];
		ev.define_state.target = chance(50) ? d->node : pick_member(d);
		ev.define_state.active = chance(60);
		tr("n%u: operator %sactivates %s on n%u", d->node, ev.define_state.active ? "re" : "de",
		   addr_s(&ev.define_state.addr), ev.define_state.target);
		if (!ev.define_state.target)
			return;
		break;
	case 2:
		/* Quiesced targets are replicated state (invariant 2). */
		ev.type = DV_EV_QUIESCE;
		ev.quiesce.client = client;
		ev.quiesce.seq = 1;
		ev.quiesce.addr = addrs[NRANGE * 3 + rnd(NDEF)];
		ev.quiesce.target = chance(50) ? d->node : pick_member(d);
		ev.quiesce.port = (uint16_t)rnd(3); /* 0: every port */
		ev.quiesce.on = chance(60);
		tr("n%u: operator %s %s port %u on n%u", d->node, ev.quiesce.on ? "quiesces" : "resumes",
		   addr_s(&ev.quiesce.addr), ev.quiesce.port, ev.quiesce.target);
		if (!ev.quiesce.target)
			return;
		break;
	default:
		ev.type = DV_EV_NODE_ADMIN;
		ev.node_admin.client = client;
		ev.node_admin.seq = 1;
		ev.node_admin.target = chance(50) ? d->node : pick_member(d);
		ev.node_admin.joined = chance(60);
		tr("n%u: operator: n%u %s", d->node, ev.node_admin.target, ev.node_admin.joined ? "joins" : "leaves");
		if (!ev.node_admin.target)
			return;
		break;
	}
	submit(d, &ev);
}

/* A node asks for a slice of an address's ports, or gives its slice back;
 * the sizes make the pool run out. */
static void act_port_slice(void)
{
	struct dmn *d = pick_dmn(false);
	struct dv_event ev = {.type = DV_EV_PORT_SLICE};

	if (!d)
		return;
	ev.port_slice.addr = addrs[NRANGE * 3 + rnd(NDEF)];
	ev.port_slice.blocks = chance(25) ? 0 : 1 + rnd(DV_SLICE_POOL_BLOCKS / 2);
	tr("n%u: port slice of %s: %u block(s)", d->node, addr_s(&ev.port_slice.addr), ev.port_slice.blocks);
	submit(d, &ev);
}

/* A target's readiness and weights for a define's distributed ports, as
 * dv_dist_report_bits() reports them (DV_AS_READY, DV_AS_WEIGHT): every
 * node must store the same (invariant 2). BOUND as the daemon says it, so
 * that the report ends no socket hold the model does not expect. */
static void act_report(void)
{
	struct dmn *d = pick_dmn(true);
	struct dv_event ev = {.type = DV_EV_ADDR_STATE};

	if (!d)
		return;
	ev.addr_state.addr = addrs[NRANGE * 3 + rnd(NDEF)];
	ev.addr_state.flags = dv_observe_socket_hold(d->e, &ev.addr_state.addr) ? DV_AS_BOUND : 0;
	for (size_t i = 0; i < DV_DIST_MAX_PORTS; i++)
		if (chance(60))
			ev.addr_state.flags |= DV_AS_READY(i) | DV_AS_WEIGHT(i, 1 + rnd(DV_AS_WEIGHT_MAX));
	tr("n%u: reports %s ready/weights %#x", d->node, addr_s(&ev.addr_state.addr), ev.addr_state.flags);
	submit(d, &ev);
}

bool any_msg(void)
{
	for (int v = 0; v < MAXVIEWS; v++)
		if (views[v].used && queue_len(&views[v].q))
			return true;
	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d && nodes[i].d->batch.n)
			return true;
	return false;
}

/* A message as the trace shows it: its kind (sync.c's wire format), events
 * by type, QUORUM with its value. The sync module's notes say the rest. */
static void msg_desc(const struct msg *m, char *buf, size_t size)
{
	static const char *const kinds[] = {"?",      "EVENT",	"?",	      "SUMMARY", "STATE",  "DIGEST", "CHECK",
					    "RESYNC", "QUORUM", "QUORUM_ASK", "BEAT",	 "REPLAY", "BATCHED"};
	struct dv_event ev;
	void *storage = NULL;

	snprintf(buf, size, "%s", m->len && m->buf[0] < sizeof(kinds) / sizeof(*kinds) ? kinds[m->buf[0]] : "?");
	if (m->len && m->buf[0] == 1 && dv_event_decode(m->buf + 1, m->len - 1, &ev, &storage) == 0) {
		snprintf(buf, size, "%s", cause_name((int)ev.type));
		free(storage);
	}
	if (m->len >= 9 && m->buf[0] == 8) {
		size_t off = 9 + 4 * (size_t)le(m->buf + 5, 4);

		if (m->len > off)
			snprintf(buf, size, "QUORUM(%s)", m->buf[off] ? "quorate" : "not quorate");
	}
}

static void act_deliver(void)
{
	int c[MAXVIEWS], n = 0, v;
	struct msg m;
	char what[128];

	for (v = 0; v < MAXVIEWS; v++)
		if (views[v].used && queue_len(&views[v].q))
			c[n++] = v;
	if (!n)
		return;
	v = c[rnd((unsigned)n)];
	m = views[v].q.v[views[v].q.head++];
	msg_desc(&m, what, sizeof(what));
	tr("view %d: deliver %s from n%u (%zu bytes) to %zu member(s)", v, what, m.node, m.len, views[v].n);
	for (size_t k = 0; k < views[v].n; k++)
		deliver_to(dmn_by_conn(views[v].conn[k]), &m);
	free(m.buf);
	total_msgs++;
}

static void act_quorum_notify(void)
{
	struct dmn *c[MAXN], *d;
	unsigned n = 0;

	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d && nodes[i].d->quorum_pending)
			c[n++] = nodes[i].d;
	if (!n)
		return;
	d = c[rnd(n)];
	d->quorum_pending = false;
	d->quorum_notes++;
	d->quorum_unknown = false;
	tr("n%u: votequorum says %squorate", d->node, truth_quorate(d->node) ? "" : "not ");
	set_local_quorum(d, truth_quorate(d->node));
	if (d->sync && dv_sync_quorum_notified(d->sync, nodes[d->node].ring, truth_quorate(d->node)) < 0)
		d->broken = true;
}

/* cluster_corosync.c's on_probe_io: the late answer of a fresh read, taken
 * only if no notification and no membership came since. */
static void act_probe_answer(void)
{
	struct dmn *c[MAXN], *d;
	unsigned n = 0;
	bool q;

	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d && nodes[i].d->probe_late)
			c[n++] = nodes[i].d;
	if (!n)
		return;
	d = c[rnd(n)];
	d->probe_late = false;
	q = truth_quorate(d->node);
	if (d->quorum_notes != d->probe_notes || nodes[d->node].ring != d->probe_ring) {
		tr("n%u: the quorum service's late answer comes (dropped)", d->node);
		return;
	}
	tr("n%u: the quorum service answers late: %squorate", d->node, q ? "" : "not ");
	d->quorum_unknown = false;
	if (q != d->local_quorate)
		set_local_quorum(d, q);
	if (d->sync && dv_sync_quorum_changed(d->sync, nodes[d->node].ring, q) < 0)
		d->broken = true;
}

/* Votequorum tells a node of a change within a few ms, a new ring takes a
 * token timeout (hundreds of ms): notifications pending when the next ring
 * change comes have been delivered by then. They still race the CPG
 * configuration change of their own ring. */
static void flush_quorum(void)
{
	for (unsigned i = 1; i <= N; i++)
		while (nodes[i].d && nodes[i].d->quorum_pending)
			act_quorum_notify();
	settle_broken();
}

static void act_reconnect(void)
{
	struct dmn *c[MAXN], *d;
	unsigned n = 0;

	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d && !nodes[i].d->sync && nodes[i].cs_up)
			c[n++] = nodes[i].d;
	if (!n)
		return;
	/* Sometimes every waiting dvipad at once: concurrent joins. */
	if (n > 1 && chance(30)) {
		faults[F_CONCURRENT_JOIN]++;
		for (unsigned i = 0; i < n; i++) {
			tr("n%u: dvipad connects to corosync (with %u other(s))", c[i]->node, n - 1);
			connect_cpg(c[i]);
		}
		reconfigure();
		return;
	}
	d = c[rnd(n)];
	tr("n%u: dvipad connects to corosync", d->node);
	connect_cpg(d);
	reconfigure();
}

static void act_check(void)
{
	struct dmn *d = pick_dmn(true);

	if (!d)
		return;
	tr("n%u: check tick", d->node);
	if (dv_sync_check(d->sync) < 0)
		d->broken = true;
}

/* The ring lease (fence.h) runs out on a connected node and comes back
 * later: in the real daemon when its own messages are late, here at any
 * step, which covers more orders than the real trigger allows. */
static void set_lease(struct dmn *d, bool held)
{
	enum dv_gate_move m;

	tr("n%u: ring lease %s", d->node, held ? "held again" : "ran out");
	d->lapsed = !held;
	if (d->sync)
		dv_sync_lease(d->sync, held);
	m = dv_gate_lease(&d->gate, held);
	if (m == DV_GATE_CLOSE)
		close_gate(d);
	else if (m == DV_GATE_OPEN)
		open_gate(d);
	ask_quorum(d);
}

static void act_lease(void)
{
	struct dmn *d = pick_dmn(true);

	if (!d)
		return;
	if (!d->lapsed)
		faults[F_LEASE]++;
	set_lease(d, d->lapsed);
}

static void act_dvipad_crash(void)
{
	struct dmn *d = pick_dmn(false);

	if (!d)
		return;
	tr("n%u: dvipad crashes", d->node);
	faults[F_DVIPAD_CRASH]++;
	nodes[d->node].d = NULL;
	dmn_free(d);
	reconfigure();
}

static void act_dvipad_start(void)
{
	unsigned c[MAXN], n = 0, i;

	for (i = 1; i <= N; i++)
		if (!nodes[i].d)
			c[n++] = i;
	if (!n)
		return;
	i = c[rnd(n)];
	faults[F_DVIPAD_START]++;
	nodes[i].d = dmn_new(i);
	tr("n%u: dvipad starts (incarnation %u)", i, nodes[i].d->inc);
	if (nodes[i].cs_up) {
		connect_cpg(nodes[i].d);
		reconfigure();
	}
}

static void act_corosync_crash(void)
{
	unsigned c[MAXN], n = 0, i;
	flush_quorum();

	for (i = 1; i <= N; i++)
		if (nodes[i].cs_up)
			c[n++] = i;
	if (!n)
		return;
	i = c[rnd(n)];
	tr("n%u: corosync crashes", i);
	faults[F_COROSYNC_CRASH]++;
	nodes[i].cs_up = false;
	unprotect_pass();
	if (nodes[i].d && nodes[i].d->sync)
		lose_cpg(nodes[i].d);
	reconfigure();
}

static void act_corosync_start(void)
{
	unsigned c[MAXN], n = 0, i;
	flush_quorum();

	for (i = 1; i <= N; i++)
		if (!nodes[i].cs_up)
			c[n++] = i;
	if (!n)
		return;
	i = c[rnd(n)];
	tr("n%u: corosync starts", i);
	faults[F_COROSYNC_START]++;
	nodes[i].cs_up = true;
	reconfigure();
}

static void labels_trace(const char *what)
{
	char s[64];
	size_t k = 0;

	for (unsigned i = 1; i <= N; i++)
		k += (size_t)snprintf(s + k, sizeof(s) - k, "%s%u:%d", i > 1 ? " " : "", i, nodes[i].label);
	tr("%s: components %s", what, s);
}

static void act_partition(void)
{
	unsigned k = 2 + rnd(2);
	flush_quorum();

	faults[F_PARTITION]++;
	for (unsigned i = 1; i <= N; i++)
		nodes[i].label = (int)rnd(k);
	labels_trace("partition");
	reconfigure();
}

static void act_heal(void)
{
	flush_quorum();
	faults[F_HEAL]++;
	for (unsigned i = 1; i <= N; i++)
		nodes[i].label = 0;
	labels_trace("heal");
	reconfigure();
}

static void act_isolate(void)
{
	unsigned i = 1 + rnd(N);
	flush_quorum();

	faults[F_ISOLATE]++;
	nodes[i].label = 100 + (int)i;
	labels_trace("isolate");
	reconfigure();
}

/* One node joins another's component: staggered heals are several. */
static void act_move_node(void)
{
	unsigned i = 1 + rnd(N), j = 1 + rnd(N);
	flush_quorum();

	faults[F_MOVE_NODE]++;
	nodes[i].label = nodes[j].label;
	labels_trace("move node");
	reconfigure();
}

static void act_merge(void)
{
	unsigned i = 1 + rnd(N), j = 1 + rnd(N);
	int from = nodes[i].label;
	flush_quorum();

	faults[F_MERGE]++;
	for (unsigned k = 1; k <= N; k++)
		if (nodes[k].label == from)
			nodes[k].label = nodes[j].label;
	labels_trace("merge");
	reconfigure();
}

/* ---- the run ---- */

struct action {
	unsigned weight;
	void (*fn)(void);
	bool fault;
};

static void world_reset(void)
{
	for (unsigned i = 1; i <= N; i++) {
		dmn_free(nodes[i].d);
		nodes[i].d = NULL;
	}
	for (int v = 0; v < MAXVIEWS; v++) {
		queue_free(&views[v].q);
		views[v].used = false;
	}
	memset(nodes, 0, sizeof(nodes));
}

static void print_failure(uint64_t seed, uint64_t steps, bool with_trace)
{
	uint64_t from = trace_n > TRACE_LINES ? trace_n - TRACE_LINES : 0;

	printf("\nFAILURE: seed %" PRIu64 ", step %" PRIu64 ", %u nodes%s: invariant %d: %s\n", seed, step_no, N,
	       opt_mutant ? " (mutant)" : "", fail.inv, fail.what);
	if (with_trace) {
		printf("trace (last %" PRIu64 " lines):\n", trace_n - from);
		for (uint64_t k = from; k < trace_n; k++)
			printf("  %s\n", trace[k % TRACE_LINES]);
	}
	printf("replay: dvipa-sim --seed %" PRIu64 " --steps %" PRIu64 "%s", seed, steps,
	       opt_mutant ? " --mutant" : "");
	if (opt_checks != 0x1fe) {
		printf(" --check ");
		for (int i = 1; i <= 8; i++)
			if (opt_checks & (1u << i))
				printf("%d", i);
	}
	if (opt_nodes)
		printf(" --nodes %u", opt_nodes);
	if (opt_loose)
		printf(" --loose");
	printf("\n");
}

static bool do_step(bool drain)
{
	static const struct action acts[] = {
		{400, act_deliver, false},     {60, act_quorum_notify, false}, {40, act_reconnect, false},
		{90, act_claim, false},	       {60, act_standby, false},       {50, act_release, false},
		{15, act_client_gone, false},  {15, act_operator, false},      {15, act_check, false},
		{4, act_dvipad_crash, true},   {8, act_dvipad_start, true},    {3, act_corosync_crash, true},
		{8, act_corosync_start, true}, {5, act_partition, true},       {6, act_heal, true},
		{5, act_isolate, true},	       {6, act_move_node, true},       {3, act_merge, true},
		{6, act_lease, true},	       {30, act_probe_answer, false},  {10, act_port_slice, false},
		{15, act_report, false},
	};
	unsigned total = 0, x;

	step_no++;
	now_ms += 1 + rnd(20);
	if (drain) {
		bool m = any_msg(), q = false;
		struct dmn *lapsed = NULL;

		bool late = false;

		for (unsigned i = 1; i <= N; i++) {
			q |= nodes[i].d && nodes[i].d->quorum_pending;
			late |= nodes[i].d && nodes[i].d->probe_late;
			if (nodes[i].d && nodes[i].d->lapsed)
				lapsed = nodes[i].d;
		}
		/* Quiet: own messages come back, the lease holds again. */
		if (lapsed && (!m || chance(20)))
			set_lease(lapsed, true);
		else if (m && (!q || chance(80)))
			act_deliver();
		else if (q)
			act_quorum_notify();
		else if (late)
			act_probe_answer();
	} else {
		for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
			total += acts[i].weight;
		x = rnd(total);
		for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
			if (x < acts[i].weight) {
				acts[i].fn();
				break;
			}
			x -= acts[i].weight;
		}
	}
	/* The step's batches go, before a broken node leaves (their source
	 * goes first in dvipad's loop) and after: its leaving makes others
	 * send (SUMMARY, QUORUM). */
	batch_flush_all();
	settle_broken();
	batch_flush_all();
	unprotect_pass();
	check_all();
	return !fail.failed;
}

/* One seed: 0 clean, 1 a violation. */
static int run_seed(uint64_t seed, uint64_t steps, unsigned want_nodes)
{
	uint64_t drain_at;

	rng_state = seed * 0x2545f4914f6cdd1dull + 1;
	cur_seed = seed;
	N = want_nodes ? want_nodes : 3 + rnd(5);
	step_no = now_ms = 0;
	trace_n = 0;
	fail = (struct failure){0};
	make_configs();
	/* Every node starts; sometimes each cut off (the start). */
	{
		bool apart = chance(30);

		for (unsigned i = 1; i <= N; i++) {
			nodes[i].cs_up = true;
			nodes[i].label = apart ? (int)i : 0;
			nodes[i].d = dmn_new(i);
		}
	}
	tr("seed %" PRIu64 ": %u nodes", seed, N);
	drain_at = 100 + rnd(300);
	while (step_no < steps) {
		if (step_no >= drain_at) {
			/* A quiet spell: no workload, no faults; the cluster must
			 * become stable. */
			uint64_t start = step_no;

			total_drains++;
			tr("quiet: delivering until stable");
			while (!stable() && step_no < steps) {
				if (step_no - start > DRAIN_LIMIT) {
					violation(2, "no stable state after %d quiet steps", DRAIN_LIMIT);
					break;
				}
				if (!do_step(true))
					break;
			}
			drain_at = step_no + 50 + rnd(400);
			if (fail.failed)
				break;
			continue;
		}
		if (!do_step(false))
			break;
	}
	total_steps += step_no;
	seed_steps = step_no;
	if (fail.failed)
		print_failure(seed, step_no, n_failures++ == 0);
	world_reset();
	return fail.failed ? 1 : 0;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: dvipa-sim [--seeds A..B | --seed S] [--steps K] [--nodes N] [--seconds T]\n"
			"                 [--keep-going] [--mutant] [--check 12345678] [--loose]\n"
			"                 [--batching none|even|all] [--old P] [--quiet]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t a = 1, b = 10, steps = 10000, seeds = 0, failures = 0, first_fail_steps = 0;
	unsigned want_nodes = 0;
	double seconds = 0, t0;
	bool seeds_given = false;
	int first_fail_inv = 0;
	char ip[32];

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--seeds") && v) {
			if (sscanf(v, "%" SCNu64 "..%" SCNu64, &a, &b) != 2 || b < a)
				usage();
			seeds_given = true;
			i++;
		} else if (!strcmp(o, "--seed") && v) {
			a = b = strtoull(v, NULL, 10);
			seeds_given = true;
			i++;
		} else if (!strcmp(o, "--steps") && v) {
			steps = strtoull(v, NULL, 10);
			i++;
		} else if (!strcmp(o, "--nodes") && v) {
			want_nodes = opt_nodes = (unsigned)atoi(v);
			if (want_nodes < 3 || want_nodes > MAXN)
				usage();
			i++;
		} else if (!strcmp(o, "--seconds") && v) {
			seconds = atof(v);
			i++;
		} else if (!strcmp(o, "--check") && v) {
			opt_checks = 0;
			for (const char *c = v; *c; c++)
				if (*c >= '1' && *c <= '8')
					opt_checks |= 1u << (*c - '0');
			i++;
		} else if (!strcmp(o, "--batching") && v) {
			if (!strcmp(v, "none"))
				opt_batching = 0;
			else if (!strcmp(v, "even"))
				opt_batching = 2;
			else if (!strcmp(v, "all"))
				opt_batching = 1;
			else
				usage();
			i++;
		} else if (!strcmp(o, "--old") && v) {
			opt_old = (unsigned)atoi(v);
			i++;
		} else if (!strcmp(o, "--loose")) {
			opt_loose = true;
		} else if (!strcmp(o, "--keep-going")) {
			opt_keep_going = true;
		} else if (!strcmp(o, "--mutant")) {
			opt_mutant = true;
			mutation = 1;
		} else if (!strcmp(o, "--quiet")) {
			opt_quiet = true;
		} else {
			usage();
		}
	}
	if (seconds > 0 && !seeds_given)
		b = UINT64_MAX;
	for (int i = 0; i < NRANGE; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.0/30", i + 1);
		(void)dv_prefix_parse(ip, &prefixes[i]);
		for (int k = 0; k < 3; k++) {
			snprintf(ip, sizeof(ip), "10.0.%d.%d", i + 1, k + 1);
			(void)dv_addr_parse(ip, &addrs[i * 3 + k]);
		}
	}
	for (int k = 0; k < NDEF; k++) {
		snprintf(ip, sizeof(ip), "10.0.9.%d", k + 1);
		(void)dv_addr_parse(ip, &addrs[NRANGE * 3 + k]);
	}
	t0 = mono_s();
	for (uint64_t s = a; s <= b; s++) {
		int r = run_seed(s, steps, want_nodes);

		seeds++;
		if (!opt_quiet)
			printf("seed %" PRIu64 ": %u nodes, %" PRIu64 " steps, %s\n", s, N, seed_steps,
			       r ? "FAILED" : "clean");
		if (r) {
			if (!failures) {
				first_fail_steps = total_steps;
				first_fail_inv = fail.inv;
			}
			failures++;
			if (!opt_keep_going)
				break;
		}
		if (seconds > 0 && mono_s() - t0 >= seconds)
			break;
		if (s == UINT64_MAX)
			break;
	}
	{
		double dt = mono_s() - t0;
		uint64_t nf = 0;

		for (int f = 0; f < F__N; f++)
			nf += faults[f];
		printf("\nseeds %" PRIu64 " (%" PRIu64 "..%" PRIu64 "), steps %" PRIu64 ", faults %" PRIu64
		       ", exchanges %" PRIu64 ", views %" PRIu64 ", messages %" PRIu64 ", quiet spells %" PRIu64
		       ", failures %" PRIu64 "\n",
		       seeds, a, a + seeds - 1, total_steps, nf, total_exchanges, total_views, total_msgs, total_drains,
		       failures);
		printf("faults by kind:");
		for (int f = 0; f < F__N; f++)
			printf("%s %s %" PRIu64, f ? "," : "", fault_names[f], faults[f]);
		printf("\nQUORUM(quorate) sent in an earlier view and applied in one that is not quorate: %" PRIu64
		       " time(s)",
		       stale_quorum);
		printf("\nbatches dropped by a dvipad of protocol 1 (--old): %" PRIu64, old_dropped);
		printf("\nsteps/s %.0f (%.1f s)\n", dt > 0 ? (double)total_steps / dt : 0.0, dt);
		if (opt_mutant)
			printf("mutant: %s", failures ? "found" : "NOT found");
		if (opt_mutant && failures)
			printf(" after %" PRIu64 " steps in all (invariant %d)", first_fail_steps, first_fail_inv);
		if (opt_mutant)
			printf("\n");
	}
	return failures ? 1 : 0;
}
