/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The counters and their OpenMetrics text (metrics.h). Names follow the
 * Prometheus conventions: a counter family "x" is exposed as "x_total",
 * durations in seconds, one label set per series, every series present
 * from the start (at zero) so that rate() and alerts see it before its
 * first event.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

struct dv_metrics dv_metrics;

/* Takeovers on one host take tens of milliseconds (a process exit seen at
 * once); over Corosync, a token timeout and a state exchange: up to
 * seconds. */
static const unsigned takeover_le_ms[DV_METRICS_TAKEOVER_BUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
};

void dv_metrics_activated(enum dv_origin origin)
{
	if ((unsigned)origin <= DV_ORIGIN_BACKUP)
		dv_metrics.activations[origin]++;
}

void dv_metrics_takeover(uint64_t us)
{
	size_t i = 0;

	dv_metrics.takeovers++;
	dv_metrics.takeover_sum_us += us;
	while (i < DV_METRICS_TAKEOVER_BUCKETS && us > takeover_le_ms[i] * 1000ULL)
		i++;
	dv_metrics.takeover_buckets[i]++;
}

static const char *request_name(unsigned type)
{
	switch (type) {
	case DV_MSG_ACTIVATE:
		return "activate";
	case DV_MSG_RELEASE:
		return "release";
	case DV_MSG_STANDBY:
		return "standby";
	case DV_MSG_STATUS:
		return "status";
	case DV_MSG_CONFIG:
		return "config";
	case DV_MSG_RELOAD:
		return "reload";
	case DV_MSG_MOVE:
		return "move";
	case DV_MSG_DEACTIVATE:
		return "deactivate";
	case DV_MSG_REACTIVATE:
		return "reactivate";
	case DV_MSG_LEAVE:
		return "leave";
	case DV_MSG_JOIN:
		return "join";
	case DV_MSG_TARGETS:
		return "targets";
	case DV_MSG_CONNS:
		return "conns";
	case DV_MSG_QUIESCE:
		return "quiesce";
	case DV_MSG_RESUME:
		return "resume";
	case DV_MSG_SOURCE_PORTS:
		return "source_ports";
	case DV_MSG_METRICS:
		return "metrics";
	case DV_MSG_MONITOR:
		return "monitor";
	default:
		return NULL;
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

struct vipa_count {
	uint64_t n[DV_VS_INACTIVE + 1][DV_ORIGIN_BACKUP + 1];
};

static int count_vipa(void *ud, const struct dv_vipa_info *v)
{
	struct vipa_count *c = ud;

	if ((unsigned)v->state <= DV_VS_INACTIVE && (unsigned)v->origin <= DV_ORIGIN_BACKUP)
		c->n[v->state][v->origin]++;
	return 0;
}

static void render_gauges(FILE *f, const struct dv_metrics_input *in)
{
	static const enum dv_vipa_state states[] = {DV_VS_ACTIVE, DV_VS_WAITING, DV_VS_INACTIVE};
	struct vipa_count vc = {0};
	const dv_nodeid_t *members;
	size_t n_members = dv_engine_members(in->engine, &members);

	family(f, "dvipa_build", "info", "This dvipad: its version and node name");
	fprintf(f, "dvipa_build_info{version=\"%s\",node=\"%s\"} 1\n", DVIPA_VERSION, in->node);
	family(f, "dvipa_start_time_seconds", "gauge", "When dvipad started, seconds since the epoch");
	fprintf(f, "dvipa_start_time_seconds %" PRIu64 ".%03" PRIu64 "\n", in->started_ms / 1000,
		in->started_ms % 1000);

	(void)dv_engine_foreach(in->engine, count_vipa, &vc);
	family(f, "dvipa_vipas", "gauge", "VIPAs the cluster knows, by state and origin (this node's view)");
	for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++)
		for (int o = DV_ORIGIN_NONE; o <= DV_ORIGIN_BACKUP; o++)
			fprintf(f, "dvipa_vipas{state=\"%s\",origin=\"%s\"} %" PRIu64 "\n", dv_state_name(states[s]),
				dv_origin_name(o), vc.n[states[s]][o]);
	family(f, "dvipa_addresses_installed", "gauge", "VIPAs on this node's interface");
	fprintf(f, "dvipa_addresses_installed %zu\n", in->installed);
	family(f, "dvipa_quorate", "gauge", "1 while this node's partition is quorate, as the event stream says");
	fprintf(f, "dvipa_quorate %d\n", dv_engine_quorate(in->engine) ? 1 : 0);
	family(f, "dvipa_members", "gauge", "Members of this node's cluster view, itself included");
	fprintf(f, "dvipa_members %zu\n", n_members);
	family(f, "dvipa_control_clients", "gauge", "Open connections to the control socket");
	fprintf(f, "dvipa_control_clients %zu\n", in->clients);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s_total %" PRIu64 "\n", name, v);
}

static void render_counters(FILE *f, const struct dv_metrics_input *in)
{
	const struct dv_metrics *m = &dv_metrics;
	uint64_t other = 0, cum = 0;

	family(f, "dvipa_activations", "counter", "Addresses this node put on its interface, by origin");
	for (int o = DV_ORIGIN_NONE; o <= DV_ORIGIN_BACKUP; o++)
		fprintf(f, "dvipa_activations_total{origin=\"%s\"} %" PRIu64 "\n", dv_origin_name(o),
			m->activations[o]);
	counter(f, "dvipa_deactivations", "Addresses this node took off its interface as the engine decided",
		m->deactivations);
	family(f, "dvipa_refusals", "counter", "Requests refused, by reason");
	for (int r = DV_R_BADREQ; r <= DV_R_LEFT; r++)
		if (r != DV_R_UNREACH) /* said by clients, never by dvipad */
			fprintf(f, "dvipa_refusals_total{reason=\"%s\"} %" PRIu64 "\n", dv_result_name(r),
				m->refusals[r]);
	counter(f, "dvipa_takeovers", "Addresses this node installed while another node had them", m->takeovers);
	family(f, "dvipa_takeover_duration_seconds", "histogram",
	       "From the cause of a takeover (members leaving, a holder's end) to the address on this node");
	for (size_t i = 0; i < DV_METRICS_TAKEOVER_BUCKETS; i++) {
		cum += m->takeover_buckets[i];
		fprintf(f, "dvipa_takeover_duration_seconds_bucket{le=\"%u.%03u\"} %" PRIu64 "\n",
			takeover_le_ms[i] / 1000, takeover_le_ms[i] % 1000, cum);
	}
	cum += m->takeover_buckets[DV_METRICS_TAKEOVER_BUCKETS];
	fprintf(f, "dvipa_takeover_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	fprintf(f, "dvipa_takeover_duration_seconds_count %" PRIu64 "\n", m->takeovers);
	fprintf(f, "dvipa_takeover_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n", m->takeover_sum_us / 1000000,
		m->takeover_sum_us % 1000000);
	counter(f, "dvipa_moves", "Addresses moved to this node by a claim or dvipactl move", m->moves);
	counter(f, "dvipa_quorum_changes", "Changes of quorum in the event stream", m->quorum_changes);
	counter(f, "dvipa_membership_changes", "Changes of the cluster view in the event stream",
		m->membership_changes);
	counter(f, "dvipa_gate_closures", "Times this node removed all its addresses (quorum or cluster lost)",
		m->gate_closures);
	counter(f, "dvipa_announcements", "Gratuitous ARP and unsolicited neighbour advertisements sent",
		m->announcements);
	counter(f, "dvipa_probes", "Duplicate-address probes run before a first activation", m->probes);
	counter(f, "dvipa_probe_conflicts", "Probes answered by a host outside the cluster (activation refused)",
		m->probe_conflicts);
	family(f, "dvipa_control_requests", "counter", "Requests on the control socket, by type");
	for (unsigned t = 1; t < DV_METRICS_REQ_TYPES; t++) {
		if (request_name(t))
			fprintf(f, "dvipa_control_requests_total{type=\"%s\"} %" PRIu64 "\n", request_name(t),
				m->requests[t]);
		else
			other += m->requests[t];
	}
	fprintf(f, "dvipa_control_requests_total{type=\"other\"} %" PRIu64 "\n", other + m->requests[0]);
	family(f, "dvipa_connection_looks", "counter",
	       "Addresses looked at for connections before they moved away: answered by the connection index "
	       "alone, or by a walk of the kernel's TCP table");
	fprintf(f, "dvipa_connection_looks_total{answer=\"index\"} %" PRIu64 "\n", in->looks_index);
	fprintf(f, "dvipa_connection_looks_total{answer=\"walk\"} %" PRIu64 "\n", in->looks_walk);
	family(f, "dvipa_state_transfers", "counter", "Cluster state transfers, by event");
	fprintf(f, "dvipa_state_transfers_total{event=\"sent\"} %" PRIu64 "\n", m->transfers[DV_TRANSFER_SENT]);
	fprintf(f, "dvipa_state_transfers_total{event=\"restored\"} %" PRIu64 "\n", m->transfers[DV_TRANSFER_RESTORED]);
	fprintf(f, "dvipa_state_transfers_total{event=\"rejected\"} %" PRIu64 "\n", m->transfers[DV_TRANSFER_REJECTED]);
}

int dv_metrics_render(const struct dv_metrics_input *in, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	render_gauges(f, in);
	render_counters(f, in);
	fputs("# EOF\n", f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return -ENOMEM;
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
