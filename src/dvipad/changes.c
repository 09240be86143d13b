/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Changes of the ownership table across one event (changes.h): the owner
 * before of the one address an event names, or of the VIPAs whose owner
 * the engine changed (dv_engine_owner_changes), against its view after.
 */
#include "changes.h"

#include <errno.h>
#include <stdlib.h>

const char *dv_change_name(enum dv_change_kind k)
{
	switch (k) {
	case DV_CHANGE_ACTIVATION:
		return "activation";
	case DV_CHANGE_RELEASE:
		return "release";
	case DV_CHANGE_TAKEOVER:
		return "takeover";
	case DV_CHANGE_MOVE:
		return "move";
	case DV_CHANGE_GRANT:
		return "grant";
	case DV_CHANGE_QUORUM:
		return "quorum";
	case DV_CHANGE_MEMBERSHIP:
		return "membership";
	}
	return "unknown";
}

/* The one address ev is about, or NULL. */
static const struct dv_addr *event_addr(const struct dv_event *ev)
{
	switch (ev->type) {
	case DV_EV_CLAIM:
		return &ev->claim.addr;
	case DV_EV_RELEASE:
		return &ev->release.addr;
	case DV_EV_STANDBY:
		return &ev->standby.addr;
	case DV_EV_ADDR_STATE:
		return &ev->addr_state.addr;
	case DV_EV_MOVE:
		return &ev->move.addr;
	case DV_EV_DEFINE_STATE:
		return &ev->define_state.addr;
	default:
		return NULL;
	}
}

static int note(struct dv_changes *ch, const struct dv_addr *a, dv_nodeid_t owner)
{
	if (ch->n == ch->cap) {
		size_t cap = ch->cap ? ch->cap * 2 : 16;
		struct dv_owner_was *v = realloc(ch->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ch->v = v;
		ch->cap = cap;
	}
	ch->v[ch->n++] = (struct dv_owner_was){.addr = *a, .owner = owner};
	return 0;
}

int dv_changes_before(struct dv_changes *ch, const struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = event_addr(ev);
	struct dv_vipa_info v;

	ch->n = 0;
	ch->quorate = dv_engine_quorate(e);
	if (a)
		return note(ch, a, dv_engine_lookup(e, a, &v) == 0 ? v.owner : 0);
	return 0;
}

/* A node took the address because it asked for it: a claim (MOVEABLE) or
 * the operator's move. Anything else that changes a living owner is a
 * takeover: the owner left or its holders ended, a higher rank came back. */
static bool asked_for(const struct dv_event *ev, dv_nodeid_t to)
{
	return ev->type == DV_EV_MOVE || (ev->type == DV_EV_CLAIM && ev->node == to);
}

static void compare(const struct dv_event *ev, const struct dv_addr *a, dv_nodeid_t from,
		    const struct dv_vipa_info *now, void (*cb)(void *ud, const struct dv_change *c), void *ud)
{
	struct dv_change c = {.addr = *a, .from = from};

	c.to = now ? now->owner : 0;
	if (c.from == c.to)
		return;
	c.origin = now ? now->origin : DV_ORIGIN_NONE;
	c.reason = now ? now->reason : NULL;
	if (!c.from)
		c.kind = DV_CHANGE_ACTIVATION;
	else if (!c.to)
		c.kind = DV_CHANGE_RELEASE;
	else
		c.kind = asked_for(ev, c.to) ? DV_CHANGE_MOVE : DV_CHANGE_TAKEOVER;
	cb(ud, &c);
}

static int was_cmp(const void *x, const void *y)
{
	const struct dv_owner_was *a = x, *b = y;
	int c = dv_addr_cmp(&a->addr, &b->addr);

	return c ? c : (a->order > b->order) - (a->order < b->order);
}

/* An event that names no address (membership, quorum, a client gone): the
 * VIPAs whose owner the engine changed, with their owners before, in
 * address order; an address listed twice (removed, made again) had the
 * first entry's. */
static void owner_changes(struct dv_changes *ch, const struct dv_engine *e, const struct dv_event *ev,
			  void (*cb)(void *ud, const struct dv_change *c), void *ud)
{
	const struct dv_owner_change *t;
	bool complete;
	size_t n = dv_engine_owner_changes(e, &t, &complete);

	ch->n = 0;
	if (!complete)
		return; /* out of memory: not reported */
	for (size_t i = 0; i < n; i++) {
		if (note(ch, &t[i].addr, t[i].owner_was) < 0)
			return;
		ch->v[ch->n - 1].order = (uint32_t)i;
	}
	if (ch->n > 1)
		qsort(ch->v, ch->n, sizeof(*ch->v), was_cmp);
	for (size_t i = 0; i < ch->n; i++) {
		struct dv_vipa_info v;

		if (i > 0 && dv_addr_eq(&ch->v[i].addr, &ch->v[i - 1].addr))
			continue;
		compare(ev, &ch->v[i].addr, ch->v[i].owner, dv_engine_lookup(e, &ch->v[i].addr, &v) == 0 ? &v : NULL,
			cb, ud);
	}
}

void dv_changes_after(struct dv_changes *ch, const struct dv_engine *e, const struct dv_event *ev,
		      const struct dv_effects *fx, void (*cb)(void *ud, const struct dv_change *c), void *ud)
{
	if (!event_addr(ev)) {
		owner_changes(ch, e, ev, cb, ud);
	} else if (ch->n == 1) {
		struct dv_vipa_info v;
		bool known = dv_engine_lookup(e, &ch->v[0].addr, &v) == 0;

		compare(ev, &ch->v[0].addr, ch->v[0].owner, known ? &v : NULL, cb, ud);
	}
	for (size_t i = 0; fx && i < fx->n; i++) {
		const struct dv_effect *f = &fx->v[i];

		if (f->type == DV_FX_NOTIFY && f->what == DV_NOTIFY_GRANTED)
			cb(ud, &(struct dv_change){.kind = DV_CHANGE_GRANT,
						   .addr = f->addr,
						   .to = dv_engine_self(e),
						   .reason = f->reason,
						   .client = f->client});
	}
	if (ev->type == DV_EV_QUORUM && dv_engine_quorate(e) != ch->quorate)
		cb(ud, &(struct dv_change){.kind = DV_CHANGE_QUORUM, .quorate = dv_engine_quorate(e)});
	if (ev->type == DV_EV_MEMBERSHIP)
		cb(ud, &(struct dv_change){.kind = DV_CHANGE_MEMBERSHIP, .quorate = dv_engine_quorate(e)});
	ch->n = 0;
}

void dv_changes_free(struct dv_changes *ch)
{
	free(ch->v);
	*ch = (struct dv_changes){0};
}
