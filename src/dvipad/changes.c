/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Changes of the ownership table across one event (changes.h): the owners
 * before, noted in address order, merged with the engine's walk after,
 * which is in address order too.
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

static int note_cb(void *ud, const struct dv_vipa_info *v)
{
	return note(ud, &v->addr, v->owner);
}

int dv_changes_before(struct dv_changes *ch, const struct dv_engine *e, const struct dv_event *ev, bool scan_all)
{
	const struct dv_addr *a = event_addr(ev);
	struct dv_vipa_info v;
	int r;

	ch->n = 0;
	ch->all = false;
	ch->quorate = dv_engine_quorate(e);
	if (a)
		return note(ch, a, dv_engine_lookup(e, a, &v) == 0 ? v.owner : 0);
	if (!scan_all)
		return 0;
	r = dv_engine_foreach(e, note_cb, ch);
	if (r < 0) {
		ch->n = 0;
		return r;
	}
	ch->all = true;
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

struct merge {
	const struct dv_changes *ch;
	size_t i;
	const struct dv_event *ev;
	void (*cb)(void *ud, const struct dv_change *c);
	void *ud;
};

/* Noted VIPAs the engine no longer has before a (gone: owner none). */
static void merge_gone_before(struct merge *m, const struct dv_addr *a)
{
	while (m->i < m->ch->n && (!a || dv_addr_cmp(&m->ch->v[m->i].addr, a) < 0)) {
		compare(m->ev, &m->ch->v[m->i].addr, m->ch->v[m->i].owner, NULL, m->cb, m->ud);
		m->i++;
	}
}

static int merge_cb(void *ud, const struct dv_vipa_info *v)
{
	struct merge *m = ud;
	dv_nodeid_t from = 0;

	merge_gone_before(m, &v->addr);
	if (m->i < m->ch->n && dv_addr_cmp(&m->ch->v[m->i].addr, &v->addr) == 0)
		from = m->ch->v[m->i++].owner;
	compare(m->ev, &v->addr, from, v, m->cb, m->ud);
	return 0;
}

void dv_changes_after(struct dv_changes *ch, const struct dv_engine *e, const struct dv_event *ev,
		      const struct dv_effects *fx, void (*cb)(void *ud, const struct dv_change *c), void *ud)
{
	if (ch->all) {
		struct merge m = {.ch = ch, .ev = ev, .cb = cb, .ud = ud};

		(void)dv_engine_foreach(e, merge_cb, &m);
		merge_gone_before(&m, NULL);
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
	ch->all = false;
}

void dv_changes_free(struct dv_changes *ch)
{
	free(ch->v);
	*ch = (struct dv_changes){0};
}
