/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipa-sim's invariants (the numbers of sim.c's header), checked after
 * every step.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- quorum truth: what votequorum would say, for the model and the
 * invariants ---- */

bool comp_quorate(int label)
{
	unsigned votes = 0;

	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].cs_up && nodes[i].label == label)
			votes++;
	return 2 * votes > N;
}

bool truth_quorate(dv_nodeid_t n)
{
	return nodes[n].cs_up && comp_quorate(nodes[n].label);
}

/* ---- invariants ---- */

bool stable(void)
{
	if (any_msg())
		return false;
	for (unsigned i = 1; i <= N; i++) {
		struct dmn *d = nodes[i].d;
		struct dv_sync_info info;

		if (!d)
			continue;
		if (d->quorum_pending || d->probe_late || d->broken || d->lapsed)
			return false;
		if (d->sync) {
			dv_sync_info(d->sync, &info);
			if (info.exchanging || !info.synced)
				return false;
		}
	}
	return true;
}

static void check_model(struct dmn *d)
{
	bool open = gate_open(d);

	for (int i = 0; i < NADDR; i++) {
		bool want = open && dv_gate_wants(&d->gate, d->e, &addrs[i]);

		if (d->gate.exchanging && d->gate.connected && d->gate.quorate)
			continue; /* keeps what it has, adds nothing */
		if (want != d->installed[i]) {
			violation(5, "node %u: %s is %sinstalled but the gate %s it (gate %s)", d->node,
				  addr_s(&addrs[i]), d->installed[i] ? "" : "not ", want ? "wants" : "does not want",
				  open ? "open" : "closed");
			return;
		}
	}
}

struct owner_check {
	struct dmn *d;
	const dv_nodeid_t *m;
	size_t n_m;
};

static bool is_member(const struct owner_check *oc, dv_nodeid_t n)
{
	for (size_t i = 0; i < oc->n_m; i++)
		if (oc->m[i] == n)
			return true;
	return false;
}

static int owner_cb(void *ud, const struct dv_vipa_info *v)
{
	struct owner_check *oc = ud;

	if (v->owner)
		return 0;
	for (size_t i = 0; i < v->n_standbys; i++)
		if (is_member(oc, v->standbys[i].node) && !dv_engine_node_left(oc->d->e, v->standbys[i].node)) {
			violation(4, "%s has no owner though node %u's standby (rank %u) is eligible (view of n%u)",
				  addr_s(&v->addr), v->standbys[i].node, v->standbys[i].rank, oc->d->node);
			return 1;
		}
	for (size_t i = 0; i < v->n_cands; i++)
		/* A backup that is not MOVEABLE IMMEDIATE only takes over an
		 * address that was active once, which the engine does not show:
		 * left out. */
		if (is_member(oc, v->cands[i].node) && !v->cands[i].deactivated &&
		    !dv_engine_node_left(oc->d->e, v->cands[i].node) &&
		    !(v->cands[i].rank < DV_RANK_DEFINE && v->cands[i].moveable == DV_MOVE_NONE)) {
			violation(4, "%s has no owner though node %u's %s is eligible (view of n%u)", addr_s(&v->addr),
				  v->cands[i].node, v->cands[i].rank == DV_RANK_DEFINE ? "define" : "backup",
				  oc->d->node);
			return 1;
		}
	return 0;
}

/* 7: d's slices (members: the stream's members, once stable). */
static void check_slices(struct dmn *d, bool members)
{
	const struct dv_port_slice *s;
	size_t n = dv_engine_port_slices(d->e, &s);

	for (size_t i = 0; i < n; i++) {
		const struct dv_port_slice *p = i ? &s[i - 1] : NULL;

		if (s[i].lo < DV_SLICE_POOL_LO || s[i].hi < s[i].lo || (s[i].lo - DV_SLICE_POOL_LO) % DV_SLICE_BLOCK ||
		    (s[i].hi + 1u - s[i].lo) % DV_SLICE_BLOCK)
			violation(7, "node %u: n%u's slice %u-%u of %s is not whole blocks of the pool", d->node,
				  s[i].node, s[i].lo, s[i].hi, addr_s(&s[i].addr));
		else if (p && dv_addr_eq(&p->addr, &s[i].addr) && p->hi >= s[i].lo)
			violation(7, "node %u: slices %u-%u (n%u) and %u-%u (n%u) of %s overlap", d->node, p->lo, p->hi,
				  p->node, s[i].lo, s[i].hi, s[i].node, addr_s(&s[i].addr));
		else if (members && !dv_engine_is_member(d->e, s[i].node))
			violation(7, "node %u: n%u has a slice of %s but is not a member", d->node, s[i].node,
				  addr_s(&s[i].addr));
		for (size_t k = 0; k < i; k++)
			if (dv_addr_eq(&s[k].addr, &s[i].addr) && s[k].node == s[i].node)
				violation(7, "node %u: n%u has two slices of %s", d->node, s[i].node,
					  addr_s(&s[i].addr));
	}
}

static void check_refs_present(struct dmn *d)
{
	for (size_t i = 0; i < d->n_refs; i++) {
		struct ref *r = &d->refs[i];

		if (r->protected && client_alive(d, r->r.client) && !dv_gate_ref_present(d->e, &r->r))
			violation(3,
				  "node %u: client %" PRIu64 "'s %s %s (since step %" PRIu64
				  ") is missing from its engine though its node stayed in the quorate component",
				  d->node, r->r.client, r->r.standby ? "standby for" : "hold on", addr_s(&r->r.addr),
				  r->step);
	}
}

static void check_stable(void)
{
	for (int v = 0; v < MAXVIEWS; v++) {
		uint8_t *ref = NULL, *snap = NULL;
		size_t ref_len = 0, len = 0;
		struct dmn *first = NULL;

		if (!views[v].used)
			continue;
		for (size_t k = 0; k < views[v].n; k++) {
			struct dmn *d = dmn_by_conn(views[v].conn[k]);
			struct dv_sync_info info;

			if (!d)
				continue;
			dv_sync_info(d->sync, &info);
			if (info.mismatch)
				violation(2, "node %u: stable but its digest check flags a mismatch", d->node);
			if (dv_engine_snapshot(d->e, &snap, &len) < 0) {
				violation(2, "node %u: no snapshot", d->node);
				continue;
			}
			if (!first) {
				first = d;
				ref = snap;
				ref_len = len;
				snap = NULL;
				continue;
			}
			if (len != ref_len || memcmp(ref, snap, len) != 0)
				violation(2,
					  "view %d stable but node %u's state (%zu bytes, digest %016" PRIx64
					  ") differs from node %u's (%zu bytes, digest %016" PRIx64 ")",
					  v, d->node, len, dv_sync_digest(snap, len), first->node, ref_len,
					  dv_sync_digest(ref, ref_len));
			free(snap);
			snap = NULL;
		}
		free(ref);
		if (first && !fail.failed && truth_quorate(first->node)) {
			struct owner_check oc = {.d = first};

			if (!dv_engine_quorate(first->e) || dv_engine_confirming(first->e)) {
				violation(4, "view %d stable in a quorate component but its stream says %s", v,
					  dv_engine_quorate(first->e) ? "confirming" : "not quorate");
				continue;
			}
			oc.n_m = dv_engine_members(first->e, &oc.m);
			(void)dv_engine_foreach(first->e, owner_cb, &oc);
		}
	}
	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d) {
			check_refs_present(nodes[i].d);
			check_slices(nodes[i].d, true);
		}
	/* 6: a member of a stable quorate component installs what it owns:
	 * its gate is open (nothing left waiting for a reconfirmation that
	 * nobody will send). */
	for (unsigned i = 1; i <= N && !fail.failed; i++) {
		struct dmn *d = nodes[i].d;

		if (d && d->sync && nodes[i].cs_up && truth_quorate(i) && !gate_open(d))
			violation(6, "node %u: stable in a quorate component but its gate is closed (%s)", i,
				  dv_gate_describe(&d->gate));
	}
}

static dv_nodeid_t owner_of(const struct dmn *d, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	return dv_engine_lookup(d->e, a, &v) == 0 ? v.owner : 0;
}

void owners_note(const struct dmn *d, dv_nodeid_t was[NADDR])
{
	for (int a = 0; a < NADDR; a++)
		was[a] = owner_of(d, &addrs[a]);
}

/* 8: every owner change is in the engine's list (first entry: the owner
 * before). */
void check_owner_changes(const struct dmn *d, const dv_nodeid_t was[NADDR])
{
	const struct dv_owner_change *t;
	bool complete;
	size_t n = dv_engine_owner_changes(d->e, &t, &complete);

	if (!complete) {
		violation(8, "node %u: the engine's list of owner changes is incomplete", d->node);
		return;
	}
	for (int a = 0; a < NADDR; a++) {
		dv_nodeid_t now = owner_of(d, &addrs[a]);
		size_t i;

		for (i = 0; i < n && !dv_addr_eq(&t[i].addr, &addrs[a]); i++)
			;
		if (i < n && t[i].owner_was != was[a])
			violation(8, "node %u: %s listed with owner %u before, but it was %u", d->node,
				  addr_s(&addrs[a]), t[i].owner_was, was[a]);
		else if (i == n && now != was[a])
			violation(8, "node %u: %s changed owner %u -> %u, and the engine did not list it", d->node,
				  addr_s(&addrs[a]), was[a], now);
	}
}

void check_all(void)
{
	/* 1: one owner per quorate component. */
	for (unsigned i = 1; i <= N; i++) {
		if (!nodes[i].cs_up || !comp_quorate(nodes[i].label) || !nodes[i].d)
			continue;
		for (unsigned j = i + 1; j <= N; j++) {
			if (!nodes[j].cs_up || nodes[j].label != nodes[i].label || !nodes[j].d)
				continue;
			for (int a = 0; a < NADDR; a++)
				if (nodes[i].d->installed[a] && nodes[j].d->installed[a])
					violation(1, "%s installed on nodes %u and %u of one quorate component",
						  addr_s(&addrs[a]), i, j);
		}
	}
	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d) {
			check_model(nodes[i].d);
			check_slices(nodes[i].d, false);
		}
	if (stable())
		check_stable();
}
