/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The lifetime of kernel addresses from the cost of refreshing them (lease.h). */
#include "lease.h"

unsigned dv_lease_for(unsigned lease_min, const struct dv_lease_cost *cost, size_t n)
{
	double scale, cpu, wall, us;
	uint64_t want;

	if (!cost || !cost->n)
		return lease_min;
	scale = ((double)n / (double)cost->n) * ((double)n / (double)cost->n);
	cpu = (double)cost->cpu_us * scale * 3 * DV_LEASE_SHARE;
	wall = (double)cost->wall_us * scale * 3;
	us = cpu > wall ? cpu : wall;
	/* Rounded up to whole seconds; beyond the maximum (or a scale that
	 * overflows a double's integer range) is the maximum. */
	if (us >= (double)DV_LEASE_MAX * 1000000)
		want = DV_LEASE_MAX;
	else
		want = ((uint64_t)us + 999999) / 1000000;
	if (want <= lease_min)
		return lease_min;
	return (unsigned)want;
}
