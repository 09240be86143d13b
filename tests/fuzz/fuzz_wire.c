/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the cluster wire format and state transfer: what a
 * node does with bytes from a peer, read three ways.
 *
 *  1. As an event: if it decodes, it encodes back to the same bytes (the
 *     format is canonical), decodes again to the same event, and the engine
 *     takes it (never -EINVAL: the decoder checks at least what the engine
 *     does).
 *  2. As a snapshot, restored into a fresh engine: if taken, a snapshot of
 *     that engine gives the same bytes.
 *  3. The same with the length field and the checksum made right, so that
 *     inputs get past the checksum to the checks behind it. A restored
 *     engine is then driven with events made from its own state, and what
 *     it ends in must again be a snapshot that restores: restore accepts
 *     only states the engine can go on from.
 *
 * Build with -Dfuzz=true (clang); run: ./fuzz_wire -max_len=8192 corpus/
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SNAP_LENGTH_OFF 8
#define SNAP_MIN 20 /* header and checksum */
#define MAX_ADDRS 8

static size_t n_local;

/* The effects an engine returned are well-formed; they are then dropped. */
static void check_effects(struct dv_effects *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		const struct dv_effect *f = &fx->v[i];

		switch (f->type) {
		case DV_FX_LOCAL:
			n_local++;
			break;
		case DV_FX_REPLY:
		case DV_FX_NOTIFY:
			if (!memchr(f->reason, 0, sizeof(f->reason)))
				abort();
			break;
		default:
			abort();
		}
	}
	dv_effects_free(fx);
}

static bool same_event(const struct dv_event *a, const struct dv_event *b)
{
	uint8_t *x = NULL, *y = NULL;
	size_t nx = 0, ny = 0;
	bool same;

	/* Field by field would repeat the decoder; the canonical bytes say the
	 * same. */
	if (dv_event_encode(a, &x, &nx) < 0 || dv_event_encode(b, &y, &ny) < 0)
		abort();
	same = nx == ny && memcmp(x, y, nx) == 0 && a->type == b->type && a->node == b->node &&
	       a->time_ms == b->time_ms;
	free(x);
	free(y);
	return same;
}

static void fuzz_event(const uint8_t *buf, size_t len)
{
	struct dv_event ev, ev2;
	struct dv_effects fx = {0};
	void *st = NULL, *st2 = NULL;
	uint8_t *out = NULL;
	size_t n = 0;
	struct dv_engine *e;

	if (dv_event_decode(buf, len, &ev, &st) < 0) {
		if (st)
			abort();
		return;
	}
	if (dv_event_encode(&ev, &out, &n) < 0 || n != len || memcmp(out, buf, len) != 0)
		abort();
	if (dv_event_decode(out, n, &ev2, &st2) < 0 || !same_event(&ev, &ev2))
		abort();
	e = dv_engine_new(ev.node ? ev.node : 1);
	if (!e)
		abort();
	if (dv_engine_apply(e, &ev, &fx) == -EINVAL)
		abort();
	check_effects(&fx);
	dv_engine_free(e);
	free(out);
	free(st);
	free(st2);
}

/* Snapshot e; it must restore into a fresh engine and give the same bytes
 * again. */
static void check_snapshot(struct dv_engine *e)
{
	uint8_t *s = NULL, *s2 = NULL;
	size_t n = 0, n2 = 0;
	struct dv_effects fx = {0};
	struct dv_engine *f;

	if (dv_engine_snapshot(e, &s, &n) < 0)
		abort();
	f = dv_engine_new(dv_engine_self(e) + 1);
	if (!f || dv_engine_restore(f, s, n, &fx) < 0 || dv_engine_snapshot(f, &s2, &n2) < 0)
		abort();
	check_effects(&fx);
	if (n != n2 || memcmp(s, s2, n) != 0)
		abort();
	dv_engine_free(f);
	free(s);
	free(s2);
}

struct seen {
	size_t n;
	struct dv_addr addrs[MAX_ADDRS];
	uint64_t clients[MAX_ADDRS];
	dv_nodeid_t nodes[MAX_ADDRS];
};

static int seen_cb(void *ud, const struct dv_vipa_info *v)
{
	struct seen *s = ud;

	s->addrs[s->n] = v->addr;
	s->clients[s->n] = v->n_holds ? v->holds[0].client : v->n_standbys ? v->standbys[0].client : 0;
	s->nodes[s->n] = v->owner ? v->owner : v->n_standbys ? v->standbys[0].node : 1;
	return ++s->n == MAX_ADDRS;
}

static void apply(struct dv_engine *e, const struct dv_event *ev)
{
	struct dv_effects fx = {0};
	int r = dv_engine_apply(e, ev, &fx);

	check_effects(&fx);
	if (r < 0 && r != -ENOSPC && r != -ENOMEM)
		abort();
}

/* Events about what the engine has: claims from another node, standbys,
 * reports, releases, clients going, the membership shrinking and coming
 * back, quorum lost and regained. */
static void drive(struct dv_engine *e)
{
	struct seen s = {0};
	const dv_nodeid_t *m;
	dv_nodeid_t members[DV_ENGINE_MAX_NODES + 1];
	size_t n_members = dv_engine_members(e, &m);
	uint64_t t = 1u << 30;

	if (n_members)
		memcpy(members, m, n_members * sizeof(*m));
	if (dv_engine_foreach(e, seen_cb, &s) < 0)
		abort();
	for (size_t i = 0; i < s.n; i++) {
		dv_nodeid_t other = n_members ? members[i % n_members] : 2;
		struct dv_event ev = {.type = DV_EV_CLAIM, .node = other, .time_ms = t++};

		ev.claim.client = 1;
		ev.claim.addr = s.addrs[i];
		ev.claim.kind = (enum dv_kind)(1 + i % 3);
		apply(e, &ev);
		ev = (struct dv_event){.type = DV_EV_STANDBY, .node = s.nodes[i], .time_ms = t++};
		ev.standby.client = 2;
		ev.standby.addr = s.addrs[i];
		ev.standby.rank = 1 + (unsigned)i;
		ev.standby.kind = i % 2 ? DV_KIND_SOCKET : DV_KIND_API;
		apply(e, &ev);
		ev = (struct dv_event){.type = DV_EV_ADDR_STATE, .node = s.nodes[i], .time_ms = t++};
		ev.addr_state.addr = s.addrs[i];
		ev.addr_state.flags = (unsigned)i % 8;
		apply(e, &ev);
		ev = (struct dv_event){.type = DV_EV_RELEASE, .node = other, .time_ms = t++};
		ev.release.client = 1;
		ev.release.addr = s.addrs[i];
		ev.release.kind = (enum dv_kind)(1 + i % 3);
		apply(e, &ev);
		ev = (struct dv_event){.type = DV_EV_CLIENT_GONE, .node = s.nodes[i], .time_ms = t++};
		ev.client_gone.client = s.clients[i];
		apply(e, &ev);
	}
	{
		struct dv_event ev = {.type = DV_EV_QUORUM, .time_ms = t++};

		apply(e, &ev);
		ev.quorum.quorate = true;
		apply(e, &ev);
		ev = (struct dv_event){.type = DV_EV_MEMBERSHIP, .time_ms = t++};
		ev.membership.n = n_members ? n_members - 1 : 0;
		ev.membership.nodes = members + 1;
		apply(e, &ev);
		ev.membership.n = n_members;
		ev.membership.nodes = members;
		apply(e, &ev);
	}
}

static void fuzz_snapshot(uint8_t *buf, size_t len, bool drive_it)
{
	struct dv_engine *e = dv_engine_new(1);
	struct dv_effects fx = {0};
	uint8_t *out = NULL;
	size_t n = 0;
	int r;

	if (!e)
		abort();
	r = dv_engine_restore(e, buf, len, &fx);
	check_effects(&fx);
	if (r == 0) {
		if (dv_engine_snapshot(e, &out, &n) < 0 || n != len || memcmp(out, buf, len) != 0)
			abort();
		free(out);
		if (drive_it) {
			drive(e);
			check_snapshot(e);
		}
	}
	dv_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	/* A private copy of exactly size bytes: reads past the end are caught
	 * even when libFuzzer's buffer is larger. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);

	fuzz_event(copy, size);
	fuzz_snapshot(copy, size, false);
	if (size >= SNAP_MIN) {
		uint32_t crc;

		for (int i = 0; i < 8; i++)
			copy[SNAP_LENGTH_OFF + i] = (uint8_t)((uint64_t)size >> (8 * i));
		crc = dv_crc32(copy, size - 4);
		for (int i = 0; i < 4; i++)
			copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
		fuzz_snapshot(copy, size, true);
	}
	free(copy);
	return 0;
}
