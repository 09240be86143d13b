/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Distributed VIPAs on this node (dist.h). The table's text comes from
 * dist_rules.c, the slots from maglev.c; this file decides which services
 * and targets there are and carries the result into the kernel.
 */
#include "dist_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "dist_rules.h"
#include "jhash.h"
#include "kernel.h"
#include "kernel_nft.h"
#include "log.h"
#include "maglev.h"

#define SEED_SALT 0x64766970u /* "dvip": any constant, the same on every node */
#define MAX_SERVICES DV_DIST_MAX_SERVICES

#define MAX_PIN_LISTS 4096 /* lists of other nodes' connections (DV_EV_DIST_PINS) kept */
#define MAX_ONE_BY_ONE 256 /* pins tried one at a time when their transaction failed */

/* One target of one statement. */
struct target {
	const struct dv_cluster_node *node; /* name: the Maglev key, the same on every node */
	unsigned rank;			    /* HOTSTANDBY */
	unsigned ready; /* DV_AS_READY and DV_AS_WEIGHT bits; 0 unless a member of a quorate partition */
};

/* ---- what the state says ---- */

static void sorted_ports(const struct dv_conf_distribute *s, uint16_t ret[static DV_DIST_MAX_PORTS])
{
	memcpy(ret, s->ports, s->n_ports * sizeof(*ret));
	for (size_t i = 1; i < s->n_ports; i++)
		for (size_t j = i; j > 0 && ret[j - 1] > ret[j]; j--) {
			uint16_t t = ret[j];

			ret[j] = ret[j - 1];
			ret[j - 1] = t;
		}
}

/* want, held for addr:port (as measured if no room is left to hold it). */
static unsigned server_weight(struct dv_dist *d, const struct dv_addr *a, uint16_t port, unsigned want)
{
	struct server_port *sp = NULL, *grown;

	if (!d)
		return want;
	for (size_t i = 0; i < d->n_server && !sp; i++)
		if (d->server[i].port == port && dv_addr_eq(&d->server[i].addr, a))
			sp = &d->server[i];
	if (!sp) {
		/* At most a port per service of the configuration. */
		if (d->n_server == MAX_SERVICES || !(grown = realloc(d->server, (d->n_server + 1) * sizeof(*grown))))
			return want;
		d->server = grown;
		sp = &d->server[d->n_server++];
		*sp = (struct server_port){.addr = *a, .port = port};
	}
	return dv_wlm_held(&sp->hold, want, dv_mono_us() / 1000);
}

int dv_dist_report_bits(struct dv_dist *d, struct dv_sockdiag *sd, const struct dv_conf_distribute *s, unsigned *ret)
{
	struct dv_listen_queue q[DV_DIST_MAX_PORTS];
	uint16_t ports[DV_DIST_MAX_PORTS];
	unsigned bits = 0, cpu;
	int r;

	sorted_ports(s, ports);
	for (size_t i = 0; i < s->n_ports; i++)
		q[i] = (struct dv_listen_queue){.port = ports[i]};
	r = dv_sockdiag_listen_queues(sd, &s->addr, q, s->n_ports);
	if (r < 0)
		return r;
	/* Only the weighted methods sample the CPU, and only they report a
	 * weight: another change of it would re-point nothing. */
	if (d && (s->method == DV_DIST_BASEWLM || s->method == DV_DIST_SERVERWLM)) {
		r = dv_wlm_sample(&d->cpu, dv_mono_us() / 1000);
		if (r < 0 && !d->cpu_failed)
			log_err("distributed VIPAs: cannot read the spare CPU from '%s': %s (the weight stays %u)",
				d->cpu.stat_path, strerror(-r), dv_wlm_weight(&d->cpu));
		d->cpu_failed = r < 0;
	}
	cpu = d ? dv_wlm_weight(&d->cpu) : DV_AS_WEIGHT_MAX;
	for (size_t i = 0; i < s->n_ports; i++) {
		if (!q[i].listeners)
			continue;
		bits |= DV_AS_READY(i);
		if (s->method == DV_DIST_BASEWLM)
			bits |= DV_AS_WEIGHT(i, cpu);
		else if (s->method == DV_DIST_SERVERWLM)
			bits |= DV_AS_WEIGHT(i, server_weight(d, &s->addr, ports[i],
							      dv_wlm_server_weight(cpu, q[i].queued, q[i].backlog)));
	}
	*ret = bits;
	return 0;
}

const struct dv_conf_distribute *dv_dist_find(const struct dv_conf *c, const struct dv_addr *a)
{
	for (size_t i = 0; i < c->n_distribute; i++)
		if (dv_addr_eq(&c->distribute[i].addr, a))
			return &c->distribute[i];
	return NULL;
}

static bool known_node(const struct dv_dist *d, dv_nodeid_t id)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		if (d->nodes[i].id == id)
			return true;
	return false;
}

/* A DESTIP name must be in the node list, and a target of another node
 * needs an address of the VIPA's family there; otherwise it gets no
 * connections. Said once per node list and configuration. */
static void warn_unreachable(const struct dv_dist *d, const struct dv_dist_env *env)
{
	for (size_t i = 0; i < env->conf->n_distribute; i++) {
		const struct dv_conf_distribute *s = &env->conf->distribute[i];

		for (size_t j = 0; j < s->n_dests; j++) {
			bool known = false;

			for (size_t k = 0; k < d->n_nodes && !known; k++)
				known = strcmp(s->dests[j].node, d->nodes[k].name) == 0;
			if (!known)
				log_err("%s:%u: VIPADISTRIBUTE: DESTIP node '%s' is not in Corosync's node list (its "
					"name:): it gets no connections",
					env->conf->file, s->dests[j].line, s->dests[j].node);
		}

		for (size_t k = 0; k < d->n_nodes; k++) {
			const struct dv_cluster_node *nd = &d->nodes[k];
			bool named = s->dest_all;

			for (size_t j = 0; j < s->n_dests && !named; j++)
				named = strcmp(s->dests[j].node, nd->name) == 0;
			if (named && nd->id != dv_engine_self(env->engine) &&
			    !(s->addr.family == AF_INET6 ? nd->v6.family : nd->v4.family))
				log_err("%s:%u: VIPADISTRIBUTE: node '%s' has no IPv%d address in Corosync's node "
					"list: "
					"it gets no connections",
					env->conf->file, s->line, nd->name, s->addr.family == AF_INET6 ? 6 : 4);
		}
	}
}

/* The node list, read again when a member is not in it (Corosync reloaded
 * its configuration). Without one (CLUSTER NONE), this node alone. */
void dist_refresh_nodes(struct dv_dist *d, const struct dv_dist_env *env)
{
	const dv_nodeid_t *m;
	size_t n_m = dv_engine_members(env->engine, &m), n = 0;
	bool stale = !d->have_nodes;
	int r;

	for (size_t i = 0; i < n_m && !stale; i++)
		stale = !known_node(d, m[i]);
	if (!stale)
		return;
	r = dv_cluster_nodelist(env->cluster, d->nodes, DV_ENGINE_MAX_NODES, &n);
	if (r == -ENOENT) {
		d->nodes[0] = (struct dv_cluster_node){.id = dv_engine_self(env->engine)};
		snprintf(d->nodes[0].name, sizeof(d->nodes[0].name), "%s", env->conf->node);
		n = 1;
	} else if (r < 0) {
		log_err("distributed VIPAs: cannot read the cluster's node list: %s", strerror(-r));
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!d->nodes[i].name[0]) /* a key all the same */
			snprintf(d->nodes[i].name, sizeof(d->nodes[i].name), "nodeid-%u", d->nodes[i].id);
	d->n_nodes = n;
	d->have_nodes = true;
	warn_unreachable(d, env);
}

static int target_cmp(const void *a, const void *b)
{
	return strcmp(((const struct target *)a)->node->name, ((const struct target *)b)->node->name);
}

/* The targets of s, sorted by name: the nodes DESTIP names (ALL: every
 * configured one). Only members of a quorate partition that have not left
 * the group are ready, for the ports they report listeners on. */
static size_t targets_of(const struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s,
			 struct target ret[static DV_ENGINE_MAX_NODES])
{
	uint16_t ports[DV_DIST_MAX_PORTS];
	size_t n = 0;

	sorted_ports(s, ports);
	for (size_t i = 0; i < d->n_nodes; i++) {
		const struct dv_cluster_node *nd = &d->nodes[i];
		bool named = s->dest_all;
		unsigned rank = 0;

		for (size_t j = 0; j < s->n_dests && !named; j++)
			if (strcmp(s->dests[j].node, nd->name) == 0) {
				named = true;
				rank = s->dests[j].rank;
			}
		if (!named)
			continue;
		ret[n] = (struct target){.node = nd, .rank = rank};
		if (dv_engine_quorate(env->engine) && dv_engine_is_member(env->engine, nd->id) &&
		    !dv_engine_node_left(env->engine, nd->id))
			ret[n].ready =
				dv_engine_report(env->engine, &s->addr, nd->id) & (DV_AS_READY_ALL | DV_AS_WEIGHT_ALL);
		/* A quiesced port is not ready, whatever the report: every
		 * node re-points its slots (weight 0), the pins stay. */
		for (size_t pi = 0; pi < s->n_ports; pi++)
			if (dv_engine_quiesced(env->engine, &s->addr, ports[pi], nd->id))
				ret[n].ready &= ~DV_AS_READY(pi);
		n++;
	}
	qsort(ret, n, sizeof(*ret), target_cmp);
	return n;
}

/* This node holds s's address on lo: it is one of the targets, a member of
 * a quorate partition, and in its group now. */
bool dist_self_is_target(const struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s)
{
	struct target t[DV_ENGINE_MAX_NODES];
	size_t n = targets_of(d, env, s, t);
	dv_nodeid_t self = dv_engine_self(env->engine);

	if (!env->in_group || !dv_engine_quorate(env->engine) || !dv_engine_is_member(env->engine, self) ||
	    dv_engine_node_left(env->engine, self))
		return false;
	for (size_t i = 0; i < n; i++)
		if (t[i].node->id == self)
			return true;
	return false;
}

static uint32_t seed_of(const struct dv_addr *a, uint16_t port)
{
	uint8_t key[19];

	memcpy(key, a->bytes, 16);
	key[16] = (uint8_t)a->family;
	key[17] = (uint8_t)(port >> 8);
	key[18] = (uint8_t)port;
	return dv_jhash(key, sizeof(key), SEED_SALT);
}

/* ---- the plan: the ruleset the state asks for ---- */

struct plan {
	struct dv_dist_ruleset rs;
	size_t max; /* services room was made for */
	struct dv_dist_service *svc;
	uint16_t *ports;
	struct dv_dist_target **targets;
	uint32_t **slots;
	struct dv_dist_slice *slices;
	size_t cap_slices;
};

static struct plan *plan_free(struct plan *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->rs.n_services; i++) {
		free(p->targets[i]);
		free(p->slots[i]);
	}
	free(p->svc);
	free(p->ports);
	free(p->targets);
	free(p->slots);
	free(p->slices);
	free(p);
	return NULL;
}

/* An empty plan with room for the services of s[0..n) (one a port). */
static struct plan *plan_new(const struct dv_conf_distribute *s, size_t n)
{
	struct plan *p = calloc(1, sizeof(*p));
	size_t max = 0;

	for (size_t i = 0; i < n; i++)
		max += s[i].n_ports;
	if (!p)
		return NULL;
	p->max = max;
	p->svc = calloc(max + 1, sizeof(*p->svc));
	p->ports = calloc(max + 1, sizeof(*p->ports));
	p->targets = calloc(max + 1, sizeof(*p->targets));
	p->slots = calloc(max + 1, sizeof(*p->slots));
	if (!p->svc || !p->ports || !p->targets || !p->slots)
		return plan_free(p);
	p->rs.services = p->svc;
	return p;
}

/* A target's weight for port index pi: what it reported, 0 if not ready. */
static unsigned weight_of(const struct target *t, size_t pi)
{
	return (t->ready & DV_AS_READY(pi)) ? dv_as_weight(t->ready, pi) : 0;
}

/* The slots of one service (port index pi) over targets t[0..n). */
static int fill_slots(enum dv_dist_method method, size_t pi, const struct target *t, size_t n, uint32_t m,
		      uint32_t seed, uint32_t *slots)
{
	struct dv_maglev_target mt[DV_ENGINE_MAX_NODES];
	size_t ready[DV_ENGINE_MAX_NODES], n_ready = 0, best = SIZE_MAX;

	for (size_t k = 0; k < n; k++)
		if (t[k].ready & DV_AS_READY(pi)) {
			ready[n_ready++] = k;
			if (best == SIZE_MAX || t[k].rank > t[best].rank)
				best = k;
		}
	switch (method) {
	case DV_DIST_BASEWLM:
	case DV_DIST_SERVERWLM:
		for (size_t k = 0; k < n; k++)
			mt[k] = (struct dv_maglev_target){t[k].node->name, weight_of(&t[k], pi)};
		return dv_maglev_build(mt, n, m, seed, slots);
	case DV_DIST_ROUNDROBIN:
		for (uint32_t i = 0; i < m; i++)
			slots[i] = n_ready ? (uint32_t)ready[i % n_ready] : DV_MAGLEV_NONE;
		return 0;
	case DV_DIST_HOTSTANDBY:
		for (uint32_t i = 0; i < m; i++)
			slots[i] = best == SIZE_MAX ? DV_MAGLEV_NONE : (uint32_t)best;
		return 0;
	default:
		return -EOPNOTSUPP; /* refused at start and reload */
	}
}

/* WEIGHTEDACTIVE's configured weight of a target (DESTIP ALL: the default). */
static unsigned dest_weight(const struct dv_conf_distribute *s, const char *name)
{
	for (size_t j = 0; j < s->n_dests; j++)
		if (strcmp(s->dests[j].node, name) == 0)
			return s->dests[j].weight;
	return DV_DIST_DEFAULT_WEIGHT;
}

static const struct wa_service *wa_find(const struct dv_dist *d, const struct dv_addr *a, uint16_t port)
{
	for (size_t i = 0; i < d->n_wa; i++)
		if (d->wa[i].port == port && dv_addr_eq(&d->wa[i].addr, a))
			return &d->wa[i];
	return NULL;
}

/* WEIGHTEDACTIVE's slots (numgen draws one on the SYN): the ready targets
 * shared by weight and, on the distributor, by the open connections it
 * counted last (wlm.h). Another node has no count: the weights alone, the
 * same for the distributor's successor until its first count. */
static int wa_slots(const struct dv_dist *d, const struct dv_conf_distribute *s, uint16_t port, size_t pi,
		    const struct target *t, size_t n, uint32_t m, uint32_t *slots)
{
	const struct wa_service *ws = wa_find(d, &s->addr, port);
	unsigned w[DV_ENGINE_MAX_NODES];
	uint64_t a[DV_ENGINE_MAX_NODES];
	uint32_t count[DV_ENGINE_MAX_NODES];

	for (size_t k = 0; k < n; k++) {
		w[k] = (t[k].ready & DV_AS_READY(pi)) ? dest_weight(s, t[k].node->name) : 0;
		a[k] = 0;
		for (size_t j = 0; ws && j < ws->n; j++)
			if (ws->node[j] == t[k].node->id)
				a[k] = ws->active[j];
	}
	dv_wlm_active(w, a, n, m, count);
	dv_wlm_active_slots(count, n, m, slots);
	return 0;
}

/*
 * Maglev's table size: a prime above 1,000 per configured target (Maglev
 * keeps shares within 1 % from 100 per target on), at most 65,537. Not
 * 65,537 whatever the count: every slot costs when a target's readiness
 * changes, and 65,537 of them took 1 to 3 s to rewrite per node here
 * (kernel time), more under load.
 */
static uint32_t maglev_size(size_t n_targets)
{
	uint32_t m = 1000 * (uint32_t)(n_targets ? n_targets : 1) + 1;

	if (m >= DV_MAGLEV_M_DEFAULT)
		return DV_MAGLEV_M_DEFAULT;
	while (!dv_maglev_prime(m))
		m++;
	return m;
}

static uint32_t slots_for(enum dv_dist_method m, size_t n_targets)
{
	if (m == DV_DIST_BASEWLM || m == DV_DIST_SERVERWLM)
		return maglev_size(n_targets);
	return m == DV_DIST_ROUNDROBIN || m == DV_DIST_WEIGHTEDACTIVE ? DV_DIST_RR_SLOTS : DV_DIST_HS_SLOTS;
}

/* How this node reaches node nd for an address of family: served here, or
 * through its host address in the node list. */
static struct dv_dist_target node_target(const struct dv_dist *d, const struct dv_dist_env *env,
					 const struct dv_cluster_node *nd, int family)
{
	if (nd->id == dv_engine_self(env->engine))
		return (struct dv_dist_target){.name = nd->name, .fwd = DV_DIST_FWD_LOCAL};
	return (struct dv_dist_target){.name = nd->name,
				       .fwd = DV_DIST_FWD_NEXTHOP,
				       .ifname = d->ifname,
				       .next = family == AF_INET6 ? nd->v6 : nd->v4};
}

static int plan_statement(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s,
			  struct plan *p)
{
	struct target t[DV_ENGINE_MAX_NODES], kept[DV_ENGINE_MAX_NODES];
	size_t n = targets_of(d, env, s, t), n_kept = 0;
	uint16_t ports[DV_DIST_MAX_PORTS];
	uint32_t m = slots_for(s->method, n);

	/* Targets this node can reach: itself, or a node with an address of
	 * the VIPA's family in the node list. */
	for (size_t k = 0; k < n; k++) {
		const struct dv_addr *next = s->addr.family == AF_INET6 ? &t[k].node->v6 : &t[k].node->v4;

		if (t[k].node->id == dv_engine_self(env->engine) || next->family)
			kept[n_kept++] = t[k];
	}
	sorted_ports(s, ports);
	for (size_t pi = 0; pi < s->n_ports; pi++) {
		size_t i = p->rs.n_services;
		struct dv_dist_target *dt;
		int r;

		if (i == p->max || i == MAX_SERVICES)
			return -E2BIG;
		dt = calloc(n_kept ? n_kept : 1, sizeof(*dt));
		p->slots[i] = calloc(m, sizeof(uint32_t));
		p->targets[i] = dt;
		p->rs.n_services++;
		if (!dt || !p->slots[i])
			return -ENOMEM;
		for (size_t k = 0; k < n_kept; k++) {
			dt[k] = node_target(d, env, kept[k].node, s->addr.family);
		}
		p->ports[i] = ports[pi];
		p->svc[i] = (struct dv_dist_service){
			.vipa = s->addr,
			.n_ports = 1,
			.ports = &p->ports[i],
			.method = s->method,
			.seed = seed_of(&s->addr, ports[pi]),
			.affinity_s = s->affinity_s,
			.distributing = env->active && env->owns(env->ud, &s->addr),
			.n_targets = n_kept,
			.targets = dt,
			.m = m,
			.slots = p->slots[i],
		};
		if (s->method == DV_DIST_WEIGHTEDACTIVE)
			r = wa_slots(d, s, ports[pi], pi, kept, n_kept, m, p->slots[i]);
		else
			r = fill_slots(s->method, pi, kept, n_kept, m, p->svc[i].seed, p->slots[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The other nodes' slices of s's ports, for the distributor's rules. */
static int plan_slices(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s,
		       struct plan *p)
{
	const struct dv_port_slice *sl;
	size_t n = dv_engine_port_slices(env->engine, &sl);

	if (!s->sysplexports)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct dv_cluster_node *nd = NULL;
		struct dv_dist_slice *x;

		if (!dv_addr_eq(&sl[i].addr, &s->addr) || sl[i].node == dv_engine_self(env->engine))
			continue;
		for (size_t k = 0; k < d->n_nodes && !nd; k++)
			if (d->nodes[k].id == sl[i].node)
				nd = &d->nodes[k];
		/* Without its host address (warned) the node cannot be reached. */
		if (!nd || !(s->addr.family == AF_INET6 ? nd->v6.family : nd->v4.family))
			continue;
		if (p->rs.n_slices == p->cap_slices) {
			size_t cap = p->cap_slices ? 2 * p->cap_slices : 16;
			struct dv_dist_slice *v = reallocarray(p->slices, cap, sizeof(*v));

			if (!v)
				return -ENOMEM;
			p->slices = v;
			p->cap_slices = cap;
			p->rs.slices = v;
		}
		x = &p->slices[p->rs.n_slices++];
		*x = (struct dv_dist_slice){
			.vipa = s->addr,
			.lo = sl[i].lo,
			.hi = sl[i].hi,
			.distributing = env->active && env->owns(env->ud, &s->addr),
			.target = node_target(d, env, nd, s->addr.family),
		};
	}
	return 0;
}

static int plan_build(struct dv_dist *d, const struct dv_dist_env *env, struct plan **ret)
{
	struct plan *p = plan_new(env->conf->distribute, env->conf->n_distribute);
	int r = 0;

	if (!p)
		return -ENOMEM;
	p->rs.ifname = d->ifname;
	for (size_t i = 0; i < env->conf->n_distribute && r == 0; i++) {
		r = plan_statement(d, env, &env->conf->distribute[i], p);
		if (r == 0)
			r = plan_slices(d, env, &env->conf->distribute[i], p);
	}
	if (r < 0) {
		plan_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

/* What a slot update cannot change: everything but the slots and the
 * ingress rules. */
static char *shape_of(const struct plan *p)
{
	char *text = NULL, buf[DV_ADDR_STRLEN];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < p->rs.n_services; i++) {
		const struct dv_dist_service *s = &p->svc[i];

		fprintf(f, "%s %u %d %u %u %u %zu\n", dv_addr_fmt(&s->vipa, buf), s->ports[0], (int)s->method,
			s->affinity_s, s->m, s->seed, s->n_targets);
		for (size_t k = 0; k < s->n_targets; k++)
			fprintf(f, " %s %d %s\n", s->targets[k].name, (int)s->targets[k].fwd,
				s->targets[k].fwd == DV_DIST_FWD_NEXTHOP ? dv_addr_fmt(&s->targets[k].next, buf) : "-");
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Which services this node steers: "ADDR:PORT ...", "" for none. */
static char *ingress_of(const struct plan *p)
{
	char *text = NULL, buf[DV_ADDR_STRLEN];
	size_t len = 0, n = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < p->rs.n_services; i++)
		if (p->svc[i].distributing)
			fprintf(f, "%s%s%s%s:%u", n++ ? " " : "", p->svc[i].vipa.family == AF_INET6 ? "[" : "",
				dv_addr_fmt(&p->svc[i].vipa, buf), p->svc[i].vipa.family == AF_INET6 ? "]" : "",
				p->svc[i].ports[0]);
	for (size_t i = 0; i < p->rs.n_slices; i++)
		if (p->slices[i].distributing)
			fprintf(f, "%s%s%s%s:%u-%u to %s", n++ ? " " : "",
				p->slices[i].vipa.family == AF_INET6 ? "[" : "", dv_addr_fmt(&p->slices[i].vipa, buf),
				p->slices[i].vipa.family == AF_INET6 ? "]" : "", p->slices[i].lo, p->slices[i].hi,
				p->slices[i].target.name);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- the kernel ---- */

static void forget_table(struct dv_dist *d)
{
	for (size_t i = 0; i < d->n_services; i++)
		free(d->slots[i]);
	free(d->slots);
	free(d->m);
	free(d->shape);
	free(d->ingress);
	d->slots = NULL;
	d->m = NULL;
	d->shape = NULL;
	d->ingress = NULL;
	d->n_services = 0;
}

/* Remember p as what the kernel has; its slot arrays move here. */
static int keep_table(struct dv_dist *d, struct plan *p, char *shape, char *ingress)
{
	forget_table(d);
	d->slots = calloc(p->rs.n_services, sizeof(*d->slots));
	d->m = calloc(p->rs.n_services, sizeof(*d->m));
	if (!d->slots || !d->m) {
		free(shape);
		free(ingress);
		forget_table(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->rs.n_services; i++) {
		d->slots[i] = TAKE_PTR(p->slots[i]);
		d->m[i] = p->svc[i].m;
	}
	d->n_services = p->rs.n_services;
	d->shape = shape;
	d->ingress = ingress;
	return 0;
}

static void remove_table(struct dv_dist *d)
{
	_cleanup_free_ char *err = NULL;

	dv_knft_wait(d->nft);
	if (dv_knft_remove(d->nft, &err) < 0)
		log_err("cannot remove table 'netdev %s': %s", DV_DIST_TABLE, err ? err : "nft failed");
	forget_table(d);
}

static void bg_done(void *ud, int r, const char *error)
{
	struct dv_dist *d = ud;
	double ms = (dv_mono_us() - d->bg_t0_us) / 1000.0;

	if (r < 0) {
		log_err("distributed VIPAs: cannot %s table 'netdev %s' on '%s': %s",
			d->replacing ? "load" : "update the slots of", DV_DIST_TABLE, d->ifname,
			error ? error : "nft failed");
		/* Unknown now: the next sync loads it whole. */
		forget_table(d);
	} else if (d->replacing) {
		log_info("distributed VIPAs: table 'netdev %s' loaded on '%s' (%zu service(s)) in %.1f ms",
			 DV_DIST_TABLE, d->ifname, d->bg_n, ms);
		d->dirty |= d->n_lists > 0; /* the lists go into it */
	} else {
		log_info("distributed VIPAs: new slots for %zu service(s) in %.1f ms (pins kept)", d->bg_n, ms);
	}
	d->replacing = false;
	if (d->dirty) {
		d->dirty = false;
		d->resync(d->ud);
	}
}

static void set_ingress(struct dv_dist *d, const struct plan *p, char *ingress)
{
	_cleanup_free_ char *err = NULL;
	int r = dv_knft_set_ingress(d->nft, &p->rs, &err);

	if (r < 0) {
		log_err("distributed VIPAs: cannot set the rules of chain 'ingress' of table 'netdev %s': %s",
			DV_DIST_TABLE, err ? err : strerror(-r));
		free(ingress);
		forget_table(d);
		return;
	}
	if (*ingress)
		log_info("distributed VIPAs: this node distributes %s now", ingress);
	else
		log_info("distributed VIPAs: this node distributes nothing now");
	free(d->ingress);
	d->ingress = ingress;
}

static void apply_table(struct dv_dist *d, struct plan *p)
{
	_cleanup_free_ char *shape = NULL, *ingress = NULL;
	const uint32_t **old = NULL;
	size_t n_changed = 0;
	int r;

	if (p->rs.n_services == 0) {
		if (d->shape) {
			remove_table(d);
			log_info("distributed VIPAs: none configured: table 'netdev %s' removed", DV_DIST_TABLE);
		}
		return;
	}
	shape = shape_of(p);
	ingress = ingress_of(p);
	if (!shape || !ingress) {
		log_err("distributed VIPAs: out of memory");
		return;
	}
	if (dv_knft_busy(d->nft) && d->replacing) {
		d->dirty = true;
		return;
	}
	if (!d->shape || strcmp(shape, d->shape) != 0) {
		if (dv_knft_busy(d->nft)) {
			d->dirty = true;
			return;
		}
		d->bg_t0_us = dv_mono_us();
		d->bg_n = p->rs.n_services;
		r = dv_knft_replace_bg(d->nft, d->ev, &p->rs, bg_done, d);
		if (r < 0) {
			log_err("distributed VIPAs: cannot load table 'netdev %s': %s", DV_DIST_TABLE, strerror(-r));
			return;
		}
		d->replacing = true;
		/* A new table has no pins: the lists go in again once it is
		 * there, and the targets' lists are made against it. */
		for (size_t i = 0; i < d->n_lists; i++)
			d->lists[i].loaded = false;
		d->n_sent = 0;
		d->send_due = true;
		if (keep_table(d, p, TAKE_PTR(shape), TAKE_PTR(ingress)) < 0)
			log_err("distributed VIPAs: out of memory");
		return;
	}
	/* The role of distributor changed hands: a few rules, at once, even
	 * while slots are being written (other objects of the table). */
	if (strcmp(ingress, d->ingress) != 0)
		set_ingress(d, p, TAKE_PTR(ingress));
	if (!d->shape)
		return;
	for (size_t i = 0; i < p->rs.n_services; i++)
		n_changed += memcmp(d->slots[i], p->slots[i], p->svc[i].m * sizeof(uint32_t)) != 0;
	if (!n_changed)
		return;
	if (dv_knft_busy(d->nft)) {
		d->dirty = true;
		return;
	}
	old = calloc(p->rs.n_services, sizeof(*old));
	if (!old) {
		log_err("distributed VIPAs: out of memory");
		return;
	}
	for (size_t i = 0; i < p->rs.n_services; i++)
		if (memcmp(d->slots[i], p->slots[i], p->svc[i].m * sizeof(uint32_t)) != 0)
			old[i] = d->slots[i];
	d->bg_t0_us = dv_mono_us();
	d->bg_n = n_changed;
	r = dv_knft_set_slots_bg(d->nft, d->ev, &p->rs, old, bg_done, d);
	if (r < 0)
		log_err("distributed VIPAs: cannot update the slots of table 'netdev %s': %s", DV_DIST_TABLE,
			strerror(-r));
	else
		d->send_due = true;
	for (size_t i = 0; r >= 0 && i < p->rs.n_services; i++)
		if (old[i]) {
			free(d->slots[i]);
			d->slots[i] = TAKE_PTR(p->slots[i]);
		}
	free(old);
}

/* ---- takeover keeps flows: the targets' connections as pins ---- */

int dist_peer_pin_cmp(const void *x, const void *y)
{
	const struct dv_peer_pin *a = x, *b = y;
	int c = memcmp(a->addr.bytes, b->addr.bytes, sizeof(a->addr.bytes));

	return c ? c : (int)a->port - (int)b->port;
}

/* Service index of addr:port in p, or SIZE_MAX. */
static size_t service_of(const struct plan *p, const struct dv_addr *a, uint16_t port)
{
	for (size_t i = 0; i < p->rs.n_services; i++)
		if (dv_addr_eq(&p->svc[i].vipa, a) && p->svc[i].ports[0] == port)
			return i;
	return SIZE_MAX;
}

static size_t target_index(const struct dv_dist_service *svc, const char *name)
{
	for (size_t k = 0; k < svc->n_targets; k++)
		if (strcmp(svc->targets[k].name, name) == 0)
			return k;
	return SIZE_MAX;
}

static const char *node_name(const struct dv_dist *d, dv_nodeid_t id)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		if (d->nodes[i].id == id)
			return d->nodes[i].name;
	return NULL;
}

/* The elements of pins[0..n) (those not in skip[0..n_skip), both sorted)
 * for service i, target mark `mark`. The number written. */
static size_t pin_elements(FILE *f, const struct dv_dist_service *svc, const struct dv_peer_pin *pins, size_t n,
			   const struct dv_peer_pin *skip, size_t n_skip, uint32_t mark)
{
	char ab[DV_ADDR_STRLEN];
	size_t w = 0;

	for (size_t k = 0; k < n; k++) {
		if (n_skip && bsearch(&pins[k], skip, n_skip, sizeof(*skip), dist_peer_pin_cmp))
			continue;
		fprintf(f, "%s%s . %u . %u", w++ ? ",\n" : "", dv_addr_fmt(&pins[k].addr, ab), pins[k].port,
			svc->ports[0]);
		if (svc->vipa.family == AF_INET)
			fprintf(f, " : %u", mark);
		else
			fprintf(f, " . %u", mark);
	}
	return w;
}

/*
 * Put list l into this node's pins of service i (new: only those not in
 * old[0..n_old), already there). A key pinned to another target makes the
 * transaction fail: then one element at a time, keeping what the kernel
 * takes. Logs what fails.
 */
static void load_list(struct dv_dist *d, const struct plan *p, size_t i, const struct pin_list *l,
		      const struct dv_peer_pin *old, size_t n_old)
{
	const struct dv_dist_service *svc = &p->svc[i];
	const char *name = node_name(d, l->node);
	size_t k = name ? target_index(svc, name) : SIZE_MAX, n, failed = 0;
	_cleanup_free_ char *text = NULL, *err = NULL;
	size_t len = 0;
	FILE *f;

	if (k == SIZE_MAX || !l->n)
		return;
	f = open_memstream(&text, &len);
	if (!f)
		return;
	fprintf(f, "add element netdev %s s%zu_vcrt {\n", DV_DIST_TABLE, i);
	n = pin_elements(f, svc, l->pins, l->n, old, n_old, (uint32_t)k + 1);
	fputs("\n}\n", f);
	if (fclose(f) != 0 || !n)
		return;
	if (dv_knft_run(d->nft, text, &err) == 0) {
		log_info("distributed VIPAs: %zu connection(s) of '%s' pinned here for a takeover", n, name);
		return;
	}
	/* One transaction each costs milliseconds in the daemon's loop. */
	if (n > MAX_ONE_BY_ONE) {
		log_err("distributed VIPAs: %zu connection(s) of '%s' could not be pinned here: %s", n, name,
			err ? err : "nft failed");
		return;
	}
	for (size_t j = 0; j < l->n; j++) {
		_cleanup_free_ char *one = NULL, *e1 = NULL;
		size_t olen = 0;
		FILE *g;

		if (n_old && bsearch(&l->pins[j], old, n_old, sizeof(*old), dist_peer_pin_cmp))
			continue;
		g = open_memstream(&one, &olen);
		if (!g)
			return;
		fprintf(g, "add element netdev %s s%zu_vcrt {\n", DV_DIST_TABLE, i);
		pin_elements(g, svc, &l->pins[j], 1, NULL, 0, (uint32_t)k + 1);
		fputs("\n}\n", g);
		if (fclose(g) != 0 || dv_knft_run(d->nft, one, &e1) < 0)
			failed++;
	}
	log_err("distributed VIPAs: %zu of %zu connection(s) of '%s' could not be pinned here (%s)", failed, n, name,
		err ? err : "nft failed");
}

/* The lists not in this node's table yet, where it does not distribute. */
static void load_lists(struct dv_dist *d, const struct dv_dist_env *env, const struct plan *p)
{
	if (!d->shape || d->replacing)
		return;
	for (size_t j = 0; j < d->n_lists; j++) {
		struct pin_list *l = &d->lists[j];
		size_t i;

		if (l->loaded)
			continue;
		i = service_of(p, &l->addr, l->port);
		if (i == SIZE_MAX)
			continue;
		/* On the distributor too: one that just took over has no pins
		 * of the lists sent after the membership changed. */
		load_list(d, p, i, l, NULL, 0);
		l->loaded = true;
	}
}

void dv_dist_pins(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_event *ev)
{
	struct pin_list *l = NULL;
	struct dv_peer_pin *pins = NULL, *old;
	size_t n_old = 0;

	if (!d || !dv_dist_find(env->conf, &ev->dist_pins.addr))
		return;
	for (size_t j = 0; j < d->n_lists && !l; j++)
		if (d->lists[j].node == ev->node && d->lists[j].port == ev->dist_pins.port &&
		    dv_addr_eq(&d->lists[j].addr, &ev->dist_pins.addr))
			l = &d->lists[j];
	if (!l) {
		struct pin_list *nl;

		if (d->n_lists == MAX_PIN_LISTS) {
			log_err("distributed VIPAs: more than %d lists of connections to pin: those of node %u "
				"are not kept",
				MAX_PIN_LISTS, ev->node);
			return;
		}
		nl = realloc(d->lists, (d->n_lists + 1) * sizeof(*nl));
		if (!nl)
			return;
		d->lists = nl;
		l = &d->lists[d->n_lists++];
		*l = (struct pin_list){.node = ev->node, .addr = ev->dist_pins.addr, .port = ev->dist_pins.port};
	}
	if (ev->dist_pins.n) {
		pins = malloc(ev->dist_pins.n * sizeof(*pins));
		if (!pins)
			return;
		memcpy(pins, ev->dist_pins.pins, ev->dist_pins.n * sizeof(*pins));
		qsort(pins, ev->dist_pins.n, sizeof(*pins), dist_peer_pin_cmp);
	}
	old = l->pins;
	n_old = l->loaded ? l->n : 0;
	l->pins = pins;
	l->n = ev->dist_pins.n;
	/* Loaded now if the table is there: only what is new (a pin whose
	 * connection ended goes by its timeout). */
	if (l->loaded && d->shape && !d->replacing) {
		struct plan *p = NULL;
		size_t i;

		dist_refresh_nodes(d, env);
		if (plan_build(d, env, &p) == 0) {
			i = service_of(p, &l->addr, l->port);
			if (i != SIZE_MAX)
				load_list(d, p, i, l, old, n_old);
			plan_free(p);
		}
	} else {
		l->loaded = false;
	}
	free(old);
}

/* The digest of a slot table: what changed since the last list. */
static uint32_t slots_digest(const struct dv_dist_service *svc)
{
	return dv_jhash(svc->slots, svc->m * sizeof(uint32_t), svc->m);
}

/*
 * This node's established connections of each service it is a target of
 * that the table does not send to it: a distributor that takes over
 * without their pins would send their packets elsewhere (reset). For the
 * hash methods, sent when the slots change (only connections that started
 * before a change can be misplaced: newer ones go where the table says).
 * A draw (ROUNDROBIN, WEIGHTEDACTIVE) cannot be computed again: all of
 * them, when the membership changes too (the distributor may have gone).
 * Until a new distributor has them, their packets find no socket on it
 * and are dropped (the targets' table), not refused: the client sends
 * them again.
 */
static void send_misplaced(struct dv_dist *d, const struct dv_dist_env *env, const struct plan *p)
{
	struct dv_peer *peers = NULL;

	if (!env->submit || !env->sockdiag || !env->in_group)
		return;
	d->send_due = false;
	for (size_t i = 0; i < p->rs.n_services; i++) {
		const struct dv_dist_service *svc = &p->svc[i];
		const char *me = node_name(d, dv_engine_self(env->engine));
		size_t self = me ? target_index(svc, me) : SIZE_MAX, n = 0, n_pins = 0;
		bool hashed = dv_dist_rules_hashed(svc->method);
		/* A draw's pins do not move with its slots (WEIGHTEDACTIVE's
		 * change every second): its lists only follow the membership. */
		uint32_t digest = hashed ? slots_digest(svc) : d->members_digest;
		struct pins_sent *ps = NULL;
		struct dv_peer_pin *pins;
		struct dv_event ev;
		int r;

		if (self == SIZE_MAX || !dist_self_is_target(d, env, dv_dist_find(env->conf, &svc->vipa)))
			continue;
		for (size_t j = 0; j < d->n_sent && !ps; j++)
			if (d->sent[j].port == svc->ports[0] && dv_addr_eq(&d->sent[j].addr, &svc->vipa))
				ps = &d->sent[j];
		if (ps && ps->digest == digest)
			continue;
		if (!peers && !(peers = calloc(DV_DIST_PINS_MAX, sizeof(*peers))))
			return;
		r = dv_sockdiag_peers(env->sockdiag, &svc->vipa, svc->ports[0], peers, DV_DIST_PINS_MAX, &n);
		if (r == -E2BIG)
			log_err("distributed VIPAs: more than %d connections on %s port %u here: only the first are "
				"kept through a takeover",
				DV_DIST_PINS_MAX, dv_addr_fmt(&svc->vipa, (char[DV_ADDR_STRLEN]){0}), svc->ports[0]);
		else if (r < 0) {
			log_err("distributed VIPAs: cannot list the connections of this target: %s", strerror(-r));
			continue;
		}
		/* Those the table sends elsewhere, in place (dv_peer and
		 * dv_peer_pin alike: address, port). */
		pins = (struct dv_peer_pin *)peers;
		for (size_t k = 0; k < n; k++) {
			uint8_t key[DV_NFT_KEY_MAX];
			size_t len = dv_nft_key_addr_port(&peers[k].addr, peers[k].port, key);

			if (!hashed || svc->slots[dv_nft_jhash_mod(key, len, svc->seed, svc->m)] != self)
				pins[n_pins++] = (struct dv_peer_pin){.addr = peers[k].addr, .port = peers[k].port};
		}
		ev = (struct dv_event){.type = DV_EV_DIST_PINS};
		ev.dist_pins.addr = svc->vipa;
		ev.dist_pins.port = svc->ports[0];
		ev.dist_pins.n = n_pins;
		ev.dist_pins.pins = n_pins ? pins : NULL;
		env->submit(env->ud, &ev);
		if (!ps) {
			struct pins_sent *ns = realloc(d->sent, (d->n_sent + 1) * sizeof(*ns));

			if (!ns)
				continue;
			d->sent = ns;
			ps = &d->sent[d->n_sent++];
			*ps = (struct pins_sent){.addr = svc->vipa, .port = svc->ports[0]};
		}
		ps->digest = digest;
		if (n_pins)
			log_info("distributed VIPAs: %zu of %zu connection(s) on %s port %u go elsewhere by the table: "
				 "sent for a takeover",
				 n_pins, n, dv_addr_fmt(&svc->vipa, (char[DV_ADDR_STRLEN]){0}), svc->ports[0]);
	}
	free(peers);
}

/* ---- records for dvipactl targets ---- */

static const char *target_state(const struct dv_dist_env *env, const struct target *t,
				const struct dv_dist_service *svc, size_t pi, bool reachable)
{
	if (!reachable)
		return "no address";
	if (!dv_engine_quorate(env->engine) || !dv_engine_is_member(env->engine, t->node->id))
		return "not a member";
	if (dv_engine_node_left(env->engine, t->node->id))
		return "left";
	if (dv_engine_quiesced(env->engine, &svc->vipa, svc->ports[0], t->node->id))
		return "quiesced";
	if (t->ready & DV_AS_READY(pi))
		return "ready";
	return "not listening";
}

static int statement_records(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s,
			     struct dv_records *out)
{
	struct target t[DV_ENGINE_MAX_NODES];
	struct dv_vipa_info v;
	struct plan *p = plan_new(s, 1);
	size_t n = targets_of(d, env, s, t);
	const char *distributor = NULL;
	char ab[DV_ADDR_STRLEN], range[16];
	struct dv_port_slice sl;
	int r;

	if (!p)
		return -ENOMEM;
	if (dv_engine_lookup(env->engine, &s->addr, &v) == 0 && v.owner)
		distributor = dv_engine_node_name(env->engine, v.owner);
	dv_addr_fmt(&s->addr, ab);
	r = plan_statement(d, env, s, p);
	for (size_t i = 0; r == 0 && i < p->rs.n_services; i++) {
		const struct dv_dist_service *svc = &p->svc[i];

		for (size_t k = 0; r == 0 && k < n; k++) {
			size_t kk = svc->n_targets, slots = 0;
			bool ready;

			/* Its index in the service, if this node can reach it. */
			for (size_t j = 0; j < svc->n_targets && kk == svc->n_targets; j++)
				if (strcmp(svc->targets[j].name, t[k].node->name) == 0)
					kk = j;
			for (uint32_t j = 0; kk < svc->n_targets && j < svc->m; j++)
				slots += svc->slots[j] == kk;
			ready = kk < svc->n_targets && (t[k].ready & DV_AS_READY(i));
			dv_records_begin(out, DV_REC_TARGET);
			dv_msgb_field_str(out->b, "addr", ab);
			dv_msgb_field_u64(out->b, "port", svc->ports[0]);
			dv_msgb_field_str(out->b, "method", dv_dist_method_keyword(s->method));
			dv_msgb_field_str(out->b, "node", t[k].node->name);
			dv_msgb_field_u64(out->b, "nodeid", t[k].node->id);
			dv_msgb_field_str(out->b, "state", target_state(env, &t[k], svc, i, kk < svc->n_targets));
			dv_msgb_field_bool(out->b, "ready", ready);
			/* HOTSTANDBY: its rank; WEIGHTEDACTIVE: its WEIGHT;
			 * otherwise what it reported (ROUNDROBIN: 1). */
			dv_msgb_field_u64(out->b, "weight",
					  s->method == DV_DIST_HOTSTANDBY	? t[k].rank
					  : !ready				? 0
					  : s->method == DV_DIST_WEIGHTEDACTIVE ? dest_weight(s, t[k].node->name)
										: weight_of(&t[k], i));
			dv_msgb_field_u64(out->b, "slots", slots);
			dv_msgb_field_u64(out->b, "m", svc->m);
			dv_msgb_field_str(out->b, "distributor", distributor ? distributor : "");
			/* SYSPLEXPORTS: the target's slice of the ports. */
			if (s->sysplexports && dv_engine_port_slice(env->engine, &s->addr, t[k].node->id, &sl)) {
				snprintf(range, sizeof(range), "%u-%u", sl.lo, sl.hi);
				dv_msgb_field_str(out->b, "source_ports", range);
			}
			r = dv_records_emit(out);
		}
	}
	plan_free(p);
	return r;
}

enum dv_result dv_dist_records(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
			       struct dv_records *out, char *reason, size_t size)
{
	bool found = false;
	char ab[DV_ADDR_STRLEN];

	dist_refresh_nodes(d, env);
	for (size_t i = 0; i < env->conf->n_distribute; i++) {
		const struct dv_conf_distribute *s = &env->conf->distribute[i];

		if (a && !dv_addr_eq(a, &s->addr))
			continue;
		found = true;
		if (statement_records(d, env, s, out) < 0)
			break; /* out of memory, or the reader went */
	}
	if (a && !found) {
		snprintf(reason, size, "%s is not distributed (no VIPADISTRIBUTE of it here)", dv_addr_fmt(a, ab));
		return DV_R_NOTHELD;
	}
	return DV_R_OK;
}

/* ---- dvipactl quiesce / resume ---- */

static bool distributes_port(const struct dv_conf_distribute *s, uint16_t port)
{
	for (size_t i = 0; i < s->n_ports; i++)
		if (s->ports[i] == port)
			return true;
	return false;
}

enum dv_result dv_dist_quiesce_check(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
				     const char *node, uint16_t port, char *reason, size_t size)
{
	const struct dv_conf_distribute *s = dv_dist_find(env->conf, a);
	struct target t[DV_ENGINE_MAX_NODES];
	const char *name = node && node[0] ? node : env->conf->node;
	char ab[DV_ADDR_STRLEN];
	bool target = false;
	size_t n;

	dv_addr_fmt(a, ab);
	if (!s) {
		snprintf(reason, size, "%s is not distributed (no VIPADISTRIBUTE of it here)", ab);
		return DV_R_NOTHELD;
	}
	if (!d) {
		snprintf(reason, size, "distributed VIPAs are not available on this node (see its log)");
		return DV_R_INTERNAL;
	}
	if (port && !distributes_port(s, port)) {
		snprintf(reason, size, "port %u of %s is not distributed", port, ab);
		return DV_R_BADREQ;
	}
	dist_refresh_nodes(d, env);
	n = targets_of(d, env, s, t);
	for (size_t k = 0; k < n; k++)
		target |= strcmp(t[k].node->name, name) == 0;
	if (!target) {
		snprintf(reason, size, "node '%s' is not a target of %s", name, ab);
		return DV_R_NOTHELD;
	}
	return DV_R_OK;
}

/* ---- dvipactl conns: the pins of the distributor's maps ---- */

/*
 * Pins one reply shows at most; the dump stops after one more. The
 * kernel's dump of a set walks it from its start for every datagram, so
 * its cost grows with the square of the pins dumped: all of 262,000 took
 * 3.2 to 6.8 s here (load 11 to 12), far too long for dvipad's loop; the
 * first 20,001 of them 18 to 52 ms.
 */
#define MAX_CONNS_SHOWN 20000u

struct pin {
	struct dv_addr client;
	uint16_t client_port;
	uint32_t mark;
	uint64_t expires_ms;
};

static int pin_cmp(const void *x, const void *y)
{
	const struct pin *a = x, *b = y;
	int c = memcmp(a->client.bytes, b->client.bytes, sizeof(a->client.bytes));

	return c ? c : (int)a->client_port - (int)b->client_port;
}

/* Pins of one service as the dump gives them (struct dv_knft_elem). */
struct pin_walk {
	int family;
	uint16_t port;
	bool with_mark; /* IPv6 pins: the mark is the key's last field */
	bool more;	/* stopped at MAX_CONNS_SHOWN */
	struct pin *v;
	size_t n, cap;
	uint64_t *open; /* if given: open pins counted by mark - 1, none kept */
	size_t n_open;
};

/* A pin with DV_DIST_PIN_CLOSE_S or less left: its client sent a FIN or
 * RST (or it has been idle for two hours). */
static bool pin_closing(uint64_t expires_ms)
{
	return expires_ms <= DV_DIST_PIN_CLOSE_S * 1000;
}

static int pin_elem(void *ud, const struct dv_knft_elem *e)
{
	struct pin_walk *w = ud;
	size_t alen = w->family == AF_INET ? 4 : 16;
	struct pin x = {.expires_ms = e->expires_ms};
	uint16_t cport, sport;

	/* address . client port . VIPA port [. mark], each field 4-aligned */
	if (e->key_len != alen + 8 + (w->with_mark ? 4 : 0))
		return 0;
	memcpy(&cport, e->key + alen, 2);
	memcpy(&sport, e->key + alen + 4, 2);
	if (ntohs(sport) != w->port)
		return 0;
	x.client.family = w->family;
	memcpy(x.client.bytes, e->key, alen);
	x.client_port = ntohs(cport);
	if (w->with_mark)
		memcpy(&x.mark, e->key + alen + 8, 4);
	else if (e->data && e->data_len == 4)
		memcpy(&x.mark, e->data, 4);
	if (w->open) {
		if (!pin_closing(x.expires_ms) && x.mark >= 1 && x.mark <= w->n_open)
			w->open[x.mark - 1]++;
		return 0;
	}
	if (w->n == MAX_CONNS_SHOWN) {
		w->more = true;
		return -E2BIG;
	}
	if (w->n == w->cap) {
		size_t nc = w->cap ? 2 * w->cap : 256;
		struct pin *nv = realloc(w->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		w->v = nv;
		w->cap = nc;
	}
	w->v[w->n++] = x;
	return 0;
}

/* The pins of service i, sorted, the first MAX_CONNS_SHOWN of them:
 * -errno, reason set. */
static int list_pins(size_t i, const struct dv_dist_service *svc, struct pin_walk *pins, char *reason, size_t size)
{
	char set[32];
	int r;

	*pins = (struct pin_walk){.family = svc->vipa.family, .port = svc->ports[0]};
	pins->with_mark = svc->vipa.family == AF_INET6;
	snprintf(set, sizeof(set), "s%zu_vcrt", i);
	r = dv_knft_elements(set, pin_elem, pins);
	if (r == -E2BIG && pins->more)
		r = 0;
	if (r < 0) {
		snprintf(reason, size, "cannot read %s of table 'netdev %s': %s", set, DV_DIST_TABLE, strerror(-r));
		free(pins->v);
		pins->v = NULL;
		return r;
	}
	qsort(pins->v, pins->n, sizeof(*pins->v), pin_cmp);
	return 0;
}

static int service_conns(const struct dv_dist_service *svc, const struct pin_walk *pins, struct dv_records *out)
{
	char ab[DV_ADDR_STRLEN], cb[DV_ADDR_STRLEN];
	int r = 0;

	dv_addr_fmt(&svc->vipa, ab);
	for (size_t k = 0; k < pins->n && r == 0; k++) {
		const struct pin *p = &pins->v[k];
		bool closing = pin_closing(p->expires_ms);

		dv_records_begin(out, DV_REC_CONN);
		dv_msgb_field_str(out->b, "addr", ab);
		dv_msgb_field_u64(out->b, "port", svc->ports[0]);
		dv_msgb_field_str(out->b, "client", dv_addr_fmt(&p->client, cb));
		dv_msgb_field_u64(out->b, "client_port", p->client_port);
		dv_msgb_field_str(out->b, "target",
				  p->mark >= 1 && p->mark <= svc->n_targets ? svc->targets[p->mark - 1].name : "?");
		dv_msgb_field_str(out->b, "state", closing ? "closing" : "open");
		dv_msgb_field_u64(out->b, "expires_ms", p->expires_ms);
		r = dv_records_emit(out);
	}
	return r;
}

enum dv_result dv_dist_conns(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
			     struct dv_records *out, char *reason, size_t size)
{
	struct plan *p = NULL;
	_cleanup_free_ char *shape = NULL;
	struct pin_walk *walks;
	enum dv_result res = DV_R_OK;
	size_t total = 0;
	bool found = false, steered = false, more = false;
	char ab[DV_ADDR_STRLEN];
	int r;

	if (a && !dv_dist_find(env->conf, a)) {
		if (d && dist_move_routes(d, a))
			return dist_move_conns(d, a, out) < 0 ? DV_R_INTERNAL : DV_R_OK;
		snprintf(reason, size, "%s is not distributed (no VIPADISTRIBUTE of it here) and not MOVING elsewhere",
			 dv_addr_fmt(a, ab));
		return DV_R_NOTHELD;
	}
	if (!d)
		return DV_R_OK; /* nothing distributed here: no pins */
	dist_refresh_nodes(d, env);
	r = plan_build(d, env, &p);
	if (r < 0) {
		snprintf(reason, size, "cannot compute the table: %s", strerror(-r));
		return DV_R_INTERNAL;
	}
	shape = shape_of(p);
	/* The service numbers of the kernel's table are those of this plan
	 * only while its shape is the one loaded. */
	if (p->rs.n_services && (!shape || !d->shape || strcmp(shape, d->shape) != 0)) {
		snprintf(reason, size, "table 'netdev %s' is being loaded: try again", DV_DIST_TABLE);
		plan_free(p);
		return DV_R_INTERNAL;
	}
	/* All pins first: a reply cut short would look complete. */
	walks = calloc(p->rs.n_services ? p->rs.n_services : 1, sizeof(*walks));
	if (!walks) {
		plan_free(p);
		snprintf(reason, size, "out of memory");
		return DV_R_INTERNAL;
	}
	for (size_t i = 0; i < p->rs.n_services && r == 0; i++) {
		const struct dv_dist_service *svc = &p->svc[i];

		if (a && !dv_addr_eq(a, &svc->vipa))
			continue;
		found = true;
		if (!svc->distributing)
			continue;
		steered = true;
		r = list_pins(i, svc, &walks[i], reason, size);
		total += walks[i].n;
		more |= walks[i].more;
	}
	if (r == 0 && (more || total > MAX_CONNS_SHOWN)) {
		snprintf(reason, size, "more than %u pinned connections%s%s: dvipactl conns shows at most %u",
			 MAX_CONNS_SHOWN, a ? " of " : "", a ? dv_addr_fmt(a, ab) : "", MAX_CONNS_SHOWN);
		res = DV_R_LIMIT;
	} else if (r < 0) {
		res = DV_R_KERNEL;
	}
	for (size_t i = 0; res == DV_R_OK && r == 0 && i < p->rs.n_services; i++)
		if (walks[i].v)
			r = service_conns(&p->svc[i], &walks[i], out);
	for (size_t i = 0; i < p->rs.n_services; i++)
		free(walks[i].v);
	free(walks);
	plan_free(p);
	if (res != DV_R_OK)
		return res;
	if (a && found && !steered) {
		struct dv_vipa_info v;
		const char *who = dv_engine_lookup(env->engine, a, &v) == 0 && v.owner
					  ? dv_engine_node_name(env->engine, v.owner)
					  : NULL;

		snprintf(reason, size, "this node does not distribute %s%s%s%s: its pins are on the distributor",
			 dv_addr_fmt(a, ab), who ? " (" : "", who ? who : "", who ? " does)" : "");
		return DV_R_NOTHELD;
	}
	if (!a && dist_move_conns(d, NULL, out) < 0)
		return DV_R_INTERNAL;
	return DV_R_OK;
}

/* ---- WEIGHTEDACTIVE: the distributor counts its open connections ---- */

/* Count the open pins of each WEIGHTEDACTIVE service; when a count changed,
 * ask for a sync, which shares the slots again (wa_slots). */
static int wa_tick(sd_event_source *src, uint64_t usec, void *ud)
{
	struct dv_dist *d = ud;
	uint64_t t0 = dv_mono_us(), spent;
	bool changed = false;

	for (size_t j = 0; j < d->n_wa; j++) {
		struct wa_service *ws = &d->wa[j];
		uint64_t open[DV_ENGINE_MAX_NODES] = {0};
		struct pin_walk w = {.family = ws->addr.family,
				     .port = ws->port,
				     .with_mark = ws->addr.family == AF_INET6,
				     .open = open,
				     .n_open = ws->n};
		char set[32];
		int r;

		snprintf(set, sizeof(set), "s%zu_vcrt", ws->i);
		r = dv_knft_elements(set, pin_elem, &w);
		if (r < 0) {
			/* -ENOENT: the table is being loaded; counted next time. */
			if (r != -ENOENT)
				log_err("distributed VIPAs: cannot count the connections of %s port %u: %s",
					dv_addr_fmt(&ws->addr, (char[DV_ADDR_STRLEN]){0}), ws->port, strerror(-r));
			continue;
		}
		if (memcmp(open, ws->active, ws->n * sizeof(*open)) != 0) {
			memcpy(ws->active, open, ws->n * sizeof(*open));
			changed = true;
		}
	}
	if (changed && d->resync)
		d->resync(d->ud);
	/* Listing a large pin map takes long in the loop: at most a twentieth
	 * of its time. */
	spent = dv_mono_us() - t0;
	(void)sd_event_source_set_time_relative(src, spent * 20 > WA_TICK_US ? spent * 20 : WA_TICK_US);
	return 0;
}

/* The WEIGHTEDACTIVE services of plan p that this node distributes, their
 * counts kept (by node), and the timer that counts them while any. */
static void wa_track(struct dv_dist *d, const struct plan *p)
{
	struct wa_service *wa = NULL;
	size_t n = 0;

	for (size_t i = 0; i < p->rs.n_services; i++) {
		const struct dv_dist_service *svc = &p->svc[i];
		const struct wa_service *old = wa_find(d, &svc->vipa, svc->ports[0]);
		struct wa_service *ws, *grown;

		if (svc->method != DV_DIST_WEIGHTEDACTIVE || !svc->distributing)
			continue;
		grown = realloc(wa, (n + 1) * sizeof(*wa));
		if (!grown)
			break;
		wa = grown;
		ws = &wa[n++];
		*ws = (struct wa_service){.i = i, .addr = svc->vipa, .port = svc->ports[0], .n = svc->n_targets};
		for (size_t k = 0; k < svc->n_targets; k++) {
			for (size_t j = 0; j < d->n_nodes; j++)
				if (strcmp(d->nodes[j].name, svc->targets[k].name) == 0)
					ws->node[k] = d->nodes[j].id;
			for (size_t j = 0; old && j < old->n; j++)
				if (old->node[j] == ws->node[k])
					ws->active[k] = old->active[j];
		}
	}
	free(d->wa);
	d->wa = wa;
	d->n_wa = n;
	if (!n) {
		d->wa_timer = sd_event_source_disable_unref(d->wa_timer);
		return;
	}
	if (!d->wa_timer &&
	    sd_event_add_time_relative(d->ev, &d->wa_timer, CLOCK_MONOTONIC, WA_TICK_US, 100000, wa_tick, d) >= 0)
		(void)sd_event_source_set_enabled(d->wa_timer, SD_EVENT_ON);
}

/* ---- lo and the interface's ARP settings ---- */

static int sysctl_path(const struct dv_dist *d, const char *key, char *buf, size_t len)
{
	return snprintf(buf, len, "/proc/sys/net/ipv4/conf/%s/%s", d->ifname, key) < (int)len ? 0 : -ENAMETOOLONG;
}

static int sysctl_get(const struct dv_dist *d, const char *key, char *ret, size_t len)
{
	char path[128];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if (sysctl_path(d, key, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, ret, len - 1);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	while (n > 0 && ret[n - 1] == '\n')
		n--;
	ret[n] = '\0';
	return 0;
}

static int sysctl_set(const struct dv_dist *d, const char *key, const char *value)
{
	char path[128];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);

	if (sysctl_path(d, key, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write(fd, value, len) == (ssize_t)len ? 0 : -errno;
}

/*
 * What lo's addresses need from the interface's ARP settings. A target's
 * distributed VIPAs must not be answered for (arp_ignore=1: only addresses
 * of the receiving interface). Neither they nor an address MOVING here
 * (dist_move.c) may be the source of the node's ARP requests
 * (arp_announce=2), or the neighbours would learn them at this node. A
 * MOVING address is not answered for by the moves table instead: it drops
 * those ARP requests, and arp_ignore stays 0 for the ROUTED ranges (which
 * need it). The settings as they were are kept from the first change and
 * restored after the last.
 */
void dist_arp_settings(struct dv_dist *d, bool targets)
{
	bool ignore = targets, announce = targets || d->n_here;
	int r = 0;

	if (ignore == d->arp_ignore_set && announce == d->arp_announce_set)
		return;
	if ((ignore || announce) && !d->arp_ignore_set && !d->arp_announce_set) {
		r = sysctl_get(d, "arp_ignore", d->arp_ignore, sizeof(d->arp_ignore));
		if (r == 0)
			r = sysctl_get(d, "arp_announce", d->arp_announce, sizeof(d->arp_announce));
		if (r < 0) {
			log_err("cannot read arp_ignore, arp_announce of '%s': %s: this node may answer ARP for the "
				"addresses it has on lo",
				d->ifname, strerror(-r));
			return;
		}
	}
	r = sysctl_set(d, "arp_ignore", ignore ? "1" : d->arp_ignore);
	if (r == 0)
		r = sysctl_set(d, "arp_announce", announce ? "2" : d->arp_announce);
	if (r < 0) {
		log_err("cannot set arp_ignore=%s, arp_announce=%s on '%s': %s", ignore ? "1" : d->arp_ignore,
			announce ? "2" : d->arp_announce, d->ifname, strerror(-r));
		return;
	}
	log_info("'%s': arp_ignore=%s, arp_announce=%s (%s; were %s, %s)", d->ifname, ignore ? "1" : d->arp_ignore,
		 announce ? "2" : d->arp_announce,
		 ignore	    ? "distributed VIPAs on lo"
		 : announce ? "addresses MOVING here on lo"
			    : "nothing on lo",
		 d->arp_ignore, d->arp_announce);
	d->arp_ignore_set = ignore;
	d->arp_announce_set = announce;
}

void dist_lo_del(struct dv_dist *d, const struct dv_addr *a)
{
	char s[DV_ADDR_STRLEN];

	dv_addr_fmt(a, s);
	if (dv_kaddr_del(d->lo, a) < 0)
		log_err("cannot remove '%s' from 'lo': %s", s, dv_kaddr_last_error(d->lo));
	else
		log_info("'%s' removed from 'lo'", s);
	(void)dv_addrset_del(&d->on_lo, a);
}

int dist_lo_add(struct dv_dist *d, const struct dv_addr *a)
{
	char s[DV_ADDR_STRLEN];
	int r = dv_kaddr_add(d->lo, a);

	if (r < 0) {
		log_err("cannot add '%s' to 'lo': %s", dv_addr_fmt(a, s), dv_kaddr_last_error(d->lo));
		return r;
	}
	r = dv_addrset_add(&d->on_lo, a);
	if (r < 0)
		log_err("distributed VIPAs: out of memory");
	return r;
}

static void sync_lo(struct dv_dist *d, const struct dv_dist_env *env)
{
	struct dv_addrset want = {0};
	bool targets;
	const struct dv_addr *a;
	char s[DV_ADDR_STRLEN];

	for (size_t i = 0; i < env->conf->n_distribute; i++) {
		const struct dv_conf_distribute *st = &env->conf->distribute[i];

		if (dist_self_is_target(d, env, st) && dv_addrset_add(&want, &st->addr) < 0)
			log_err("distributed VIPAs: out of memory");
	}
	targets = want.n > 0;
	/* Addresses MOVING here stay until dist_move.c ends them. */
	for (size_t i = 0; i < d->n_here; i++)
		if (dv_addrset_add(&want, &d->here[i].addr) < 0)
			log_err("distributed VIPAs: out of memory");
	/* Restart the walk after each removal: the set changes under it. */
	for (size_t i = 0; dv_addrset_next(&d->on_lo, &i, &a);)
		if (!dv_addrset_has(&want, a)) {
			struct dv_addr x = *a;

			dist_lo_del(d, &x);
			i = 0;
		}
	if (targets)
		dist_arp_settings(d, true);
	for (size_t i = 0; dv_addrset_next(&want, &i, &a);) {
		if (dv_addrset_has(&d->on_lo, a))
			continue;
		if (dist_lo_add(d, a) == 0)
			log_info("distributed VIPA '%s' added to 'lo' (target)", dv_addr_fmt(a, s));
	}
	if (!targets)
		dist_arp_settings(d, false);
	dv_addrset_clear(&want);
}

/* ---- the module ---- */

static bool keep_none(void *ud, const struct dv_addr *a)
{
	(void)ud;
	(void)a;
	return false;
}

int dv_dist_open(sd_event *ev, const char *ifname, unsigned lease_s, void (*resync)(void *ud), void *ud,
		 struct dv_dist **ret)
{
	struct dv_dist *d = calloc(1, sizeof(*d));
	struct dv_addr *local = NULL;
	size_t n_local = 0;
	int r;

	if (!d)
		return -ENOMEM;
	snprintf(d->ifname, sizeof(d->ifname), "%s", ifname);
	d->ev = sd_event_ref(ev);
	d->resync = resync;
	d->ud = ud;
	/* For tests: another file in /proc/stat's format (dvipad(8)). */
	dv_wlm_init(&d->cpu, getenv("DVIPAD_PROC_STAT") ? getenv("DVIPAD_PROC_STAT") : "/proc/stat");
	r = dv_knft_new(&d->nft);
	if (r < 0) {
		log_err("distributed VIPAs: cannot use libnftables: %s", strerror(-r));
		goto fail;
	}
	r = dv_knft_new(&d->mv_nft);
	if (r < 0) {
		log_err("moves: cannot use libnftables: %s", strerror(-r));
		goto fail;
	}
	r = dv_kaddr_open(ev, "lo", lease_s, NULL, d, &d->lo);
	if (r < 0) {
		log_err("distributed VIPAs: cannot use interface 'lo': %s", strerror(-r));
		goto fail;
	}
	/* A crash leaves the table (no lifetime) and lo's addresses (until
	 * their lease ends): neither may outlive the dvipad that made them. */
	remove_table(d);
	{
		_cleanup_free_ char *err = NULL;

		if (dv_knft_run(d->mv_nft,
				"add table netdev " DV_MOVE_TABLE "\ndelete table netdev " DV_MOVE_TABLE "\n",
				&err) < 0)
			log_err("cannot remove table 'netdev %s': %s", DV_MOVE_TABLE, err ? err : "nft failed");
	}
	r = dv_kaddr_reconcile(d->lo, keep_none, d, &local, &n_local);
	free(local);
	if (r > 0)
		log_notice("removed %d address(es) an earlier dvipad left on 'lo'", r);
	else if (r < 0)
		log_err("cannot read the addresses of 'lo': %s", strerror(-r));
	*ret = d;
	return 0;
fail:
	dv_dist_free(d);
	return r;
}

void dv_dist_sync(struct dv_dist *d, const struct dv_dist_env *env)
{
	struct plan *p = NULL;
	const struct dv_port_slice *sl;
	const dv_nodeid_t *m;
	size_t members;
	uint32_t digest;
	bool idle;
	int r;

	if (!d)
		return;
	/* Nothing configured and nothing of ours in the kernel or the
	 * engine: the common case costs nothing per event. */
	idle = env->conf->n_distribute == 0 && !d->shape && !dv_knft_busy(d->nft) &&
	       dv_engine_port_slices(env->engine, &sl) == 0;
	if (idle && d->on_lo.n == 0 && !d->n_moves && !d->n_here && !d->mv_shape)
		return;
	/* Addresses on lo first: a connection forwarded by the new table
	 * finds its target ready to take it. */
	dist_refresh_nodes(d, env);
	dist_move_sync(d, env);
	sync_lo(d, env);
	if (idle)
		return;
	dist_sync_slices(d, env);
	r = plan_build(d, env, &p);
	if (r < 0) {
		log_err("distributed VIPAs: cannot compute the table: %s", strerror(-r));
		return;
	}
	apply_table(d, p);
	wa_track(d, p);
	load_lists(d, env, p);
	members = dv_engine_members(env->engine, &m);
	digest = members ? dv_jhash(m, members * sizeof(*m), (uint32_t)members) : 0;
	if (digest != d->members_digest) {
		d->members_digest = digest;
		d->send_due = true;
	}
	if (d->send_due)
		send_misplaced(d, env, p);
	plan_free(p);
}

void dv_dist_reconfigured(struct dv_dist *d)
{
	if (d)
		d->have_nodes = false;
}

void dv_dist_stop(struct dv_dist *d)
{
	const struct dv_addr *a;

	if (!d)
		return;
	if (d->shape || dv_knft_busy(d->nft))
		remove_table(d);
	dist_move_stop(d);
	d->wa_timer = sd_event_source_disable_unref(d->wa_timer);
	d->n_wa = 0;
	for (size_t i = 0; dv_addrset_next(&d->on_lo, &i, &a);) {
		struct dv_addr x = *a;

		dist_lo_del(d, &x);
		i = 0;
	}
	dist_arp_settings(d, false);
}

struct dv_dist *dv_dist_free(struct dv_dist *d)
{
	if (!d)
		return NULL;
	forget_table(d);
	d->wa_timer = sd_event_source_disable_unref(d->wa_timer);
	free(d->wa);
	free(d->server);
	for (size_t i = 0; i < d->n_lists; i++)
		free(d->lists[i].pins);
	free(d->lists);
	free(d->sent);
	free(d->asked);
	dv_addrset_clear(&d->on_lo);
	d->lo = dv_kaddr_free(d->lo);
	d->nft = dv_knft_free(d->nft);
	for (size_t i = 0; i < d->n_moves; i++)
		free(d->moves[i].pins);
	free(d->moves);
	free(d->here);
	for (size_t i = 0; i < d->n_fwd; i++)
		free(d->fwd[i].pins);
	free(d->fwd);
	free(d->mv_shape);
	dv_addrset_clear(&d->mv_here_set);
	d->mv_timer = sd_event_source_disable_unref(d->mv_timer);
	d->mv_nft = dv_knft_free(d->mv_nft);
	sd_event_unref(d->ev);
	free(d);
	return NULL;
}
