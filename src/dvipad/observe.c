/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Socket and listener observations turned into engine events (observe.h).
 * Pure; driven by the daemon, tested by test_observe.c. */
#include "observe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REPORTED 0x80000000u
_Static_assert(!(DV_AS_ALL & REPORTED), "REPORTED is above every DV_AS_*");

void dv_observe_init(struct dv_observe *o)
{
	*o = (struct dv_observe){0};
}

void dv_observe_clear(struct dv_observe *o)
{
	dv_addrset_clear(&o->seen_bound);
	dv_addrset_clear(&o->probed);
	free(o->define_state);
	*o = (struct dv_observe){0};
}

const struct dv_hold *dv_observe_socket_hold(const struct dv_engine *e, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	if (dv_engine_lookup(e, a, &v) < 0)
		return NULL;
	for (size_t i = 0; i < v.n_holds; i++)
		if (v.holds[i].kind == DV_KIND_SOCKET && v.holds[i].node == dv_engine_self(e))
			return &v.holds[i];
	return NULL;
}

enum dv_observe_unbound dv_observe_unbound(struct dv_observe *o, const struct dv_engine *e, const struct dv_addr *a,
					   bool binding, uint64_t now_ms, uint64_t *ret_at_ms)
{
	const struct dv_hold *h = dv_observe_socket_hold(e, a);

	if (!h)
		return DV_OBSERVE_NONE;
	/* The grace is for a socket that has not appeared yet, not for one
	 * that came and went, nor for one whose program is done binding
	 * (a socket it bound and closed before the poll saw it). */
	if (dv_addrset_del(&o->seen_bound, a) == 0 && binding && now_ms < h->since_ms + DV_SOCKET_GRACE_MS) {
		*ret_at_ms = h->since_ms + DV_SOCKET_GRACE_MS;
		return DV_OBSERVE_GRACE;
	}
	return DV_OBSERVE_END;
}

bool dv_observe_bound(struct dv_observe *o, const struct dv_engine *e, const struct dv_addr *a, bool installed,
		      bool bindwatch)
{
	/* ip_nonlocal_bind lets a program bind an address of a BINDWATCH
	 * range before it exists. The hold that activation makes is for the
	 * very socket seen here: it gets no grace when that socket goes. */
	bool activate = bindwatch && !dv_observe_socket_hold(e, a);

	if (installed || activate)
		(void)dv_addrset_add(&o->seen_bound, a);
	return activate;
}

void dv_observe_installed(struct dv_observe *o, const struct dv_addr *a)
{
	(void)dv_addrset_add(&o->probed, a);
}

void dv_observe_removed(struct dv_observe *o, const struct dv_addr *a)
{
	if (a)
		(void)dv_addrset_del(&o->seen_bound, a);
	else
		dv_addrset_clear(&o->seen_bound);
}

bool dv_observe_needs_probe(const struct dv_observe *o, const struct dv_engine *e, const struct dv_addr *a,
			    unsigned probe_count)
{
	struct dv_vipa_info v;

	if (probe_count == 0 || dv_addrset_has(&o->probed, a))
		return false;
	return !(dv_engine_lookup(e, a, &v) == 0 && v.owner != 0);
}

void dv_observe_probed(struct dv_observe *o, const struct dv_addr *a)
{
	(void)dv_addrset_add(&o->probed, a);
}

static const uint8_t zero_mac[6];

void dv_observe_cluster_mac(struct dv_observe *o, const uint8_t mac[6])
{
	size_t i;

	if (memcmp(mac, zero_mac, 6) == 0)
		return;
	for (i = 0; i < o->n_macs && memcmp(o->macs[i], mac, 6) != 0; i++)
		;
	if (i == o->n_macs) /* new: the oldest goes when full */
		i = o->n_macs < DV_OBSERVE_MAX_MACS ? o->n_macs++ : DV_OBSERVE_MAX_MACS - 1;
	memmove(o->macs[1], o->macs[0], i * 6);
	memcpy(o->macs[0], mac, 6);
}

bool dv_observe_is_cluster_mac(const struct dv_observe *o, const uint8_t mac[6])
{
	for (size_t i = 0; i < o->n_macs; i++)
		if (memcmp(o->macs[i], mac, 6) == 0)
			return true;
	return false;
}

int dv_observe_defines(struct dv_observe *o, size_t n)
{
	uint32_t *s = calloc(n + 1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	free(o->define_state);
	o->define_state = s;
	o->n_defines = n;
	return 0;
}

void dv_observe_defines_resend(struct dv_observe *o)
{
	if (o->define_state)
		memset(o->define_state, 0, o->n_defines * sizeof(*o->define_state));
}

bool dv_observe_define(struct dv_observe *o, const struct dv_engine *e, size_t i, const struct dv_addr *a,
		       bool listening, bool busy, unsigned ready, unsigned *ret_flags)
{
	unsigned flags = (listening ? DV_AS_LISTENING : 0) | (busy ? DV_AS_BUSY : 0) |
			 (ready & (DV_AS_READY_ALL | DV_AS_WEIGHT_ALL));

	if (i >= o->n_defines)
		return false;
	if (dv_observe_socket_hold(e, a))
		flags |= DV_AS_BOUND;
	if (o->define_state[i] == (REPORTED | flags))
		return false;
	o->define_state[i] = REPORTED | flags;
	*ret_flags = flags;
	return true;
}
