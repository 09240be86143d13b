/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CLUSTER NONE: the ordered stream of a single node is its own events, in
 * the order they are submitted. */
#include <errno.h>
#include <stdlib.h>

#include "cluster.h"

static int solo_submit(struct dv_cluster *c, const struct dv_event *ev)
{
	c->ops->deliver(c->ud, ev);
	return 0;
}

static void solo_free(struct dv_cluster *c)
{
	free(c);
}

static const struct dv_cluster_vtable solo_vtable = {
	.submit = solo_submit,
	.free = solo_free,
};

int dv_cluster_solo_new(const struct dv_cluster_ops *ops, void *ud, struct dv_cluster **ret)
{
	struct dv_cluster *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->vt = &solo_vtable;
	c->ops = ops;
	c->ud = ud;
	c->self = 1;
	*ret = c;
	return 0;
}
