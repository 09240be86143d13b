/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Spare CPU and accept-queue headroom as weights (wlm.h).
 */
#include "wlm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

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
	if ((want >= w->weight + 1.0 || want <= w->weight - 1.0) &&
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
