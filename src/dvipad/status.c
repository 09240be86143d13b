/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The records of STATUS and CONFIG answers, built on the daemon's side: the
 * owner of the state builds the records it shows, the control socket only
 * frames and relays them (control.c). Everything comes in through struct
 * dv_status_input (engine views, configuration, what is installed, the
 * pids of clients), so the records of a given state are fixed and a unit
 * test can check them (tests/unit/test_status.c). The one side effect is a
 * debug log line when a member's configuration disagrees with this node's.
 */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *node_name(const struct dv_engine *e, dv_nodeid_t n)
{
	const char *s = n ? dv_engine_node_name(e, n) : NULL;

	return s ? s : "";
}

struct status_ctx {
	const struct dv_status_input *in;
	struct dv_records *out;
};

/* The members where the define is deactivated, comma-separated: at most
 * every member; a name that does not fit ends the list. */
static void deactivated_on(const struct dv_engine *e, const struct dv_vipa_info *v, char *list, size_t size)
{
	size_t len = 0;

	list[0] = '\0';
	for (size_t i = 0; i < v->n_cands; i++) {
		int k;

		if (!v->cands[i].deactivated)
			continue;
		k = snprintf(list + len, size - len, "%s%s", len ? "," : "", node_name(e, v->cands[i].node));
		if (k < 0 || (size_t)k >= size - len) {
			list[len] = '\0';
			break;
		}
		len += (size_t)k;
	}
}

static int status_vipa(void *ud, const struct dv_vipa_info *v)
{
	struct status_ctx *sc = ud;
	const struct dv_status_input *in = sc->in;
	const struct dv_engine *e = in->engine;
	const struct dv_conf_range *r = dv_conf_find_range(in->conf, &v->addr);
	struct dv_records *out = sc->out;
	struct dv_msgb *b = out->b;
	char s[DV_ADDR_STRLEN], rs[DV_ADDR_STRLEN], list[DV_REASON_MAX], comm[16];
	pid_t pid;
	int ret;

	dv_addr_fmt(&v->addr, s);
	dv_records_begin(out, DV_REC_VIPA);
	dv_msgb_field_str(b, "addr", s);
	dv_msgb_field_str(b, "state", dv_state_name(v->state));
	dv_msgb_field_u64(b, "owner", v->owner);
	dv_msgb_field_str(b, "owner_name", node_name(e, v->owner));
	dv_msgb_field_str(b, "origin", dv_origin_name(v->origin));
	dv_msgb_field_u64(b, "since", v->since_ms);
	dv_msgb_field_str(b, "reason", v->reason ? v->reason : "");
	dv_msgb_field_bool(b, "installed", in->installed(in->ud, &v->addr));
	dv_msgb_field_str(b, "range", r ? dv_prefix_fmt(&r->prefix, rs) : "");
	dv_msgb_field_str(b, "policy", r ? dv_policy_name(r->policy) : "");
	deactivated_on(e, v, list, sizeof(list));
	dv_msgb_field_str(b, "deactivated_on", list);
	pid = v->owner != dv_engine_self(e) && in->lost_by ? in->lost_by(in->ud, &v->addr, comm, sizeof(comm)) : 0;
	dv_msgb_field_u64(b, "lost_pid", (uint64_t)pid);
	dv_msgb_field_str(b, "lost_command", pid ? comm : "");
	ret = dv_records_emit(out);

	for (size_t i = 0; i < v->n_holds; i++) {
		const struct dv_hold *h = &v->holds[i];
		bool local = h->node == dv_engine_self(e);

		pid = 0;
		comm[0] = '\0';
		if (local && in->hold_pid)
			pid = in->hold_pid(in->ud, h, &v->addr, comm, sizeof(comm));
		else if (local && h->client)
			pid = in->client_pid(in->ud, h->client);
		dv_records_begin(out, DV_REC_HOLD);
		dv_msgb_field_str(b, "addr", s);
		dv_msgb_field_str(b, "kind", dv_kind_name(h->kind));
		dv_msgb_field_u64(b, "node", h->node);
		dv_msgb_field_str(b, "node_name", node_name(e, h->node));
		dv_msgb_field_u64(b, "client", h->client);
		dv_msgb_field_u64(b, "uid", h->uid);
		dv_msgb_field_u64(b, "pid", (uint64_t)pid);
		dv_msgb_field_str(b, "command", pid ? comm : "");
		dv_msgb_field_u64(b, "since", h->since_ms);
		ret = dv_records_emit(out);
	}
	for (size_t i = 0; i < v->n_standbys; i++) {
		const struct dv_standby *sb = &v->standbys[i];
		bool local = sb->node == dv_engine_self(e);

		dv_records_begin(out, DV_REC_STANDBY);
		dv_msgb_field_str(b, "addr", s);
		dv_msgb_field_u64(b, "node", sb->node);
		dv_msgb_field_str(b, "node_name", node_name(e, sb->node));
		dv_msgb_field_u64(b, "client", sb->client);
		dv_msgb_field_u64(b, "rank", sb->rank);
		dv_msgb_field_u64(b, "uid", sb->uid);
		dv_msgb_field_u64(b, "pid", local && sb->client ? (uint64_t)in->client_pid(in->ud, sb->client) : 0);
		dv_msgb_field_u64(b, "since", sb->since_ms);
		ret = dv_records_emit(out);
	}
	if (in->moving) {
		struct dv_moving mv[DV_ENGINE_MAX_NODES];
		size_t n = in->moving(in->ud, &v->addr, mv, DV_ENGINE_MAX_NODES);

		for (size_t i = 0; i < n; i++) {
			dv_records_begin(out, DV_REC_MOVING);
			dv_msgb_field_str(b, "addr", s);
			dv_msgb_field_u64(b, "node", mv[i].node);
			dv_msgb_field_str(b, "node_name", node_name(e, mv[i].node));
			dv_msgb_field_u64(b, "connections", mv[i].connections);
			ret = dv_records_emit(out);
		}
	}
	return ret < 0 ? -EPIPE : 0;
}

bool dv_status_config_disagrees(const struct dv_node_conf *mine, const struct dv_node_conf *other, char *why,
				size_t size)
{
	char s[DV_ADDR_STRLEN];

	for (int pass = 0; pass < 2; pass++) {
		const struct dv_node_conf *a = pass ? other : mine, *b = pass ? mine : other;

		for (size_t i = 0; i < a->n_ranges; i++) {
			const struct dv_conf_range *r = &a->ranges[i];
			const struct dv_conf_range *q = NULL;

			if (r->deleted)
				continue;
			for (size_t j = 0; j < b->n_ranges && !q; j++)
				if (!b->ranges[j].deleted && b->ranges[j].prefix.len == r->prefix.len &&
				    dv_addr_eq(&b->ranges[j].prefix.addr, &r->prefix.addr))
					q = &b->ranges[j];
			if (!q) {
				snprintf(why, size, "range %s only on %s", dv_prefix_fmt(&r->prefix, s), a->name);
				return true;
			}
			if (q->policy != r->policy) {
				snprintf(why, size, "range %s: %s on %s, %s on %s", dv_prefix_fmt(&r->prefix, s),
					 dv_policy_name(r->policy), a->name, dv_policy_name(q->policy), b->name);
				return true;
			}
		}
	}
	for (size_t i = 0; i < mine->n_defines; i++)
		for (size_t j = 0; j < other->n_defines; j++)
			if (mine->defines[i].rank == DV_RANK_DEFINE && other->defines[j].rank == DV_RANK_DEFINE &&
			    dv_addr_eq(&mine->defines[i].addr, &other->defines[j].addr)) {
				snprintf(why, size, "%s is a VIPADEFINE on both %s and %s",
					 dv_addr_fmt(&mine->defines[i].addr, s), mine->name, other->name);
				return true;
			}
	return false;
}

static int count_vipa(void *ud, const struct dv_vipa_info *v)
{
	(*(uint64_t *)ud)++;
	return 0;
}

/* A member's state digest at the latest check point it reported, and
 * whether it differs from this node's there (sync.h). */
static void status_member_digest(const struct dv_sync_info *sync, dv_nodeid_t node, struct dv_msgb *b)
{
	char hex[17] = "";
	bool differs = false;

	if (!sync)
		return;
	for (size_t i = 0; i < sync->n_members; i++) {
		const struct dv_sync_member *m = &sync->members[i];

		if (m->node != node || !m->known)
			continue;
		snprintf(hex, sizeof(hex), "%016" PRIx64, m->digest);
		differs = m->check == sync->check && m->digest != sync->digest;
	}
	dv_msgb_field_str(b, "digest", hex);
	dv_msgb_field_bool(b, "digest_differs", differs);
}

enum dv_result dv_status_records(const struct dv_status_input *in, const struct dv_addr *a, struct dv_records *out,
				 char *reason, size_t size)
{
	const struct dv_engine *e = in->engine;
	const struct dv_conf *conf = in->conf;
	struct dv_msgb *b = out->b;
	struct status_ctx sc = {.in = in, .out = out};
	const dv_nodeid_t *members;
	struct dv_node_conf mine;
	bool have_mine;
	size_t n_members;
	uint64_t nvipas = 0;

	(void)dv_engine_foreach(e, count_vipa, &nvipas);
	dv_records_begin(out, DV_REC_DAEMON);
	dv_msgb_field_str(b, "node", conf->node);
	dv_msgb_field_u64(b, "nodeid", dv_engine_self(e));
	dv_msgb_field_str(b, "cluster", conf->cluster == DV_CLUSTER_NONE ? "none" : "corosync");
	dv_msgb_field_bool(b, "quorate", dv_engine_quorate(e));
	dv_msgb_field_str(b, "interface", conf->interface);
	dv_msgb_field_str(b, "config", in->conf_path);
	dv_msgb_field_u64(b, "pid", (uint64_t)in->pid);
	dv_msgb_field_u64(b, "started", in->started_ms);
	dv_msgb_field_u64(b, "vipas", nvipas);
	dv_msgb_field_u64(b, "clients", in->n_clients);
	dv_msgb_field_u64(b, "queued_bytes", in->queued);
	if (in->gate)
		dv_msgb_field_str(b, "gate", in->gate);
	if (in->sync) {
		char hex[17];

		dv_msgb_field_str(b, "sync",
				  in->sync->exchanging ? "exchanging"
				  : in->sync->synced   ? "in sync"
						       : "joining");
		dv_msgb_field_u64(b, "exchanges", in->sync->exchanges);
		dv_msgb_field_u64(b, "check", in->sync->check);
		snprintf(hex, sizeof(hex), "%016" PRIx64, in->sync->digest);
		dv_msgb_field_str(b, "digest", in->sync->check ? hex : "");
	}
	(void)dv_records_emit(out);

	n_members = dv_engine_members(e, &members);
	have_mine = dv_engine_node_config(e, dv_engine_self(e), &mine) == 0;
	for (size_t i = 0; i < n_members; i++) {
		struct dv_node_conf other;
		char why[DV_REASON_MAX] = "";

		dv_records_begin(out, DV_REC_MEMBER);
		dv_msgb_field_u64(b, "nodeid", members[i]);
		dv_msgb_field_str(b, "name", node_name(e, members[i]));
		dv_msgb_field_bool(b, "self", members[i] == dv_engine_self(e));
		if (have_mine && members[i] != dv_engine_self(e) && dv_engine_node_config(e, members[i], &other) == 0 &&
		    dv_status_config_disagrees(&mine, &other, why, sizeof(why)))
			log_debug("configuration of node '%s' differs: %s", other.name, why);
		dv_msgb_field_str(b, "config_differs", why);
		dv_msgb_field_bool(b, "left", dv_engine_node_left(e, members[i]));
		status_member_digest(in->sync, members[i], b);
		(void)dv_records_emit(out);
	}

	if (a) {
		struct dv_vipa_info v;
		char s[DV_ADDR_STRLEN];

		if (dv_engine_lookup(e, a, &v) < 0) {
			snprintf(reason, size, "address %s is not a known VIPA", dv_addr_fmt(a, s));
			return DV_R_NOTHELD;
		}
		(void)status_vipa(&sc, &v);
	} else {
		(void)dv_engine_foreach(e, status_vipa, &sc);
	}
	return DV_R_OK;
}

static void join_names(char *buf, size_t size, char **names, size_t n)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "", names[i]);
}

void dv_status_config(const struct dv_conf *conf, struct dv_records *out)
{
	struct dv_msgb *b = out->b;
	char s[DV_ADDR_STRLEN], names[1024];
	char *text = NULL, *save = NULL;
	size_t len = 0;
	FILE *f;

	for (size_t i = 0; i < conf->n_ranges; i++) {
		const struct dv_conf_range *r = &conf->ranges[i];

		dv_records_begin(out, DV_REC_RANGE);
		dv_msgb_field_str(b, "range", dv_prefix_fmt(&r->prefix, s));
		dv_msgb_field_str(b, "policy", dv_policy_name(r->policy));
		dv_msgb_field_bool(b, "deleted", r->deleted);
		join_names(names, sizeof(names), r->users, r->n_users);
		dv_msgb_field_str(b, "users", names);
		join_names(names, sizeof(names), r->groups, r->n_groups);
		dv_msgb_field_str(b, "groups", names);
		dv_msgb_field_u64(b, "line", r->line);
		(void)dv_records_emit(out);
	}
	for (size_t i = 0; i < conf->n_defines; i++) {
		const struct dv_conf_define *df = &conf->defines[i];

		dv_records_begin(out, DV_REC_DEFINE);
		dv_msgb_field_str(b, "addr", dv_addr_fmt(&df->addr, s));
		dv_msgb_field_u64(b, "rank", df->rank);
		dv_msgb_field_str(b, "moveable",
				  df->moveable == DV_MOVE_IMMEDIATE  ? "immediate"
				  : df->moveable == DV_MOVE_WHENIDLE ? "whenidle"
								     : "none");
		dv_msgb_field_u64(b, "trackport", df->trackport);
		dv_msgb_field_str(b, "type", df->rank == DV_RANK_DEFINE ? "define" : "backup");
		(void)dv_records_emit(out);
	}

	f = open_memstream(&text, &len);
	if (f) {
		dv_conf_print(conf, f);
		fclose(f);
		for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			dv_records_begin(out, DV_REC_TEXT);
			dv_msgb_field_str(b, "text", line);
			(void)dv_records_emit(out);
		}
		free(text);
	}
}
