/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket's and the metrics' callbacks (daemon_int.h): what
 * dvipactl asks, answered from the engine, the kernel modules and the
 * distributed VIPAs; requests go to daemon.c.
 */
#include "daemon_int.h"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "addrset.h"
#include "cleanup.h"
#include "clock.h"
#include "cluster.h"
#include "control.h"
#include "dist.h"
#include "engine.h"
#include "gate.h"
#include "kernel.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "observe.h"
#include "proto.h"
#include "rangetab.h"
#include "status.h"
#include "watch.h"

/* ---- the control socket's callbacks ---- */

/* This node's operator hold of a, and the uid that made it. */
static bool self_operator_hold(struct dv_daemon *d, const struct dv_addr *a, uid_t *ret_uid)
{
	struct dv_vipa_info v;

	if (dv_engine_lookup(d->engine, a, &v) < 0)
		return false;
	for (size_t i = 0; i < v.n_holds; i++)
		if (v.holds[i].kind == DV_KIND_OPERATOR && v.holds[i].node == dv_engine_self(d->engine)) {
			*ret_uid = v.holds[i].uid;
			return true;
		}
	return false;
}

static void ctl_resolve(void *ud, const struct dv_request *req, struct dv_control_target *ret)
{
	struct dv_daemon *d = ud;
	bool release = req->type == DV_MSG_RELEASE;

	*ret = (struct dv_control_target){
		.node = d->conf->node,
		.range = dv_conf_find_range(d->conf, &req->addr),
		.defined = dv_conf_find_define(d->conf, &req->addr) != NULL,
		.own = release && (req->kind == 0 || req->kind == DV_KIND_API),
	};
	ret->operator_hold = self_operator_hold(d, &req->addr, &ret->operator_uid);
	ret->define_op = release && req->kind == DV_KIND_OPERATOR && ret->defined && !ret->operator_hold;
}

static void ctl_request(void *ud, uint64_t client, const struct ucred *cred, const struct dv_request *req)
{
	daemon_request(ud, client, cred->uid, req);
}

static void ctl_client_gone(void *ud, uint64_t client)
{
	daemon_client_gone(ud, client);
}

static bool status_installed(void *ud, const struct dv_addr *a)
{
	struct dv_daemon *d = ud;

	return dv_kaddr_installed(d->kaddr, a);
}

static pid_t status_client_pid(void *ud, uint64_t client)
{
	struct dv_daemon *d = ud;

	return dv_control_client_pid(d->control, client);
}

/* Owners looked up in /proc per status request at most (each reads every
 * process's fd table); beyond, a socket hold whose claimant is gone shows
 * no pid. */
#define STATUS_OWNER_WALKS 16

/* The program that holds the sockets of this node's socket hold on a: the
 * one that claimed it while it lives, else whoever has them now (and it
 * becomes the claimant). */
static pid_t socket_holder(struct dv_daemon *d, const struct dv_addr *a, char *comm, size_t size)
{
	struct claimant *c = dv_claimant_get(d, a);
	uint32_t inodes[MAX_INODES];
	size_t n = 0;
	pid_t pid;

	/* kill(0) rather than /proc: status of thousands of holds asks this
	 * for each; a zombie is still its program. */
	if (c && c->pid > 0 && c->again != AGAIN_LOST && (kill(c->pid, 0) == 0 || errno == EPERM)) {
		snprintf(comm, size, "%s", c->comm);
		return c->pid;
	}
	if (!d->sockdiag || !d->owner_walks)
		return 0;
	d->owner_walks--;
	if (dv_sockdiag_bound_inodes(d->sockdiag, a, inodes, MAX_INODES, &n) < 0 || !n)
		return 0;
	pid = dv_proc_socket_owner(inodes, n, 0);
	if (pid <= 0)
		return 0;
	c = dv_claimant_set(d, a, pid);
	if (c)
		c->at_ms = 0; /* it has bound: no grace for it */
	dv_proc_comm(pid, comm, size);
	return pid;
}

static pid_t status_hold_pid(void *ud, const struct dv_hold *h, const struct dv_addr *a, char *comm, size_t size)
{
	struct dv_daemon *d = ud;

	if (h->kind == DV_KIND_SOCKET)
		return socket_holder(d, a, comm, size);
	if (!h->client)
		return 0;
	snprintf(comm, size, "%s", dv_control_client_comm(d->control, h->client));
	return dv_control_client_pid(d->control, h->client);
}

static pid_t status_lost_by(void *ud, const struct dv_addr *a, char *comm, size_t size)
{
	struct dv_daemon *d = ud;
	const struct claimant *c = dv_claimant_get(d, a);

	if (!c || c->again != AGAIN_LOST || !dv_proc_alive(c->pid))
		return 0;
	snprintf(comm, size, "%s", c->comm);
	return c->pid;
}

static size_t status_moving(void *ud, const struct dv_addr *a, struct dv_moving *ret, size_t max)
{
	struct dv_daemon *d = ud;
	size_t n = dv_dist_moving_nodes(d->dist, a, ret, max);

	/* This node's own count is newer than the list it sent. */
	for (size_t i = 0; i < n; i++)
		if (ret[i].node == dv_engine_self(d->engine) && dv_dist_moving_here(d->dist, a))
			ret[i].connections = dv_dist_moving_here(d->dist, a);
	return n;
}

static enum dv_result ctl_status(void *ud, const struct dv_addr *a, size_t n_clients, struct dv_records *out,
				 char *reason, size_t size)
{
	struct dv_daemon *d = ud;
	struct dv_sync_info sync;
	const struct dv_status_input in = {
		.sync = dv_cluster_sync_info(d->cluster, &sync) == 0 ? &sync : NULL,
		.gate = dv_gate_describe(&d->gate),
		.engine = d->engine,
		.conf = d->conf,
		.conf_path = d->conf_path,
		.started_ms = d->started_ms,
		.pid = getpid(),
		.n_clients = n_clients,
		.queued = dv_control_queued(d->control),
		.installed = status_installed,
		.client_pid = status_client_pid,
		.hold_pid = status_hold_pid,
		.lost_by = status_lost_by,
		.moving = status_moving,
		.ud = d,
	};

	d->owner_walks = STATUS_OWNER_WALKS;
	return dv_status_records(&in, a, out, reason, size);
}

static void ctl_config(void *ud, struct dv_records *out)
{
	struct dv_daemon *d = ud;

	dv_status_config(d->conf, out);
}

static enum dv_result ctl_targets(void *ud, const struct dv_addr *a, struct dv_records *out, char *reason, size_t size)
{
	struct dv_daemon *d = ud;
	struct dv_dist_env env = daemon_dist_env(d);

	return dv_dist_records(d->dist, &env, a, out, reason, size);
}

static enum dv_result ctl_conns(void *ud, const struct dv_addr *a, struct dv_records *out, char *reason, size_t size)
{
	struct dv_daemon *d = ud;
	struct dv_dist_env env = daemon_dist_env(d);

	return dv_dist_conns(d->dist, &env, a, out, reason, size);
}

static enum dv_result ctl_quiesce(void *ud, const struct dv_request *req, char *reason, size_t size)
{
	struct dv_daemon *d = ud;
	struct dv_dist_env env = daemon_dist_env(d);

	return dv_dist_quiesce_check(d->dist, &env, &req->addr, req->node, (uint16_t)req->port, reason, size);
}

static enum dv_result ctl_source_ports(void *ud, const struct dv_addr *a, uint16_t *ret_lo, uint16_t *ret_hi,
				       char *reason, size_t size)
{
	struct dv_daemon *d = ud;
	struct dv_dist_env env = daemon_dist_env(d);

	return dv_dist_source_ports(d->dist, &env, a, ret_lo, ret_hi, reason, size);
}

static int ctl_reload(void *ud, char **ret_errors)
{
	return dv_daemon_reload(ud, ret_errors);
}

struct installed_count {
	const struct dv_daemon *d;
	size_t n;
};

static int count_installed(void *ud, const struct dv_vipa_info *v)
{
	struct installed_count *c = ud;

	c->n += dv_kaddr_installed(c->d->kaddr, &v->addr);
	return 0;
}

static int ctl_metrics(void *ud, size_t n_clients, char **ret, size_t *ret_len)
{
	struct dv_daemon *d = ud;
	struct installed_count c = {.d = d};
	struct dv_metrics_input in = {
		.engine = d->engine, .node = d->conf->node, .clients = n_clients, .started_ms = d->started_ms};

	(void)dv_engine_foreach(d->engine, count_installed, &c);
	in.installed = c.n;
	dv_sockdiag_looks(d->sockdiag, &in.looks_index, &in.looks_walk);
	return dv_metrics_render(&in, ret, ret_len);
}

#ifdef DVIPA_METRICS_HTTP
/* The HTTP endpoint's: the control connections now, as for status. */
static int http_metrics(void *ud, char **ret, size_t *ret_len)
{
	struct dv_daemon *d = ud;

	return ctl_metrics(d, d->control ? dv_control_clients(d->control) : 0, ret, ret_len);
}
#endif

static const struct dv_control_ops control_ops = {
	.resolve = ctl_resolve,
	.request = ctl_request,
	.client_gone = ctl_client_gone,
	.status = ctl_status,
	.config = ctl_config,
	.targets = ctl_targets,
	.conns = ctl_conns,
	.quiesce = ctl_quiesce,
	.source_ports = ctl_source_ports,
	.reload = ctl_reload,
	.metrics = ctl_metrics,
};

#ifdef DVIPA_METRICS_HTTP
/* METRICS LISTEN: a configured endpoint that cannot listen stops dvipad. */
static int open_metrics_http(struct dv_daemon *d)
{
	const struct dv_addr *a = &d->conf->metrics_addr;
	char s[DV_ADDR_STRLEN];
	int r;

	if (!d->conf->metrics_port)
		return 0;
	dv_addr_fmt(a, s);
	r = dv_metrics_http_open(d->ev, a, d->conf->metrics_port, http_metrics, d, &d->metrics_http);
	if (r < 0)
		log_err("%s: METRICS LISTEN %s port %u: cannot listen: %s", d->conf->file, s, d->conf->metrics_port,
			strerror(-r));
	else
		log_info("metrics at http://%s%s%s:%u/metrics", a->family == AF_INET6 ? "[" : "", s,
			 a->family == AF_INET6 ? "]" : "", d->conf->metrics_port);
	return r;
}
#endif

int dv_daemon_listen(struct dv_daemon *d, const char *path)
{
	int r = dv_control_open(d->ev, path, &control_ops, d, &d->control);

	if (r < 0)
		return r;
	daemon_rangetab_open(d, path);
	return 0;
}

int dv_daemon_serve_metrics(struct dv_daemon *d)
{
#ifdef DVIPA_METRICS_HTTP
	return open_metrics_http(d);
#else
	return 0; /* the parser refused METRICS in such a build */
#endif
}

const struct dv_conf *dv_daemon_conf(const struct dv_daemon *d)
{
	return d->conf;
}

const char *dv_daemon_conf_path(const struct dv_daemon *d)
{
	return d->conf_path;
}
