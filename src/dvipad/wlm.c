/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Spare CPU and accept-queue headroom as weights (wlm.h).
 */
#include "wlm.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "maglev.h"

void dv_wlm_init(struct dv_wlm *w, const char *stat_path)
{
	*w = (struct dv_wlm){.stat_path = stat_path, .weight = DV_AS_WEIGHT_MAX};
}

int dv_wlm_parse(const char *text, struct dv_wlm_jiffies *ret)
{
	/* user nice system idle iowait irq softirq steal; guest and
	 * guest_nice are in user and nice already. */
	uint64_t v[8] = {0};
	int n = 0;

	if (strncmp(text, "cpu ", 4) != 0)
		return -EBADMSG;
	if (sscanf(text + 4,
		   "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 "%n",
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &n) < 4)
		return -EBADMSG;
	*ret = (struct dv_wlm_jiffies){0};
	for (size_t i = 0; i < 8; i++) {
		if (ret->total + v[i] < ret->total)
			return -EBADMSG;
		ret->total += v[i];
	}
	ret->spare = v[3] + v[4];
	return ret->spare > ret->total ? -EBADMSG : 0;
}

bool dv_wlm_update(struct dv_wlm *w, const struct dv_wlm_jiffies *j, uint64_t now_ms)
{
	double share, want;
	unsigned old = w->weight;

	if (!w->have_last || j->total < w->last.total || j->spare < w->last.spare) {
		/* The first reading, or counters that went back: start over. */
		w->last = *j;
		w->last_ms = now_ms;
		w->have_last = true;
		return false;
	}
	if (now_ms - w->last_ms < DV_WLM_WINDOW_MS || j->total == w->last.total)
		return false;
	share = (double)(j->spare - w->last.spare) / (double)(j->total - w->last.total);
	if (share > 1)
		share = 1;
	w->spare = w->have_spare ? (w->spare + share) / 2 : share;
	w->have_spare = true;
	w->last = *j;
	w->last_ms = now_ms;
	want = 1 + (DV_AS_WEIGHT_MAX - 1) * w->spare;
	/* Three quarters of a step away: round(want) differs, and the weight
	 * does not flap on a value near a half step. */
	if ((want > w->weight + 0.75 || want < w->weight - 0.75) &&
	    (!w->changed_ms || now_ms - w->changed_ms >= DV_WLM_HOLD_MS)) {
		w->weight = (unsigned)(want + 0.5);
		w->changed_ms = now_ms ? now_ms : 1;
	}
	return w->weight != old;
}

int dv_wlm_sample(struct dv_wlm *w, uint64_t now_ms)
{
	char buf[512];
	struct dv_wlm_jiffies j;
	ssize_t n;
	int fd, r;

	if (w->have_last && now_ms - w->last_ms < DV_WLM_WINDOW_MS)
		return 0;
	fd = open(w->stat_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	buf[n] = '\0';
	r = dv_wlm_parse(buf, &j);
	if (r < 0)
		return r;
	dv_wlm_update(w, &j, now_ms);
	return 0;
}

unsigned dv_wlm_weight(const struct dv_wlm *w)
{
	return w->weight;
}

unsigned dv_wlm_server_weight(unsigned cpu_weight, uint64_t queued, uint64_t backlog)
{
	uint64_t free_q = queued < backlog ? backlog - queued : 0;
	uint64_t v;

	if (backlog == 0)
		return 1;
	v = (cpu_weight * free_q + backlog - 1) / backlog;
	return v < 1 ? 1 : v > DV_AS_WEIGHT_MAX ? DV_AS_WEIGHT_MAX : (unsigned)v;
}

unsigned dv_wlm_held(struct dv_wlm_hold *h, unsigned want, uint64_t now_ms)
{
	if (!h->weight || (want != h->weight && now_ms - h->changed_ms >= DV_WLM_HOLD_MS)) {
		h->weight = want;
		h->changed_ms = now_ms;
	}
	return h->weight;
}

_Static_assert(DV_WLM_MAX_TARGETS == DV_ENGINE_MAX_NODES, "a target per node");

#define ACTIVE_GAIN 4.0 /* the most a share moves from the weight's, either way */
/* Added to both counts: a connection or two in flight at a count (every
 * short connection is open for a moment) must not swing the shares. */
#define ACTIVE_DAMP 4.0

void dv_wlm_active(const unsigned *weight, const uint64_t *active, size_t n, uint32_t m, uint32_t *ret_count)
{
	double raw[DV_WLM_MAX_TARGETS], sum = 0;
	uint64_t total_a = 0, total_w = 0;
	uint32_t given = 0, n_ready = 0;

	for (size_t k = 0; k < n && k < DV_WLM_MAX_TARGETS; k++)
		if (weight[k]) {
			total_a += active[k];
			total_w += weight[k];
			n_ready++;
		}
	for (size_t k = 0; k < n; k++) {
		double f = 1;

		ret_count[k] = 0;
		raw[k] = 0;
		if (k >= DV_WLM_MAX_TARGETS || !weight[k])
			continue;
		if (total_a) {
			double fair = (double)total_a * weight[k] / (double)total_w;

			f = (fair + ACTIVE_DAMP) / ((double)active[k] + ACTIVE_DAMP);
			f = f > ACTIVE_GAIN ? ACTIVE_GAIN : f < 1 / ACTIVE_GAIN ? 1 / ACTIVE_GAIN : f;
		}
		raw[k] = weight[k] * f;
		sum += raw[k];
	}
	if (!n_ready)
		return;
	/* By share, the remainders to the largest; then a slot for every ready
	 * target that got none, from the largest count (if m allows). */
	for (size_t k = 0; k < n && k < DV_WLM_MAX_TARGETS; k++) {
		double want;

		if (!weight[k])
			continue;
		want = raw[k] / sum * m;
		ret_count[k] = (uint32_t)want;
		raw[k] = want - (uint32_t)want;
		given += ret_count[k];
	}
	while (given < m) {
		size_t best = SIZE_MAX;

		for (size_t k = 0; k < n && k < DV_WLM_MAX_TARGETS; k++)
			if (weight[k] && (best == SIZE_MAX || raw[k] > raw[best]))
				best = k;
		ret_count[best]++;
		raw[best] = -1;
		given++;
	}
	for (size_t k = 0; k < n && k < DV_WLM_MAX_TARGETS && m >= n_ready; k++) {
		size_t big = 0;

		if (!weight[k] || ret_count[k])
			continue;
		for (size_t j = 1; j < n && j < DV_WLM_MAX_TARGETS; j++)
			if (ret_count[j] > ret_count[big])
				big = j;
		ret_count[big]--;
		ret_count[k]++;
	}
}

void dv_wlm_active_slots(const uint32_t *count, size_t n, uint32_t m, uint32_t *slots)
{
	uint32_t j = 0;

	for (size_t k = 0; k < n; k++)
		for (uint32_t c = 0; c < count[k] && j < m; c++)
			slots[j++] = (uint32_t)k;
	while (j < m)
		slots[j++] = DV_MAGLEV_NONE;
}
