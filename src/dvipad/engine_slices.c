/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SYSPLEXPORTS port slices (engine.h, DV_SLICE_*): which node may send from
 * which ports of a distributed VIPA. Replicated like the rest of the engine,
 * so that every node agrees which node a reply to a port belongs to; the
 * distributor steers the replies by it (dist.c).
 *
 * The engine does not know which addresses are distributed (that is each
 * node's configuration): a node asks for the addresses it distributes with
 * SYSPLEXPORTS and gives a slice back when its configuration drops it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "wire.h"

static int slice_cmp(const struct dv_port_slice *x, const struct dv_port_slice *y)
{
	int c = dv_addr_cmp(&x->addr, &y->addr);

	return c ? c : (x->lo > y->lo) - (x->lo < y->lo);
}

/* Index of the first slice of a (or where it would go). */
static size_t first_of(const struct dv_engine *e, const struct dv_addr *a)
{
	size_t lo = 0, hi = e->n_slices;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (dv_addr_cmp(&e->slices[mid].addr, a) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static ssize_t slice_find(const struct dv_engine *e, const struct dv_addr *a, dv_nodeid_t node)
{
	for (size_t i = first_of(e, a); i < e->n_slices && dv_addr_eq(&e->slices[i].addr, a); i++)
		if (e->slices[i].node == node)
			return (ssize_t)i;
	return -1;
}

static void slice_del(struct dv_engine *e, size_t i)
{
	memmove(&e->slices[i], &e->slices[i + 1], (e->n_slices - i - 1) * sizeof(*e->slices));
	e->n_slices--;
}

/*
 * A free run of a's pool for `blocks` blocks: the first that fits, else the
 * largest (at least one block). false when every block is taken.
 */
static bool free_run(const struct dv_engine *e, const struct dv_addr *a, unsigned blocks, uint32_t *ret_lo,
		     uint32_t *ret_n)
{
	uint32_t want = blocks * DV_SLICE_BLOCK, next = DV_SLICE_POOL_LO, best_lo = 0, best_n = 0;
	size_t i = first_of(e, a);

	for (;; i++) {
		bool last = i >= e->n_slices || !dv_addr_eq(&e->slices[i].addr, a);
		uint32_t end = last ? DV_SLICE_POOL_HI + 1u : e->slices[i].lo, gap = end > next ? end - next : 0;

		if (gap >= want) {
			*ret_lo = next;
			*ret_n = want;
			return true;
		}
		if (gap > best_n) {
			best_lo = next;
			best_n = gap;
		}
		if (last)
			break;
		next = (uint32_t)e->slices[i].hi + 1;
	}
	*ret_lo = best_lo;
	*ret_n = best_n;
	return best_n >= DV_SLICE_BLOCK;
}

int ev_port_slice(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->port_slice.addr;
	ssize_t have = slice_find(e, a, ev->node);
	struct dv_port_slice s = {.addr = *a, .node = ev->node};
	uint32_t lo, n;
	size_t at;

	if (ev->port_slice.blocks == 0) {
		if (have >= 0)
			slice_del(e, (size_t)have);
		return 0;
	}
	/* A non-member's request (it left while the message was on its
	 * way) would outlive the pruning of its slices. */
	if (have >= 0 || !node_is_member(e, ev->node) || e->n_slices >= DV_SLICE_MAX ||
	    !free_run(e, a, ev->port_slice.blocks, &lo, &n))
		return 0;
	if (engine_grow((void **)&e->slices, &e->cap_slices, e->n_slices + 1, sizeof(*e->slices)) < 0)
		return -ENOMEM;
	s.lo = (uint16_t)lo;
	s.hi = (uint16_t)(lo + n - 1);
	at = first_of(e, a);
	while (at < e->n_slices && slice_cmp(&e->slices[at], &s) < 0)
		at++;
	memmove(&e->slices[at + 1], &e->slices[at], (e->n_slices - at) * sizeof(*e->slices));
	e->slices[at] = s;
	e->n_slices++;
	return 0;
}

void slices_drop_nonmembers(struct dv_engine *e)
{
	size_t k = 0;

	for (size_t i = 0; i < e->n_slices; i++)
		if (node_is_member(e, e->slices[i].node))
			e->slices[k++] = e->slices[i];
	e->n_slices = k;
}

bool dv_engine_port_slice(const struct dv_engine *e, const struct dv_addr *a, dv_nodeid_t node,
			  struct dv_port_slice *ret)
{
	ssize_t i = e && a ? slice_find(e, a, node) : -1;

	if (i < 0)
		return false;
	if (ret)
		*ret = e->slices[i];
	return true;
}

size_t dv_engine_port_slices(const struct dv_engine *e, const struct dv_port_slice **ret)
{
	*ret = e->slices;
	return e->n_slices;
}

/* ---- state transfer: u32 n, n x (addr, u32 node, u16 lo, u16 hi), sorted ---- */

void slices_snap(struct dv_wbuf *w, const struct dv_engine *e)
{
	dv_w_u32(w, (uint32_t)e->n_slices);
	for (size_t i = 0; i < e->n_slices; i++) {
		dv_w_addr(w, &e->slices[i].addr);
		dv_w_u32(w, e->slices[i].node);
		dv_w_u16(w, e->slices[i].lo);
		dv_w_u16(w, e->slices[i].hi);
	}
}

static bool slice_ok(const struct dv_engine *t, const struct dv_port_slice *s, const struct dv_port_slice *prev)
{
	if (s->node == 0 || !node_is_member(t, s->node) || s->lo < DV_SLICE_POOL_LO || s->hi < s->lo ||
	    (s->lo - DV_SLICE_POOL_LO) % DV_SLICE_BLOCK || (s->hi + 1u - s->lo) % DV_SLICE_BLOCK)
		return false;
	if (!prev || !dv_addr_eq(&prev->addr, &s->addr))
		return !prev || dv_addr_cmp(&prev->addr, &s->addr) < 0;
	/* Same address: after the previous one, not overlapping, and one a
	 * node. */
	if (prev->hi >= s->lo)
		return false;
	for (size_t i = first_of(t, &s->addr); i < t->n_slices; i++)
		if (t->slices[i].node == s->node)
			return false;
	return true;
}

int slices_restore(struct dv_engine *t, struct dv_rbuf *r)
{
	size_t n = dv_r_count(r, DV_SLICE_MAX, DV_WIRE_ADDR_MIN + 8);

	if (r->bad)
		return -EBADMSG;
	if (n && engine_grow((void **)&t->slices, &t->cap_slices, n, sizeof(*t->slices)) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct dv_port_slice s;

		dv_r_addr(r, &s.addr);
		s.node = dv_r_u32(r);
		s.lo = dv_r_u16(r);
		s.hi = dv_r_u16(r);
		if (r->bad || !slice_ok(t, &s, i ? &t->slices[i - 1] : NULL))
			return -EBADMSG;
		t->slices[t->n_slices++] = s;
	}
	return 0;
}
