/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Questions asked of a parsed configuration (conf.h): the daemon's, once
 * conf_parse.c has built it. */
#include "conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

const struct dv_conf_range *dv_conf_find_range(const struct dv_conf *c, const struct dv_addr *a)
{
	/* Sorted most specific first: the first match is the most specific. */
	for (size_t i = 0; i < c->n_ranges; i++)
		if (!c->ranges[i].deleted && dv_prefix_contains(&c->ranges[i].prefix, a))
			return &c->ranges[i];
	return NULL;
}

static int define_key_cmp(const void *key, const void *elem)
{
	const struct dv_conf_define *d = elem;

	return dv_addr_cmp(key, &d->addr);
}

const struct dv_conf_define *dv_conf_find_define(const struct dv_conf *c, const struct dv_addr *a)
{
	if (!c->n_defines)
		return NULL;
	return bsearch(a, c->defines, c->n_defines, sizeof(*c->defines), define_key_cmp);
}

bool dv_conf_range_allows(const struct dv_conf_range *r, uid_t uid, const gid_t *gids, size_t n_gids)
{
	if (uid == 0)
		return true;
	if (!r)
		return false;
	for (size_t i = 0; i < r->n_users; i++)
		if (r->uids[i] == uid)
			return true;
	for (size_t i = 0; i < n_gids; i++)
		for (size_t j = 0; j < r->n_groups; j++)
			if (r->gids[j] == gids[i])
				return true;
	return false;
}

unsigned dv_conf_check_local(const struct dv_conf *c, const struct dv_addr *local, size_t n_local, FILE *errf)
{
	char b1[DV_ADDR_STRLEN], b2[DV_ADDR_STRLEN];
	unsigned n = 0;

	for (size_t i = 0; i < c->n_ranges; i++) {
		const struct dv_conf_range *r = &c->ranges[i];

		if (r->deleted)
			continue;
		for (size_t j = 0; j < n_local; j++) {
			if (!dv_prefix_contains(&r->prefix, &local[j]))
				continue;
			n++;
			if (errf)
				fprintf(errf,
					"%s:%u: range %s covers address %s of interface %s, which is not a VIPA\n",
					c->file, r->line, dv_prefix_fmt(&r->prefix, b1), dv_addr_fmt(&local[j], b2),
					c->interface);
		}
	}
	for (size_t i = 0; i < c->n_defines; i++) {
		const struct dv_conf_define *d = &c->defines[i];

		for (size_t j = 0; j < n_local; j++) {
			if (!dv_addr_eq(&d->addr, &local[j]))
				continue;
			n++;
			if (errf)
				fprintf(errf,
					"%s:%u: %s address %s is an address of interface %s, which is not a VIPA\n",
					c->file, d->line, d->rank == 255 ? "VIPADEFINE" : "VIPABACKUP",
					dv_addr_fmt(&d->addr, b1), c->interface);
		}
	}
	return n;
}

int dv_conf_routed(const struct dv_conf *c, struct dv_prefix **ret)
{
	struct dv_prefix *p = NULL;
	int n = 0;

	*ret = NULL;
	for (size_t i = 0; i < c->n_ranges; i++)
		n += c->ranges[i].routed && !c->ranges[i].deleted;
	if (n == 0)
		return 0;
	p = calloc((size_t)n, sizeof(*p));
	if (!p)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < c->n_ranges; i++)
		if (c->ranges[i].routed && !c->ranges[i].deleted)
			p[n++] = c->ranges[i].prefix;
	*ret = p;
	return n;
}
