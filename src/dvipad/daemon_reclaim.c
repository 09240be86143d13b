/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Socket holds taken again (daemon_int.h): after a restart, a heal or a new
 * connection to the cluster, for the sockets still bound in the ranges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "daemon_int.h"
#include "kernel.h"

/* ---- socket holds taken again ---- */

/* The address a, which sockets of c's program on this node are still bound
 * to, is another node's (why): it is not taken back. The program cannot be
 * told, so the operator is, here and in status while the program lives. */
static void socket_hold_lost(struct dv_daemon *d, struct claimant *c, const char *why)
{
	char s[DV_ADDR_STRLEN];

	if (c->again == AGAIN_LOST)
		return;
	c->again = AGAIN_LOST;
	(void)dv_addrset_add(&d->lost, &c->addr); /* failing costs the later take-back only */
	dv_log_limited(&d->rl_lost, 1, LOG_WARNING,
		       "'%s' lost by pid %d (%s), whose sockets are still bound to it on this node: %s",
		       dv_addr_fmt(&c->addr, s), (int)c->pid, c->comm, why);
}

/* The engine answered a claim this node sent without a client: a socket
 * hold taken again, or bind watch's. */
void dv_reclaim_answered(struct dv_daemon *d, const struct dv_addr *a, enum dv_result result, const char *reason)
{
	struct claimant *c = dv_claimant_get(d, a);

	if (!c || c->again != AGAIN_SENT)
		return;
	if (result == DV_R_OK)
		c->again = AGAIN_NONE;
	else
		socket_hold_lost(d, c, reason);
}

static bool active_here(struct dv_daemon *d, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	return dv_engine_lookup(d->engine, a, &v) == 0 && v.owner == dv_engine_self(d->engine);
}

/* Take the socket hold on sk->addr again for its owner pid. */
static void reclaim_one(struct dv_daemon *d, const struct dv_bound_socket *sk, pid_t pid)
{
	const struct dv_addr *a = &sk->addr;
	const struct dv_conf_range *r = dv_conf_find_range(d->conf, a);
	struct dv_event ev = {.type = DV_EV_CLAIM};
	char s[DV_ADDR_STRLEN], why[DV_REASON_MAX], comm[16];
	struct dv_vipa_info v;
	struct claimant *c;

	/* No process has it (an orphaned connection closing), or none that
	 * dvipad can see: nothing to hold it for. */
	if (!r || pid <= 0)
		return;
	dv_addr_fmt(a, s);
	if (!dv_proc_allowed(pid, r)) {
		dv_log_limited(&d->rl_lost, 1, LOG_NOTICE,
			       "'%s' not taken again for pid %d (%s): its user may not use range %s (see its ALLOW "
			       "list)",
			       s, (int)pid, dv_proc_comm(pid, comm, sizeof(comm)),
			       dv_prefix_fmt(&r->prefix, (char[DV_ADDR_STRLEN]){0}));
		return;
	}
	c = dv_claimant_set(d, a, pid);
	if (dv_engine_lookup(d->engine, a, &v) == 0 && v.owner) {
		const char *name = dv_engine_node_name(d->engine, v.owner);

		snprintf(why, sizeof(why), "it is active on %s", name ? name : "another node");
		if (c)
			socket_hold_lost(d, c, why);
		return;
	}
	if (c)
		c->again = AGAIN_SENT;
	log_info("pid %d (%s) still has sockets bound to '%s': taking its socket hold again", (int)pid,
		 c ? c->comm : "?", s);
	ev.claim.addr = *a;
	ev.claim.kind = DV_KIND_SOCKET;
	ev.claim.uid = sk->uid;
	ev.claim.source_use = true;
	dv_daemon_submit(d, &ev);
}

/*
 * Socket holds this node lost, for the sockets still bound in its ranges:
 * after a restart (a new dvipad starts with nothing), a heal or a new
 * connection to the cluster (the group dropped this node's holds when it
 * left). Each free address is claimed for its sockets as a source use
 * would claim it: activated here if still free when the claim is decided,
 * never taken from another node (a heal must not pull an address back from
 * the node that took it over). An address active here is left as it is.
 */
void dv_reclaim_socket_holds(struct dv_daemon *d)
{
	_cleanup_free_ struct dv_prefix *p = NULL;
	_cleanup_free_ struct dv_bound_socket *socks = NULL;
	_cleanup_free_ uint32_t *inodes = NULL;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n_p = 0, n = 0, m = 0;
	int r;

	if (!d->sockdiag || !d->engine || !dv_gate_is_open(&d->gate))
		return;
	p = dv_range_prefixes(d->conf, false, &n_p);
	socks = calloc(MAX_CLAIMANTS, sizeof(*socks));
	if (!p || !socks) {
		log_err("out of memory looking for sockets bound in the ranges; their holds are not taken again");
		return;
	}
	r = dv_sockdiag_bound_in(d->sockdiag, p, n_p, socks, MAX_CLAIMANTS, &n);
	if (r < 0) {
		log_err("cannot look for sockets bound in the ranges: %s; their holds are not taken again",
			strerror(-r));
		return;
	}
	if (n == MAX_CLAIMANTS)
		log_warn("sockets are bound to %d or more addresses of the ranges: holds taken again for the first %d "
			 "only",
			 MAX_CLAIMANTS, MAX_CLAIMANTS);
	/* Only those not active here: finding owners reads every process's
	 * fd table, once for all of them. */
	for (size_t i = 0; i < n; i++)
		if (!active_here(d, &socks[i].addr) && !dv_conf_find_define(d->conf, &socks[i].addr))
			socks[m++] = socks[i];
	if (!m)
		return;
	inodes = calloc(m, sizeof(*inodes));
	pids = calloc(m, sizeof(*pids));
	if (!inodes || !pids) {
		log_err("out of memory looking for the programs of sockets bound in the ranges");
		return;
	}
	for (size_t i = 0; i < m; i++)
		inodes[i] = socks[i].inode;
	dv_proc_socket_owners(inodes, m, pids);
	for (size_t i = 0; i < m; i++)
		reclaim_one(d, &socks[i], pids[i]);
}

/* a is no node's: the sockets of this node still bound to it, if any, get
 * their hold back (c lost it to another node before). */
static void reclaim_address(struct dv_daemon *d, const struct dv_addr *a)
{
	struct claimant *c = dv_claimant_get(d, a);
	struct dv_prefix p = {.addr = *a, .len = (uint8_t)dv_addr_maxlen(a)};
	struct dv_bound_socket sk;
	struct dv_vipa_info v;
	size_t n = 0;
	pid_t pid = 0;

	if (!c || c->again != AGAIN_LOST || dv_conf_find_define(d->conf, a))
		return;
	if (dv_engine_lookup(d->engine, a, &v) == 0 && v.owner) {
		if (v.owner == dv_engine_self(d->engine))
			c->again = AGAIN_NONE; /* active here again, by another way */
		return;
	}
	if (dv_sockdiag_bound_in(d->sockdiag, &p, 1, &sk, 1, &n) < 0 || n == 0)
		return; /* its program closed them meanwhile: nothing to hold */
	dv_proc_socket_owners(&sk.inode, 1, &pid);
	reclaim_one(d, &sk, pid);
}

/*
 * A program of this node that lost its address to another node while its
 * sockets stayed bound (a heal found the address taken) takes it back once
 * no node has it any more: the taker released it, or left. Called after
 * every event; costs nothing while no address is lost.
 */
void dv_reclaim_freed(struct dv_daemon *d)
{
	_cleanup_free_ struct dv_addr *freed = NULL;
	const struct dv_addr *a;
	size_t n = 0;

	if (!d->lost.n || !d->sockdiag || !d->engine || !dv_gate_is_open(&d->gate))
		return;
	freed = calloc(d->lost.n, sizeof(*freed));
	if (!freed)
		return;
	for (size_t i = 0; dv_addrset_next(&d->lost, &i, &a);) {
		const struct claimant *c = dv_claimant_get(d, a);
		struct dv_vipa_info v;

		if (c && c->again == AGAIN_LOST && dv_engine_lookup(d->engine, a, &v) == 0 && v.owner &&
		    v.owner != dv_engine_self(d->engine))
			continue; /* still another node's */
		freed[n++] = *a;
	}
	/* Off the list first: a claim submitted here may be applied (and
	 * this called again) before the loop ends. */
	for (size_t i = 0; i < n; i++)
		(void)dv_addrset_del(&d->lost, &freed[i]);
	for (size_t i = 0; i < n; i++)
		reclaim_address(d, &freed[i]);
}
