/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The ring lease (fence.h). Pure; tested by test_fence.c. */
#include "fence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000ULL
/* A token rotation and the removal of a few addresses, beyond the
 * heartbeat periods of the bound in fence.h. */
#define SLACK_US (100 * MS)
#define PERIOD_MIN_US (10 * MS)

void dv_fence_init(struct dv_fence *f, uint32_t token_ms, uint32_t consensus_ms, uint64_t now)
{
	uint64_t period = token_ms * MS / 10;

	dv_fence_clear(f);
	if (period < PERIOD_MIN_US)
		period = PERIOD_MIN_US;
	f->period_us = period;
	f->lease_us = (uint64_t)token_ms * MS + (uint64_t)consensus_ms * MS + token_ms * MS / 2;
	f->margin_us = 4 * period + SLACK_US;
	f->last_handed = now;
}

void dv_fence_clear(struct dv_fence *f)
{
	free(f->inflight);
	memset(f, 0, sizeof(*f));
}

int dv_fence_handed(struct dv_fence *f, uint64_t now)
{
	uint64_t t = f->blocked_since ? f->blocked_since : now;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		uint64_t *v = malloc(cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < f->n; i++)
			v[i] = f->inflight[(f->head + i) % f->cap];
		free(f->inflight);
		f->inflight = v;
		f->cap = cap;
		f->head = 0;
	}
	/* A message that waited for flow control counts from its first
	 * refusal: the ring was not shown whole since then either. */
	f->inflight[(f->head + f->n) % f->cap] = t;
	f->n++;
	f->blocked_since = 0;
	f->last_handed = now;
	return 0;
}

void dv_fence_refused(struct dv_fence *f, uint64_t now)
{
	if (!f->blocked_since)
		f->blocked_since = now;
	f->last_handed = now;
}

void dv_fence_returned(struct dv_fence *f)
{
	if (f->n == 0)
		return; /* handed over before this lease began */
	f->proof = f->inflight[f->head];
	f->head = (f->head + 1) % f->cap;
	f->n--;
}

bool dv_fence_beat_due(const struct dv_fence *f, uint64_t now)
{
	return now - f->last_handed >= f->period_us;
}

bool dv_fence_check(struct dv_fence *f, uint64_t now, bool *changed)
{
	uint64_t oldest = 0;
	bool lapsed;

	if (f->n)
		oldest = f->inflight[f->head];
	if (f->blocked_since && (!oldest || f->blocked_since < oldest))
		oldest = f->blocked_since;
	lapsed = oldest && now > oldest && now - oldest > f->lease_us;
	*changed = lapsed != f->lapsed;
	f->lapsed = lapsed;
	return lapsed;
}

uint64_t dv_fence_takeover_at(const struct dv_fence *f, uint64_t now)
{
	return (f->proof ? f->proof : now) + f->lease_us + f->margin_us;
}
