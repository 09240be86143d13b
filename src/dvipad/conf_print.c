/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The normalized form of a configuration (dvipad -nv, dvipactl config): one
 * statement per line, keywords in full capitals, every default spelled out,
 * one address per VIPADEFINE/VIPABACKUP. It parses back to an equal
 * configuration, which the golden tests check.
 */
#include "conf.h"
#include "engine.h"

/* ---- names, one home each ---- */

const char *dv_policy_keyword(enum dv_range_policy p)
{
	switch (p) {
	case DV_POLICY_DISRUPTIVE:
		return "MOVEABLE DISRUPTIVE";
	case DV_POLICY_UNIQUE:
		return "UNIQUE";
	case DV_POLICY_NONDISRUPTIVE:
	default:
		return "MOVEABLE NONDISRUPTIVE";
	}
}

const char *dv_policy_name(enum dv_range_policy p)
{
	switch (p) {
	case DV_POLICY_DISRUPTIVE:
		return "disruptive";
	case DV_POLICY_UNIQUE:
		return "unique";
	case DV_POLICY_NONDISRUPTIVE:
	default:
		return "nondisruptive";
	}
}

const char *dv_origin_name(int origin)
{
	switch (origin) {
	case DV_ORIGIN_BIND:
		return "bind";
	case DV_ORIGIN_API:
		return "api";
	case DV_ORIGIN_OPERATOR:
		return "operator";
	case DV_ORIGIN_DEFINE:
		return "define";
	case DV_ORIGIN_BACKUP:
		return "backup";
	default:
		return "none";
	}
}

const char *dv_state_name(int state)
{
	switch (state) {
	case DV_VS_ACTIVE:
		return "active";
	case DV_VS_WAITING:
		return "waiting";
	default:
		return "inactive";
	}
}

/* ---- the normalized configuration ---- */

static void print_list(FILE *f, const char *kw, char *const *names, size_t n)
{
	if (!n)
		return;
	fprintf(f, " %s ", kw);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? "," : "", names[i]);
}

static void print_range(const struct dv_conf_range *r, FILE *f)
{
	char buf[DV_ADDR_STRLEN];

	fprintf(f, "  VIPARANGE DEFINE %s %s%s%s%s", dv_policy_keyword(r->policy), dv_prefix_fmt(&r->prefix, buf),
		r->bindwatch ? " BINDWATCH" : "", r->sourcevipa ? " SOURCEVIPA" : "", r->routed ? " ROUTED" : "");
	if (r->n_users || r->n_groups) {
		fputs(" ALLOW", f);
		print_list(f, "USER", r->users, r->n_users);
		print_list(f, "GROUP", r->groups, r->n_groups);
	}
	fputc('\n', f);
}

static void print_define(const struct dv_conf_define *d, FILE *f)
{
	char buf[DV_ADDR_STRLEN];
	const char *move = d->moveable == DV_MOVE_WHENIDLE    ? "MOVEABLE WHENIDLE "
			   : d->moveable == DV_MOVE_IMMEDIATE ? "MOVEABLE IMMEDIATE "
							      : "";

	dv_addr_fmt(&d->addr, buf);
	/* A backup without MOVEABLE IMMEDIATE still needs its length to round
	 * trip; VIPABACKUP accepts addr/len for that (z/OS does not). */
	if (d->rank == 255)
		fprintf(f, "  VIPADEFINE %s%s/%u", move, buf, d->plen);
	else
		fprintf(f, "  VIPABACKUP %u %s%s/%u", d->rank, move, buf, d->plen);
	if (d->trackport)
		fprintf(f, " TRACKPORT %u", d->trackport);
	fputc('\n', f);
}

static void print_distribute(const struct dv_conf_distribute *d, FILE *f)
{
	char buf[DV_ADDR_STRLEN];

	fprintf(f, "  VIPADISTRIBUTE DEFINE DISTMETHOD %s%s TIMEDAFFINITY %u %s PORT",
		dv_dist_method_keyword(d->method), d->sysplexports ? " SYSPLEXPORTS" : "", d->affinity_s,
		dv_addr_fmt(&d->addr, buf));
	for (size_t i = 0; i < d->n_ports; i++)
		fprintf(f, " %u", d->ports[i]);
	fputs(" DESTIP", f);
	if (d->dest_all)
		fputs(" ALL", f);
	for (size_t i = 0; i < d->n_dests; i++) {
		const struct dv_conf_dest *t = &d->dests[i];

		fprintf(f, " %s", t->node);
		if (t->weight)
			fprintf(f, " WEIGHT %u", t->weight);
		if (t->rank == DV_DIST_PREFERRED_RANK)
			fputs(" PREFERRED", f);
		else if (t->rank)
			fprintf(f, " BACKUP %u", t->rank);
	}
	fputc('\n', f);
}

void dv_conf_print(const struct dv_conf *c, FILE *f)
{
	bool block = c->n_defines || c->n_distribute;

	fprintf(f, "NODE %s\n", c->node);
	if (c->interface[0])
		fprintf(f, "INTERFACE %s\n", c->interface);
	if (c->cluster == DV_CLUSTER_COROSYNC)
		fprintf(f, "CLUSTER COROSYNC GROUP %s\n", c->group);
	else
		fputs("CLUSTER NONE\n", f);
	fprintf(f, "ANNOUNCE COUNT %u INTERVAL %u\n", c->announce_count, c->announce_interval_ms);
	fprintf(f, "PROBE COUNT %u INTERVAL %u\n", c->probe_count, c->probe_interval_ms);
	fprintf(f, "LEASE %u\n", c->lease_s);
	fprintf(f, "MAXUSERVIPAS %u\n", c->user_vipas);
	fprintf(f, "NICE %d\n", c->nice);
	if (c->metrics_port) {
		char s[DV_ADDR_STRLEN];
		bool v6 = c->metrics_addr.family == AF_INET6;

		fprintf(f, "METRICS LISTEN %s%s%s:%u\n", v6 ? "[" : "", dv_addr_fmt(&c->metrics_addr, s), v6 ? "]" : "",
			c->metrics_port);
	}

	for (size_t i = 0; i < c->n_ranges; i++)
		if (!c->ranges[i].deleted)
			block = true;
	if (!block)
		return;
	fputs("VIPADYNAMIC\n", f);
	for (size_t i = 0; i < c->n_ranges; i++)
		if (!c->ranges[i].deleted)
			print_range(&c->ranges[i], f);
	for (size_t i = 0; i < c->n_defines; i++)
		print_define(&c->defines[i], f);
	for (size_t i = 0; i < c->n_distribute; i++)
		print_distribute(&c->distribute[i], f);
	fputs("ENDVIPADYNAMIC\n", f);
}
