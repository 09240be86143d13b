/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulated CPG's queues (sim.h): each view's messages in their agreed
 * order, and what a daemon sends during one step packed into one message,
 * as cluster_corosync.c packs what one turn of its loop sends (sync.h's
 * batches).
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void queue_push(struct queue *q, const struct msg *m)
{
	if (q->n == q->cap) {
		size_t live = q->n - q->head;

		if (q->head > 0 && live < q->cap / 2) {
			memmove(q->v, q->v + q->head, live * sizeof(*q->v));
			q->n = live;
			q->head = 0;
		} else {
			q->cap = q->cap ? 2 * q->cap : 16;
			q->v = realloc(q->v, q->cap * sizeof(*q->v));
		}
	}
	q->v[q->n++] = *m;
}

size_t queue_len(const struct queue *q)
{
	return q->n - q->head;
}

void queue_free(struct queue *q)
{
	for (size_t i = q->head; i < q->n; i++)
		free(q->v[i].buf);
	free(q->v);
	*q = (struct queue){0};
}

uint64_t le(const uint8_t *p, int n)
{
	uint64_t x = 0;

	for (int i = n - 1; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

void batch_flush_all(void)
{
	for (unsigned i = 1; i <= N; i++)
		if (nodes[i].d)
			batch_flush(nodes[i].d);
}

void batch_flush(struct dmn *d)
{
	bool whole = d->sync && dv_sync_may_batch(d->sync);
	const uint8_t *buf;
	size_t len;
	struct msg m;

	while (dv_sync_batch_take(&d->batch, whole, &buf, &len)) {
		if (d->view < 0)
			continue;
		m = (struct msg){.serial = views[d->view].serial, .conn = d->conn, .node = d->node, .len = len};
		m.buf = malloc(len);
		memcpy(m.buf, buf, len);
		queue_push(&views[d->view].q, &m);
	}
}

int cpg_send(struct dmn *d, struct msg *m, const uint8_t *buf, size_t len, bool batching)
{
	if (d->old && len > 1 && buf[0] == 10)
		len = 1;
	if (batching && !d->old) {
		bool alone;

		if (dv_sync_batch_first(&d->batch, len, &alone))
			batch_flush(d);
		if (!alone)
			return dv_sync_batch_add(&d->batch, buf, len);
	}
	m->len = len;
	m->buf = malloc(len ? len : 1);
	memcpy(m->buf, buf, len);
	queue_push(&views[d->view].q, m);
	return 0;
}
