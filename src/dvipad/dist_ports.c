/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SYSPLEXPORTS on this node (dist_int.h): it asks the engine for a slice
 * of a distributed VIPA's ports while it sends from the address, gives it
 * back when it no longer does, and tells programs their ports
 * (SOURCE_PORTS).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_int.h"
#include "log.h"

/* SYSPLEXPORTS: the blocks of ports a node asks for (1,024 ports: as many
 * concurrent connections to each remote address and port). */
#define SLICE_BLOCKS 16

/* This node sends from s's address: it holds it on lo as a target, or
 * distributes it. */
static bool sends_from(const struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s)
{
	return s->sysplexports && (dist_self_is_target(d, env, s) || (env->active && env->owns(env->ud, &s->addr)));
}

/* Ask for a slice of a's ports (want) or give it back, unless this was
 * the last thing asked about a since the membership changed. */
static void slice_ask(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a, bool want)
{
	struct dv_event ev = {.type = DV_EV_PORT_SLICE};
	char s[DV_ADDR_STRLEN];
	size_t i;

	for (i = 0; i < d->n_asked && !dv_addr_eq(&d->asked[i].addr, a); i++)
		;
	if (i < d->n_asked && d->asked[i].want == want)
		return;
	if (i == d->n_asked) {
		if (d->n_asked == d->cap_asked) {
			size_t cap = d->cap_asked ? 2 * d->cap_asked : 8;
			struct slice_ask *v = reallocarray(d->asked, cap, sizeof(*v));

			if (!v) {
				log_err("distributed VIPAs: out of memory");
				return;
			}
			d->asked = v;
			d->cap_asked = cap;
		}
		d->n_asked++;
	}
	d->asked[i] = (struct slice_ask){.addr = *a, .want = want};
	ev.port_slice.addr = *a;
	ev.port_slice.blocks = want ? SLICE_BLOCKS : 0;
	log_info("distributed VIPA '%s': %s", dv_addr_fmt(a, s),
		 want ? "asking for a slice of its ports (SYSPLEXPORTS)" : "giving its port slice back");
	env->submit(env->ud, &ev);
}

/* Every node that sends from a SYSPLEXPORTS address has a slice of its
 * ports, and no other node keeps one. */
void dist_sync_slices(struct dv_dist *d, const struct dv_dist_env *env)
{
	const dv_nodeid_t *m;
	size_t n_m = dv_engine_members(env->engine, &m), n_sl;
	dv_nodeid_t self = dv_engine_self(env->engine);
	const struct dv_port_slice *sl;

	/* A new membership may have freed ports (or lost a request): ask
	 * again. */
	if (n_m != d->n_asked_members || (n_m && memcmp(m, d->asked_members, n_m * sizeof(*m)) != 0)) {
		d->n_asked = 0;
		d->n_asked_members = n_m < DV_ENGINE_MAX_NODES ? n_m : DV_ENGINE_MAX_NODES;
		if (d->n_asked_members) /* m is NULL without members */
			memcpy(d->asked_members, m, d->n_asked_members * sizeof(*m));
	}
	if (!env->submit || !env->in_group || !dv_engine_quorate(env->engine) ||
	    !dv_engine_is_member(env->engine, self))
		return;
	for (size_t i = 0; i < env->conf->n_distribute; i++) {
		const struct dv_conf_distribute *s = &env->conf->distribute[i];

		if (sends_from(d, env, s) && !dv_engine_port_slice(env->engine, &s->addr, self, NULL))
			slice_ask(d, env, &s->addr, true);
	}
	n_sl = dv_engine_port_slices(env->engine, &sl);
	for (size_t i = 0; i < n_sl; i++) {
		const struct dv_conf_distribute *s;

		if (sl[i].node != self)
			continue;
		s = dv_dist_find(env->conf, &sl[i].addr);
		if (!s || !sends_from(d, env, s))
			slice_ask(d, env, &sl[i].addr, false);
	}
}

/* net.ipv4.ip_local_port_range (IPv6 too): the kernel narrows it for a
 * socket with IP_LOCAL_PORT_RANGE, never widens it. */
static bool port_range_covers(const struct dv_port_slice *sl, unsigned *ret_lo, unsigned *ret_hi)
{
	char buf[64] = "";
	int fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	*ret_lo = *ret_hi = 0;
	if (n <= 0 || sscanf(buf, "%u %u", ret_lo, ret_hi) != 2)
		return true; /* unknown: the kernel decides */
	return *ret_lo <= sl->lo && sl->hi <= *ret_hi;
}

enum dv_result dv_dist_source_ports(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
				    uint16_t *ret_lo, uint16_t *ret_hi, char *reason, size_t size)
{
	unsigned sys_lo, sys_hi;
	const struct dv_conf_distribute *s = dv_dist_find(env->conf, a);
	struct dv_port_slice sl;
	char buf[DV_ADDR_STRLEN];

	*ret_lo = *ret_hi = 0;
	dv_addr_fmt(a, buf);
	if (!d || !s || !s->sysplexports) {
		snprintf(reason, size, "%s is not distributed with SYSPLEXPORTS here: any port", buf);
		return DV_R_OK;
	}
	if (!sends_from(d, env, s)) {
		snprintf(reason, size, "%s is not on this node now (neither a ready target nor its distributor)", buf);
		return DV_R_NOTHELD;
	}
	if (!dv_engine_port_slice(env->engine, a, dv_engine_self(env->engine), &sl)) {
		snprintf(reason, size,
			 "this node has no slice of the ports of %s yet (asked for when it became a target; none is "
			 "left when the pool %u-%u is taken)",
			 buf, DV_SLICE_POOL_LO, DV_SLICE_POOL_HI);
		return DV_R_LIMIT;
	}
	if (!port_range_covers(&sl, &sys_lo, &sys_hi)) {
		snprintf(reason, size,
			 "this node's ports of %s are %u-%u, outside net.ipv4.ip_local_port_range (%u-%u), which the "
			 "kernel only narrows: set it to cover %u-%u",
			 buf, sl.lo, sl.hi, sys_lo, sys_hi, DV_SLICE_POOL_LO, DV_SLICE_POOL_HI);
		return DV_R_LIMIT;
	}
	*ret_lo = sl.lo;
	*ret_hi = sl.hi;
	snprintf(reason, size, "%s: this node's ports are %u-%u", buf, sl.lo, sl.hi);
	return DV_R_OK;
}
