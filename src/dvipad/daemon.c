/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon: wires the engine to the cluster stream, the kernel and the
 * control socket, and owns the state they share (struct dv_daemon,
 * daemon_int.h, opaque outside daemon*.c; socket holds taken again are in
 * daemon_reclaim.c). Requests from clients become events submitted to the
 * cluster; delivered events go through the engine; the engine's effects
 * become kernel changes, announcements and replies. Policy is not here: the
 * gate (gate.c) says whether addresses may be installed and what clients
 * hear meanwhile; observe.c says what the sockets on this node's addresses
 * mean to the engine. This file reads the kernel, Corosync and the clock,
 * feeds them, and carries out their answers.
 *
 * The control socket (control.c) frames, authorizes and relays: it asks
 * this file through control_ops about an address (resolve), hands it the
 * authorized requests and closed connections, and relays the STATUS and
 * CONFIG records built here by status.c from the engine's views, the
 * configuration and what is installed. This file answers requests with
 * dv_control_reply() and tells clients news with dv_control_event();
 * control.c calls nothing here but its ops.
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
#include <sys/resource.h>
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
#ifdef DVIPA_METRICS_HTTP
#include "metrics_http.h"
#endif
#include "observe.h"
#include "proto.h"
#include "rangetab.h"
#include "status.h"
#include "watch.h"

/* Log a buffer of "FILE:LINE: message" lines, one log record each. */
static void log_lines(int prio, char *buf)
{
	char *save = NULL;

	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		dv_log(prio, "%s", line);
}

/* Requests are noted as in flight until the engine has applied them: if
 * the connection to the cluster goes first, their programs are answered
 * (cl_connected) instead of waiting forever. */
void dv_daemon_submit(struct dv_daemon *d, struct dv_event *ev)
{
	const struct dv_addr *a = NULL;
	uint64_t client = 0;
	uint32_t seq = 0;
	bool request = dv_event_request(ev, &client, &seq, &a);
	int r;

	ev->time_ms = dv_wall_ms();
	if (request)
		(void)dv_gate_sent(&d->gate, client, seq, a);
	r = dv_cluster_submit(d->cluster, ev);
	if (r >= 0)
		return;
	/* Not connected: the group forgets this node's clients and
	 * observations anyway; requests are answered here. */
	if (r != -ENOTCONN)
		log_err("cannot submit event %d to the cluster: %s", ev->type, strerror(-r));
	if (!request)
		return;
	dv_gate_answered(&d->gate, client, seq);
	if (d->control)
		dv_control_reply(d->control, client, seq, a, r == -ENOTCONN ? DV_R_NOQUORUM : DV_R_INTERNAL,
				 r == -ENOTCONN ? "this node is not connected to its cluster"
						: "cannot send the request to the cluster");
}

static int reannounce_cb(void *ud, const struct dv_vipa_info *v)
{
	struct dv_daemon *d = ud;

	if (dv_kaddr_installed(d->kaddr, &v->addr))
		(void)dv_announce_start(d->announce, &v->addr, d->conf->announce_count, d->conf->announce_interval_ms);
	return 0;
}

/* Nodes joined the membership, perhaps a partition healing: hosts on the
 * other side may have learnt another MAC for the addresses this node kept,
 * so announce them again even though nothing changed here. */
static void reannounce_if_joined(struct dv_daemon *d, const dv_nodeid_t *before, size_t n_before)
{
	const dv_nodeid_t *now;
	size_t n_now = dv_engine_members(d->engine, &now);

	for (size_t i = 0; i < n_now; i++) {
		bool old = false;

		for (size_t j = 0; j < n_before && !old; j++)
			old = before[j] == now[i];
		if (!old && now[i] != dv_engine_self(d->engine)) {
			(void)dv_engine_foreach(d->engine, reannounce_cb, d);
			return;
		}
	}
}

static void dispatch_effects(struct dv_daemon *d, const struct dv_effects *fx);

static void restandby_send(struct dv_daemon *d);
static void open_gate(struct dv_daemon *d);

static bool dist_owns(void *ud, const struct dv_addr *a)
{
	struct dv_daemon *d = ud;

	return dv_gate_wants(&d->gate, d->engine, a);
}

static bool dist_installed(void *ud, const struct dv_addr *a)
{
	struct dv_daemon *d = ud;

	return dv_kaddr_installed(d->kaddr, a);
}

static void dist_submit(void *ud, struct dv_event *ev)
{
	dv_daemon_submit(ud, ev);
}

struct dv_dist_env daemon_dist_env(struct dv_daemon *d)
{
	return (struct dv_dist_env){
		.conf = d->conf,
		.engine = d->engine,
		.cluster = d->cluster,
		.sockdiag = d->sockdiag,
		.submit = dist_submit,
		.active = d->engine && dv_gate_is_open(&d->gate),
		.in_group = d->gate.connected && d->gate.quorate && !d->gate.lapsed,
		.owns = dist_owns,
		.installed = dist_installed,
		.ud = d,
	};
}

/* The distributed VIPAs as the engine's state has them now. */
static void sync_dist(struct dv_daemon *d)
{
	struct dv_dist_env env = daemon_dist_env(d);

	if (d->dist && d->engine)
		dv_dist_sync(d->dist, &env);
}

static void dist_resync(void *ud)
{
	sync_dist(ud);
}

static void deliver(void *ud, const struct dv_event *ev)
{
	struct dv_daemon *d = ud;
	struct dv_effects fx = {0};
	const struct dv_addr *a;
	uint64_t client;
	uint32_t seq;
	dv_nodeid_t *before = NULL;
	size_t n_before = 0;
	int r;

	if (ev->type == DV_EV_MEMBERSHIP && d->conf->cluster != DV_CLUSTER_NONE) {
		const dv_nodeid_t *m;

		n_before = dv_engine_members(d->engine, &m);
		before = malloc((n_before + 1) * sizeof(*before));
		if (before && n_before)
			memcpy(before, m, n_before * sizeof(*before));
	}
	dv_watch_before(&d->watch, d->engine, ev);
	r = dv_engine_apply(d->engine, ev, &fx);
	dv_watch_after(&d->watch, d->engine, d->control, ev, &fx);
	/* A new distributor loads its table before it announces the address
	 * (dispatch_effects), and targets change at once with the members. */
	if (r == 0 && ev->type == DV_EV_DIST_PINS && d->dist) {
		struct dv_dist_env env = daemon_dist_env(d);

		dv_dist_pins(d->dist, &env, ev);
	}
	/* The owner's forwarding is in before it announces the address: the
	 * old owner's list comes before its report that the address is off
	 * its interface (the hand-over). */
	if (r == 0 && ev->type == DV_EV_MOVING && d->dist) {
		struct dv_dist_env env = daemon_dist_env(d);

		dv_dist_moving(d->dist, &env, ev);
	}
	sync_dist(d);
	dispatch_effects(d, &fx);
	dv_effects_free(&fx);
	dv_reclaim_freed(d);
	if (ev->type == DV_EV_NODE_CONFIG && ev->node != dv_engine_self(d->engine))
		dv_observe_cluster_mac(&d->obs, ev->node_config.mac);
	if (ev->type == DV_EV_QUORUM &&
	    dv_gate_stream_quorum(&d->gate, ev->quorum.quorate, ev->quorum.ring) == DV_GATE_OPEN)
		open_gate(d);
	if (ev->node == dv_engine_self(d->engine) && dv_event_request(ev, &client, &seq, &a))
		dv_gate_answered(&d->gate, client, seq); /* decided, with or without a reply */
	/* Standbys to register again wait for the stream to confirm quorum. */
	if (ev->type == DV_EV_QUORUM || ev->type == DV_EV_MEMBERSHIP)
		restandby_send(d);
	if (r < 0)
		log_warn("engine rejected event %d from node %u: %s", ev->type, ev->node, strerror(-r));
	if (before) {
		reannounce_if_joined(d, before, n_before);
		free(before);
	}
}

/* Socket holds are watched through sock_diag for as long as the address is
 * installed here. */
static void watch_socket_hold(struct dv_daemon *d, const struct dv_addr *a)
{
	char s[DV_ADDR_STRLEN];
	int r;

	if (!d->sockdiag || !dv_observe_socket_hold(d->engine, a))
		return;
	r = dv_sockdiag_watch(d->sockdiag, a);
	if (r < 0)
		log_err("cannot watch the sockets of '%s': %s", dv_addr_fmt(a, s), strerror(-r));
}

static bool claimant_stale(void *item, void *ud)
{
	struct dv_daemon *d = ud;
	struct claimant *c = item;

	if (dv_observe_socket_hold(d->engine, &c->addr) || dv_wall_ms() - c->at_ms < DV_SOCKET_GRACE_MS)
		return true;
	free(c);
	return false;
}

static void claimants_clear(struct dv_daemon *d)
{
	struct claimant *c;

	DV_HASHTAB_FOREACH(c, &d->claimants)
		free(c);
	dv_hashtab_clear(&d->claimants);
}

struct claimant *dv_claimant_get(struct dv_daemon *d, const struct dv_addr *a)
{
	return dv_hashtab_get(&d->claimants, dv_addr_hash(a), dv_addr_item_match, a);
}

struct claimant *dv_claimant_set(struct dv_daemon *d, const struct dv_addr *a, pid_t pid)
{
	struct claimant *c = dv_claimant_get(d, a);

	if (!c) {
		if (dv_hashtab_size(&d->claimants) >= MAX_CLAIMANTS)
			dv_hashtab_filter(&d->claimants, claimant_stale, d, dv_addr_item_hash);
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL; /* the checks fall back to the sockets alone */
		c->addr = *a;	     /* the key, before the put hashes it */
		if (dv_hashtab_size(&d->claimants) >= MAX_CLAIMANTS ||
		    dv_hashtab_put(&d->claimants, c, dv_addr_item_hash) < 0) {
			free(c);
			return NULL;
		}
	}
	c->pid = pid;
	c->at_ms = dv_wall_ms();
	c->again = AGAIN_NONE;
	if (pid > 0)
		dv_proc_comm(pid, c->comm, sizeof(c->comm));
	else
		snprintf(c->comm, sizeof(c->comm), "?");
	return c;
}

/* Whether the program that claimed a may still be about to bind it: it
 * lives, or no claim of a is known (a restart, a pid-less client). */
static bool claimant_binding(struct dv_daemon *d, const struct dv_addr *a)
{
	const struct claimant *c = dv_claimant_get(d, a);

	return !c || c->pid <= 0 || dv_proc_alive(c->pid);
}

static void grace_free(struct dv_daemon *d, struct dv_sock_grace *g)
{
	LIST_REMOVE(g, link);
	sd_event_source_disable_unref(g->timer);
	sd_event_source_disable_unref(g->exit);
	free(g);
}

static void socket_unbound(struct dv_daemon *d, const struct dv_addr *a);

static int grace_expired(sd_event_source *s, uint64_t usec, void *ud)
{
	struct dv_sock_grace *g = ud;
	struct dv_daemon *d = g->d;
	struct dv_addr a = g->addr;

	grace_free(d, g);
	if (dv_sockdiag_bound(d->sockdiag, &a) == 0)
		socket_unbound(d, &a);
	return 0;
}

static int grace_claimant_exited(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	return grace_expired(s, 0, ud);
}

/* End g when the program that claimed its address exits: it will bind
 * nothing more (kill -9 before bind(), a bind that failed, a socket closed
 * before sock_diag saw it). Without a pidfd, the timer alone. */
static void grace_watch_claimant(struct dv_daemon *d, struct dv_sock_grace *g)
{
	const struct claimant *c = dv_claimant_get(d, &g->addr);
	int fd;

	if (!c || c->pid <= 0)
		return;
	fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	/* Gone (and reaped) since claimant_binding() saw it: now, not when
	 * the timer says. */
	if (fd < 0 && errno == ESRCH)
		(void)sd_event_source_set_time_relative(g->timer, 0);
	if (fd < 0)
		return;
	if (sd_event_add_io(d->ev, &g->exit, fd, EPOLLIN, grace_claimant_exited, g) < 0 ||
	    sd_event_source_set_io_fd_own(g->exit, 1) < 0) {
		g->exit = sd_event_source_disable_unref(g->exit);
		close(fd);
	}
}

/* The last socket bound to a went away (or none came). End this node's
 * socket hold, unless it is so fresh that its program may not have called
 * bind() yet: then look again when the grace period is over. */
static void socket_unbound(struct dv_daemon *d, const struct dv_addr *a)
{
	uint64_t now = dv_wall_ms(), at = 0;
	struct dv_event ev = {.type = DV_EV_ADDR_STATE};
	struct dv_sock_grace *g;
	char s[DV_ADDR_STRLEN];
	bool binding = claimant_binding(d, a);

	/* The scan that reported a unbound ran before the claimant was found
	 * dead: a program that bound, listened, forked and exited in between
	 * (nginx daemonizing) left its socket to its child. Look again, now
	 * that the claimant is known to be gone. */
	if (!binding && dv_observe_socket_hold(d->engine, a) && dv_sockdiag_bound(d->sockdiag, a) > 0)
		return;
	switch (dv_observe_unbound(&d->obs, d->engine, a, binding, now, &at)) {
	case DV_OBSERVE_NONE:
		return;
	case DV_OBSERVE_GRACE:
		LIST_FOREACH(g, &d->graces, link)
			if (dv_addr_eq(&g->addr, a))
				return;
		g = calloc(1, sizeof(*g));
		if (!g)
			return;
		*g = (struct dv_sock_grace){.d = d, .addr = *a};
		if (sd_event_add_time_relative(d->ev, &g->timer, CLOCK_MONOTONIC, (at - now) * 1000, 1000,
					       grace_expired, g) < 0) {
			free(g);
			return;
		}
		LIST_INSERT_HEAD(&d->graces, g, link);
		grace_watch_claimant(d, g);
		return;
	case DV_OBSERVE_END:
		break;
	}
	log_info("socket hold on '%s' ends: no socket is bound to it any more", dv_addr_fmt(a, s));
	ev.addr_state.addr = *a;
	ev.addr_state.flags = 0;
	dv_daemon_submit(d, &ev);
}

/*
 * UNIQUE within this node: the engine knows one socket hold per node, not
 * which program it is for, so a bind of a second program would find the
 * node's hold and share it. Here, before the engine: a bind claim in a
 * UNIQUE range by pid is refused while a socket bound to the address
 * belongs to another program (not pid, nor an ancestor of pid), or while
 * another live program claimed it and has not bound yet. A program that
 * descends from an API holder (dvipactl run) is that holder's program: it
 * is answered at once. true when the request was answered here.
 */
static bool unique_answered(struct dv_daemon *d, uint64_t client, const struct dv_request *req)
{
	const struct dv_addr *a = &req->addr;
	const struct dv_conf_range *r = dv_conf_find_range(d->conf, a);
	pid_t pid = dv_control_client_pid(d->control, client), other = 0;
	char ab[DV_ADDR_STRLEN], pb[DV_ADDR_STRLEN], comm[32], msg[DV_REASON_MAX];
	uint32_t inodes[MAX_INODES];
	struct dv_vipa_info v;
	struct claimant *c;
	size_t n = 0;

	if (req->type != DV_MSG_ACTIVATE || req->kind != DV_KIND_SOCKET || !r || r->policy != DV_POLICY_UNIQUE ||
	    pid <= 0 || !d->sockdiag)
		return false;
	dv_addr_fmt(a, ab);
	if (dv_engine_lookup(d->engine, a, &v) == 0 && v.owner == dv_engine_self(d->engine))
		for (size_t i = 0; i < v.n_holds; i++) {
			pid_t q;

			if (v.holds[i].kind != DV_KIND_API || v.holds[i].node != v.owner)
				continue;
			q = dv_control_client_pid(d->control, v.holds[i].client);
			if (q > 0 && dv_proc_descends(pid, q)) {
				snprintf(msg, sizeof(msg),
					 "%s is held by pid %d (%s), whose descendant pid %d may bind it", ab, (int)q,
					 dv_proc_comm(q, comm, sizeof(comm)), (int)pid);
				dv_control_reply(d->control, client, req->seq, a, DV_R_OK, msg);
				return true;
			}
		}
	if (dv_sockdiag_bound_inodes(d->sockdiag, a, inodes, MAX_INODES, &n) < 0)
		n = 0;
	if (n > 0 && !dv_proc_owns_socket(pid, inodes, n)) {
		other = dv_proc_socket_owner(inodes, n, pid);
		if (other > 0 && dv_proc_descends(pid, other))
			other = 0;
		else if (other <= 0)
			other = -1; /* bound, by a process we cannot see */
	}
	c = dv_claimant_get(d, a);
	if (n == 0 && c && c->pid != pid &&
	    (dv_observe_socket_hold(d->engine, a) || dv_wall_ms() - c->at_ms < DV_SOCKET_GRACE_MS) &&
	    dv_proc_alive(c->pid) && !dv_proc_descends(pid, c->pid))
		other = c->pid;
	if (other == 0)
		return false;
	if (other > 0)
		snprintf(msg, sizeof(msg), "%s is %s by pid %d (%s) and its range %s is UNIQUE", ab,
			 n ? "bound" : "claimed", (int)other, dv_proc_comm(other, comm, sizeof(comm)),
			 dv_prefix_fmt(&r->prefix, pb));
	else
		snprintf(msg, sizeof(msg), "%s is bound by another program and its range %s is UNIQUE", ab,
			 dv_prefix_fmt(&r->prefix, pb));
	dv_control_reply(d->control, client, req->seq, a, DV_R_HELD, msg);
	return true;
}

static const struct dv_conf_range *bindwatch_range(struct dv_daemon *d, const struct dv_addr *a)
{
	const struct dv_conf_range *r = dv_conf_find_range(d->conf, a);

	return r && r->bindwatch ? r : NULL;
}

static void sock_changed(void *ud, const struct dv_addr *a, bool bound)
{
	struct dv_daemon *d = ud;
	char s[DV_ADDR_STRLEN];

	if (!bound) {
		socket_unbound(d, a);
		return;
	}
	/* Bind watch: a program bound an address of a BINDWATCH range;
	 * activate it as a socket hold. */
	if (dv_observe_bound(&d->obs, d->engine, a, dv_kaddr_installed(d->kaddr, a), bindwatch_range(d, a) != NULL)) {
		struct dv_request req = {.type = DV_MSG_ACTIVATE, .has_addr = true, .addr = *a, .kind = DV_KIND_SOCKET};

		log_info("bind watch: a socket is bound to '%s'; activating it", dv_addr_fmt(a, s));
		daemon_request(d, 0, 0, &req);
	}
}

static void sock_failed(void *ud, int err)
{
	log_err("sock_diag: cannot read the socket table: %s; socket holds may end late", strerror(-err));
}

static void sock_index_lost(void *ud)
{
	log_warn("connection index: a map was full and a connection went uncounted: dropped; moves walk the "
		 "kernel's whole TCP table from now on");
}

static const struct dv_sockdiag_ops sockdiag_ops = {
	.changed = sock_changed,
	.failed = sock_failed,
	.index_lost = sock_index_lost,
};

/* The prefixes of the ranges not deleted (only the BINDWATCH ones if
 * bindwatch), in a new array of *ret_n; NULL when out of memory. */
struct dv_prefix *dv_range_prefixes(const struct dv_conf *c, bool bindwatch, size_t *ret_n)
{
	struct dv_prefix *p = calloc(c->n_ranges + 1, sizeof(*p));
	size_t n = 0;

	if (!p)
		return NULL;
	for (size_t i = 0; i < c->n_ranges; i++)
		if (!c->ranges[i].deleted && (c->ranges[i].bindwatch || !bindwatch))
			p[n++] = c->ranges[i].prefix;
	*ret_n = n;
	return p;
}

/* BINDWATCH ranges: watch their prefixes, and let programs bind to their
 * addresses before they exist (net.ipv4/ipv6.ip_nonlocal_bind = 1 in the
 * node's network namespace; left set on exit). */
static void apply_bindwatch(struct dv_daemon *d)
{
	static const char *const knobs[] = {"/proc/sys/net/ipv4/ip_nonlocal_bind",
					    "/proc/sys/net/ipv6/ip_nonlocal_bind"};
	struct dv_prefix *p;
	size_t n = 0;
	int r;

	if (!d->sockdiag)
		return;
	p = dv_range_prefixes(d->conf, true, &n);
	if (!p) {
		log_err("out of memory setting up BINDWATCH");
		return;
	}
	r = dv_sockdiag_set_prefixes(d->sockdiag, p, n);
	free(p);
	if (r < 0)
		log_err("cannot watch the BINDWATCH ranges: %s", strerror(-r));
	if (n == 0)
		return;
	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(knobs[i], "w");

		if (!f || fputs("1\n", f) < 0 || fclose(f) != 0) {
			log_err("cannot set '%s' for BINDWATCH: %s", knobs[i], strerror(errno));
			if (f)
				fclose(f);
		}
	}
}

/* The ranges the preload shim treats a bind() in as a claim: every range
 * not deleted (rangetab.h). */
static void publish_ranges(struct dv_daemon *d)
{
	_cleanup_free_ struct dv_prefix *p = NULL;
	size_t n = 0;
	int r;

	if (!d->rangetab)
		return;
	p = dv_range_prefixes(d->conf, false, &n);
	if (!p) {
		log_err("out of memory publishing the range table");
		return;
	}
	r = dv_rangetab_write(d->rangetab, p, n);
	if (r < 0)
		log_err("cannot publish the range table: %s", strerror(-r));
}

/* Map SOCKET.ranges, created if missing. An existing file is rewritten in
 * place, never replaced: programs that mapped it from an earlier dvipad
 * keep following it. Without it the shim claims only addresses that are not
 * local yet, as before the table existed; so a failure is logged, not
 * fatal. */
void daemon_rangetab_open(struct dv_daemon *d, const char *sock)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	void *m;

	if (dv_rangetab_path(sock, path, sizeof(path)) < 0) {
		log_err("no range table for the preload shim: '%s' is too long a path", sock);
		return;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || fchmod(fd, 0644) < 0 || ftruncate(fd, sizeof(struct dv_rangetab)) < 0) {
		log_err("no range table for the preload shim: '%s': %s", path, strerror(errno));
		return;
	}
	m = mmap(NULL, sizeof(struct dv_rangetab), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		log_err("no range table for the preload shim: cannot map '%s': %s", path, strerror(errno));
		return;
	}
	d->rangetab = m;
	publish_ranges(d);
}

/* What this node observes about its define and backup addresses, polled
 * because sock_diag has no notification for a new listener or connection:
 * TRACKPORT (a listener on the port makes the node eligible) and, on the
 * owner, whether connections use the address (WHENIDLE takeback waits for
 * none). Changes are reported as ADDR_STATE events. Each tick takes one
 * dump of listeners and one of connections, whatever the number of
 * defines. */
static int define_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct dv_daemon *d = ud;
	uint8_t ports[DV_PORT_BITMAP];
	struct dv_addrset mine = {0}, busy = {0};
	bool want_ports = false, ports_ok = true, busy_ok = true;

	for (size_t i = 0; i < d->conf->n_defines; i++) {
		const struct dv_conf_define *df = &d->conf->defines[i];

		want_ports |= df->trackport != 0;
		if (dv_kaddr_installed(d->kaddr, &df->addr) && dv_addrset_add(&mine, &df->addr) < 0)
			busy_ok = false;
	}
	/* A failed scan: sock_failed() already told; try again next tick. */
	if (want_ports)
		ports_ok = dv_sockdiag_listening_ports(d->sockdiag, ports) >= 0;
	if (busy_ok && mine.n > 0)
		busy_ok = dv_sockdiag_busy_set(d->sockdiag, &mine, &busy, NULL) >= 0;
	for (size_t i = 0; i < d->conf->n_defines; i++) {
		const struct dv_conf_define *df = &d->conf->defines[i];
		struct dv_event ev = {.type = DV_EV_ADDR_STATE};
		bool mine_here = dv_addrset_has(&mine, &df->addr);
		const struct dv_conf_distribute *dist = dv_dist_find(d->conf, &df->addr);
		unsigned flags, ready = 0;

		if ((df->trackport && !ports_ok) || (mine_here && !busy_ok))
			continue;
		/* Readiness of this target for the distributed ports. */
		if (dist && dv_dist_report_bits(d->dist, d->sockdiag, dist, &ready) < 0)
			continue;
		if (!dv_observe_define(&d->obs, d->engine, i, &df->addr,
				       df->trackport && dv_port_in(ports, df->trackport),
				       mine_here && dv_addrset_has(&busy, &df->addr), ready, &flags))
			continue;
		ev.addr_state.addr = df->addr;
		ev.addr_state.flags = flags;
		dv_daemon_submit(d, &ev);
	}
	dv_addrset_clear(&mine);
	dv_addrset_clear(&busy);
	(void)sd_event_source_set_time_relative(s, DV_DEFINE_POLL_MS * 1000);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

static void apply_define_poll(struct dv_daemon *d)
{
	int r = dv_observe_defines(&d->obs, d->conf->n_defines);
	bool any = false;

	/* TRACKPORT needs it everywhere; busy reports only matter when other
	 * nodes may want to take an address back. */
	for (size_t i = 0; i < d->conf->n_defines; i++)
		any |= d->conf->defines[i].trackport != 0 || d->conf->cluster != DV_CLUSTER_NONE;
	any |= d->conf->n_distribute > 0; /* targets report their listeners */
	d->define_timer = sd_event_source_disable_unref(d->define_timer);
	if (!any)
		return;
	if (!d->sockdiag || r < 0) {
		log_err("TRACKPORT and WHENIDLE need sock_diag: defines with TRACKPORT stay ineligible on this node, "
			"WHENIDLE takes addresses back as if idle");
		return;
	}
	/* First tick at once, so that a define with a listener comes up now. */
	if (sd_event_add_time_relative(d->ev, &d->define_timer, CLOCK_MONOTONIC, 0, 10 * 1000, define_tick, d) < 0)
		log_err("cannot start the define poll");
}

/* a's owner is another node now (a move, not a deactivation). */
static bool moved_away(struct dv_daemon *d, const struct dv_addr *a, dv_nodeid_t *ret_owner)
{
	struct dv_vipa_info v;

	if (dv_engine_lookup(d->engine, a, &v) < 0 || !v.owner || v.owner == dv_engine_self(d->engine))
		return false;
	*ret_owner = v.owner;
	return true;
}

/* A move keeps the old owner's connections (MOVING, dist_move.c): an
 * address of a MOVEABLE NONDISRUPTIVE range, or of a define (z/OS: a
 * takeback keeps the backup's connections; WHENIDLE's decides on the
 * backup's last report, and a connection that opened since is kept here,
 * not reset). Not a ROUTED range's: its old owner's local route still
 * takes the address, but no ARP answer says so; dvipa.conf(5) says its
 * moves are disruptive. */
static bool move_keeps(const struct dv_daemon *d, const struct dv_addr *a)
{
	const struct dv_conf_range *rg = dv_conf_find_range(d->conf, a);

	if (dv_conf_find_define(d->conf, a))
		return true;
	return rg && rg->policy == DV_POLICY_NONDISRUPTIVE && !rg->routed;
}

/* MOVEABLE DISRUPTIVE (and ROUTED ranges): a's owner is another node now,
 * so its connections here end at once (SOCK_DESTROY): clients learn at
 * once instead of waiting out retransmissions to the new owner, which
 * answers with a reset anyway. Listeners stay. */
static void end_moved_connections(struct dv_daemon *d, const struct dv_addr *a, const char *s)
{
	const struct dv_conf_range *rg = dv_conf_find_range(d->conf, a);
	dv_nodeid_t owner;
	size_t total = 0;
	int r;

	if (!rg || (rg->policy != DV_POLICY_DISRUPTIVE && !rg->routed) || !d->sockdiag || !moved_away(d, a, &owner))
		return;
	for (int round = 0; round < 16; round++) {
		size_t n = 0;

		r = dv_sockdiag_destroy_on(d->sockdiag, a, &n);
		total += n;
		if (r != -E2BIG)
			break;
	}
	if (r < 0)
		log_err("address '%s' moved to node %u (%s): cannot end its connections here: %s", s, owner,
			rg->routed ? "ROUTED" : "MOVEABLE DISRUPTIVE", strerror(-r));
	if (total)
		log_info("address '%s' moved to node %u (%s): %zu connection(s) here ended", s, owner,
			 rg->routed ? "ROUTED" : "MOVEABLE DISRUPTIVE", total);
}

/* MOVEABLE NONDISRUPTIVE: a's owner is another node now, and this node
 * keeps serving its connections on it from lo until they end. */
static bool keep_moved_connections(struct dv_daemon *d, const struct dv_addr *a)
{
	struct dv_dist_env env = daemon_dist_env(d);
	dv_nodeid_t owner;

	return d->conf->cluster != DV_CLUSTER_NONE && move_keeps(d, a) && moved_away(d, a, &owner) &&
	       (!d->move_busy || dv_addrset_has(d->move_busy, a)) && dv_dist_move_begin(d->dist, &env, a);
}

/* Of the addresses fx takes away from this node to another one that would
 * keep connections, those with connections here into ret, and those a new
 * one could open on (keep_slipped_in) into open, in one dump: a define's
 * takeback of thousands of addresses asked sock_diag once per address
 * before (120 removals a second). On failure every one of them, so that
 * each is asked for itself. */
static void moves_busy(struct dv_daemon *d, const struct dv_effects *fx, struct dv_addrset *ret,
		       struct dv_addrset *open)
{
	struct dv_addrset cand = {0};
	const struct dv_addr *a;
	dv_nodeid_t owner;

	if (d->conf->cluster == DV_CLUSTER_NONE || !d->sockdiag)
		return;
	for (size_t i = 0; i < fx->n; i++) {
		const struct dv_effect *f = &fx->v[i];

		if (f->type == DV_FX_LOCAL && !f->up && move_keeps(d, &f->addr) && moved_away(d, &f->addr, &owner))
			(void)dv_addrset_add(&cand, &f->addr);
	}
	if (cand.n && dv_sockdiag_busy_set(d->sockdiag, &cand, ret, open) < 0) {
		dv_addrset_clear(ret);
		dv_addrset_clear(open);
		*ret = cand;
		for (size_t i = 0; dv_addrset_next(&cand, &i, &a);)
			(void)dv_addrset_add(open, a); /* short of memory: left to the listener check */
		return;
	}
	dv_addrset_clear(&cand);
}

/* Where an address goes, for the log: a ROUTED range's set or the
 * interface. */
static const char *where(const struct dv_daemon *d, const struct dv_addr *a)
{
	return dv_kroute_covers(d->kroute, a) ? "ROUTED range" : d->conf->interface;
}

static void eng_local(void *ud, const struct dv_addr *a, bool up)
{
	struct dv_daemon *d = ud;
	char s[DV_ADDR_STRLEN];
	int r;

	dv_addr_fmt(a, s);
	if (!up) {
		end_moved_connections(d, a, s);
		(void)keep_moved_connections(d, a);
		dv_announce_stop(d->announce, a);
		if (d->sockdiag)
			dv_sockdiag_unwatch(d->sockdiag, a);
		dv_observe_removed(&d->obs, a);
		if (!dv_gate_is_open(&d->gate) && !dv_kaddr_installed(d->kaddr, a))
			return; /* went with the others when the gate closed */
		r = dv_kaddr_del(d->kaddr, a);
		if (r < 0)
			log_err("cannot remove address '%s' from '%s': %s", s, d->conf->interface,
				dv_kaddr_last_error(d->kaddr));
		else if (r == 0) /* 1: queued, logged when done (daemon_routed.c) */
			log_info("address '%s' removed from '%s'", s, where(d, a));
		dv_metrics.deactivations += r >= 0;
		return;
	}
	if (!dv_gate_is_open(&d->gate))
		return; /* installed when the gate opens, if still wanted */
	r = dv_kaddr_add(d->kaddr, a);
	if (r < 0) {
		/* The reply to the request that caused this notices and undoes it. */
		log_err("cannot add address '%s' to '%s': %s", s, d->conf->interface, dv_kaddr_last_error(d->kaddr));
		return;
	}
	if (r == 0) /* 1: queued, up when done (daemon_routed.c) */
		daemon_address_up(d, a, LOG_INFO);
}

void daemon_address_up(struct dv_daemon *d, const struct dv_addr *a, int log_prio)
{
	char s[DV_ADDR_STRLEN];
	int r;

	dv_addr_fmt(a, s);
	dv_observe_installed(&d->obs, a);
	dv_watch_installed(&d->watch, d->engine, a);
	{
		struct dv_dist_env env = daemon_dist_env(d);

		dv_dist_move_taken(d->dist, &env, a); /* on the interface again: no longer MOVING here */
	}
	r = dv_announce_start(d->announce, a, d->conf->announce_count, d->conf->announce_interval_ms);
	if (r < 0)
		log_warn("cannot announce address '%s': %s", s, strerror(-r));
	dv_log(log_prio, "address '%s' added to '%s'", s, where(d, a));
}

/* An address this node owns could not be installed: end this node's holds
 * on it so that the ownership table matches the kernel again. */
void daemon_release_local_holds(struct dv_daemon *d, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	if (dv_engine_lookup(d->engine, a, &v) < 0)
		return;
	for (size_t i = 0; i < v.n_holds; i++) {
		struct dv_event ev = {.type = DV_EV_RELEASE};

		if (v.holds[i].node != dv_engine_self(d->engine))
			continue;
		ev.release.client = v.holds[i].client;
		ev.release.seq = 0; /* the daemon's own request: no reply */
		ev.release.addr = *a;
		ev.release.kind = v.holds[i].kind;
		dv_daemon_submit(d, &ev);
	}
}

static void eng_notify(void *ud, uint64_t client, const struct dv_addr *a, enum dv_notify what, const char *reason);

static void eng_reply(void *ud, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result,
		      const char *reason)
{
	struct dv_daemon *d = ud;
	struct dv_gate_answer ans;

	if (a && !a->family) /* a node request (leave, join) */
		a = NULL;
	if (!client && !seq && a)
		dv_reclaim_answered(d, a, result, reason);
	ans = dv_gate_reply(&d->gate, d->engine, client, seq, a, result, a && dv_kaddr_installed(d->kaddr, a));
	if (ans.refused) {
		char msg[DV_REASON_MAX];

		snprintf(msg, sizeof(msg), "the kernel refused the address: %s", dv_kaddr_last_error(d->kaddr));
		if (ans.say == DV_GATE_SAY_LOST)
			eng_notify(d, client, a, DV_NOTIFY_LOST, msg);
		else
			dv_control_reply(d->control, client, seq, a, DV_R_KERNEL, msg);
		daemon_release_local_holds(d, a);
		return;
	}
	switch (ans.say) {
	case DV_GATE_SAY_GRANTED:
		eng_notify(d, client, a, DV_NOTIFY_GRANTED, reason);
		return;
	case DV_GATE_SAY_LOST:
		eng_notify(d, client, a, DV_NOTIFY_LOST, reason);
		return;
	case DV_GATE_SAY_NOTHING:
		return;
	case DV_GATE_SAY_REPLY:
		break;
	}
	if (result == DV_R_OK && a && dv_gate_hold_reply(&d->gate, d->engine, client, seq, a, reason))
		return; /* passed on when a is on this node's interface */
	if (result == DV_R_OK && a)
		watch_socket_hold(d, a);
	daemon_reply(d, client, seq, a, result, reason);
}

/* A grant or OK reply held back (gate.h) goes now. */
static void pass_held(struct dv_daemon *d, struct dv_gate_grant *gr)
{
	if (!gr->reply) {
		daemon_event(d, gr->client, &gr->addr, DV_NOTIFY_GRANTED, gr->reason);
		return;
	}
	watch_socket_hold(d, &gr->addr);
	daemon_reply(d, gr->client, gr->seq, &gr->addr, DV_R_OK, gr->reason);
}

static void pass_ready(struct dv_daemon *d)
{
	struct dv_gate_grant *gr;

	while ((gr = dv_gate_pop_grant(&d->gate, d->engine))) {
		pass_held(d, gr);
		free(gr);
	}
}

static void eng_notify(void *ud, uint64_t client, const struct dv_addr *a, enum dv_notify what, const char *reason)
{
	struct dv_daemon *d = ud;

	struct dv_gate_grant *gr;

	if (what == DV_NOTIFY_GRANTED) {
		watch_socket_hold(d, a);
		if (dv_gate_hold_grant(&d->gate, d->engine, client, a, reason))
			return;
	}
	/* Lost: a reply held back goes first (its program waits for it), a
	 * grant never. */
	while (what != DV_NOTIFY_GRANTED && (gr = dv_gate_take(&d->gate, client, a))) {
		if (gr->reply)
			pass_held(d, gr);
		free(gr);
	}
	daemon_event(d, client, a, what, reason);
}

/* The engine took a off this node: once it is off the interface, the next
 * owner may put it on (the hand-over, engine_state.c). Not if the kernel
 * still has it: then the lease ends it, and the group waits until this
 * node leaves. */
void daemon_report_removed(struct dv_daemon *d, const struct dv_addr *a)
{
	struct dv_event ev = {.type = DV_EV_ADDR_STATE, .addr_state = {.addr = *a, .flags = DV_AS_REMOVED}};

	if (d->conf->cluster == DV_CLUSTER_NONE || dv_kaddr_installed(d->kaddr, a))
		return;
	dv_daemon_submit(d, &ev);
}

/* a went off the interface to another node that would have kept its
 * connections here, but none was kept: none was seen before the removal. */
static bool moved_unkept(struct dv_daemon *d, const struct dv_addr *a)
{
	dv_nodeid_t owner;

	return d->conf->cluster != DV_CLUSTER_NONE && d->sockdiag && move_keeps(d, a) && moved_away(d, a, &owner) &&
	       !dv_dist_moving_here(d->dist, a) && !dv_kaddr_installed(d->kaddr, a);
}

/*
 * The addresses of gone left the interface with no connection seen on
 * them, but the look that saw none came before the removal: a connection
 * whose SYN came between the two (a WHENIDLE takeback while clients come
 * and go) lives here, and with the address gone nothing answers for it,
 * its client hangs. Off the interface, the address takes no new
 * connection, so one more look now is the last word: what it finds is
 * kept MOVING (on lo, the list out before the report that lets the new
 * owner put the address on, so its forwarding is in first). Their packets
 * in between are lost and sent again. Then the reports.
 *
 * That look walks the whole established table, milliseconds of the
 * takeover (issue 15 item 5). A connection opens only through a listener
 * bound to the address or to the wildcard (or a connect from it): of the
 * addresses none could open on at the first look (closed: a holder that
 * was killed took its listener with it), only those a listener covers
 * now, seen in the small listening table, are looked at again.
 */
static void keep_slipped_in(struct dv_daemon *d, const struct dv_addrset *gone, const struct dv_addrset *open)
{
	struct dv_addrset closed = {0}, look = {0}, busy = {0};
	const struct dv_addr *a;
	bool look_all = false, keep_all = false;

	if (!gone->n)
		return;
	for (size_t i = 0; !look_all && dv_addrset_next(gone, &i, &a);)
		if (!dv_addrset_has(open, a) && dv_addrset_add(&closed, a) < 0)
			look_all = true;
	/* Of the closed ones, those a listener covers now; every address if
	 * that cannot be told (short of memory, a failed dump). */
	if (!look_all && closed.n && dv_sockdiag_open_set(d->sockdiag, &closed, &look) < 0)
		look_all = true;
	for (size_t i = 0; !look_all && dv_addrset_next(gone, &i, &a);)
		if (dv_addrset_has(open, a) && dv_addrset_add(&look, a) < 0)
			look_all = true;
	/* One dump for them all; on failure each is kept (and listed by itself). */
	if (look_all || look.n)
		keep_all = dv_sockdiag_busy_set(d->sockdiag, look_all ? gone : &look, &busy, NULL) < 0;
	for (size_t i = 0; dv_addrset_next(gone, &i, &a);) {
		struct dv_dist_env env;
		char s[DV_ADDR_STRLEN];

		if ((look_all || dv_addrset_has(&look, a)) && (keep_all || dv_addrset_has(&busy, a))) {
			env = daemon_dist_env(d);
			if (dv_dist_move_begin(d->dist, &env, a))
				log_info("moves: '%s': a connection opened here while it was given away: kept",
					 dv_addr_fmt(a, s));
		}
		daemon_report_removed(d, a);
	}
	dv_addrset_clear(&busy);
	dv_addrset_clear(&look);
	dv_addrset_clear(&closed);
}

/* The engine's decisions for this node, in its order: addresses first,
 * then replies and news; then what waited for an address handed over. */
static void dispatch_effects(struct dv_daemon *d, const struct dv_effects *fx)
{
	struct dv_addrset busy = {0}, open = {0}, unkept = {0};
	bool up = false;

	moves_busy(d, fx, &busy, &open);
	d->move_busy = &busy;

	for (size_t i = 0; i < fx->n; i++) {
		const struct dv_effect *f = &fx->v[i];

		switch (f->type) {
		case DV_FX_LOCAL:
			eng_local(d, &f->addr, f->up);
			/* Reported after one more look (keep_slipped_in), or
			 * at once if that cannot be (out of memory). */
			if (!f->up && (!moved_unkept(d, &f->addr) || dv_addrset_add(&unkept, &f->addr) < 0))
				daemon_report_removed(d, &f->addr);
			up |= f->up;
			break;
		case DV_FX_REPLY:
			eng_reply(d, f->client, f->seq, &f->addr, f->result, f->reason);
			break;
		case DV_FX_NOTIFY:
			eng_notify(d, f->client, &f->addr, f->what, f->reason);
			break;
		}
	}
	d->move_busy = NULL;
	dv_addrset_clear(&busy);
	keep_slipped_in(d, &unkept, &open);
	dv_addrset_clear(&unkept);
	dv_addrset_clear(&open);
	if (up && d->gate.n_grants)
		pass_ready(d);
}

static void kaddr_readded(void *ud, const struct dv_addr *a, int err)
{
	struct dv_daemon *d = ud;
	char s[DV_ADDR_STRLEN];

	if (err < 0)
		log_err("address '%s' was removed from '%s' by someone else and could not be re-added: %s",
			dv_addr_fmt(a, s), d->conf->interface, strerror(-err));
	else
		log_warn("address '%s' was removed from '%s' by someone else; re-added it", dv_addr_fmt(a, s),
			 d->conf->interface);
}

static void kaddr_lease_changed(void *ud, unsigned lease_s, size_t n, uint64_t cpu_us, uint64_t wall_us)
{
	struct dv_daemon *d = ud;

	log_notice("addresses on '%s' now get a lifetime of %u s (LEASE %u): refreshing %zu took %.1f ms of CPU in "
		   "%.1f ms",
		   d->conf->interface, lease_s, d->conf->lease_s, n, cpu_us / 1000.0, wall_us / 1000.0);
}

static const struct dv_kaddr_ops kaddr_ops = {
	.readded = kaddr_readded,
	.lease_changed = kaddr_lease_changed,
};

static void submit_node_config(struct dv_daemon *d)
{
	struct dv_event ev = {.type = DV_EV_NODE_CONFIG};

	snprintf(ev.node_config.name, sizeof(ev.node_config.name), "%s", d->conf->node);
	if (d->kaddr)
		memcpy(ev.node_config.mac, dv_kaddr_mac(d->kaddr), sizeof(ev.node_config.mac));
	ev.node_config.n_ranges = d->conf->n_ranges;
	ev.node_config.ranges = d->conf->ranges;
	ev.node_config.n_defines = d->conf->n_defines;
	ev.node_config.defines = d->conf->defines;
	dv_daemon_submit(d, &ev);
}

/* ---- the cluster's callbacks ---- */

static int drop_cb(void *ud, const struct dv_vipa_info *v)
{
	struct dv_daemon *d = ud;

	dv_announce_stop(d->announce, &v->addr);
	if (d->sockdiag)
		dv_sockdiag_unwatch(d->sockdiag, &v->addr);
	return 0;
}

/* Every address goes at once: quorum or the cluster is lost. */
static void close_gate(struct dv_daemon *d, const char *why)
{
	/* Queued additions first, as if made one by one before this: their
	 * announcements then stop with the others'. */
	dv_kroute_flush(d->kroute);
	if (d->engine)
		(void)dv_engine_foreach(d->engine, drop_cb, d);
	dv_observe_removed(&d->obs, NULL);
	dv_kaddr_del_all(d->kaddr);
	dv_metrics.gate_closures++;
	log_warn("%s: removed every address of this node from '%s'", why, d->conf->interface);
	sync_dist(d);
}

static int install_cb(void *ud, const struct dv_vipa_info *v)
{
	struct dv_daemon *d = ud;

	if (dv_gate_wants(&d->gate, d->engine, &v->addr) && !dv_kaddr_installed(d->kaddr, &v->addr)) {
		eng_local(d, &v->addr, true);
		watch_socket_hold(d, &v->addr);
	}
	return 0;
}

/* Install what the engine says this node owns, now that the gate is open. */
static void open_gate(struct dv_daemon *d)
{
	if (!d->engine || !dv_gate_is_open(&d->gate))
		return;
	sync_dist(d);
	(void)dv_engine_foreach(d->engine, install_cb, d);
	pass_ready(d);
	dv_reclaim_socket_holds(d);
}

static int cl_snapshot(void *ud, uint8_t **ret, size_t *ret_len)
{
	struct dv_daemon *d = ud;

	dv_metrics.transfers[DV_TRANSFER_SENT]++;
	return dv_engine_snapshot(d->engine, ret, ret_len);
}

static void tell_lost(struct dv_daemon *d, const struct dv_gate_refs *refs, const char *why)
{
	for (size_t i = 0; i < refs->n; i++) {
		const struct dv_gate_ref *r = &refs->v[i];
		char s[DV_ADDR_STRLEN], msg[DV_REASON_MAX];

		if (!dv_gate_ref_lost(d->engine, r))
			continue;
		snprintf(msg, sizeof(msg), "%s for %s ended: %s", r->standby ? "standby" : "hold",
			 dv_addr_fmt(&r->addr, s), why);
		if (d->control)
			dv_control_event(d->control, r->client, &r->addr, DV_NOTIFY_LOST, msg);
	}
}

/* Standbys the group's state lacks are registered again (gate.h) if their
 * program is still connected. */
static void restandby_note(struct dv_daemon *d, struct dv_gate_refs *refs)
{
	bool *alive = calloc(refs->n + 1, sizeof(*alive));

	if (!alive)
		return; /* told LOST */
	for (size_t i = 0; i < refs->n; i++)
		alive[i] = dv_control_client_pid(d->control, refs->v[i].client) != 0;
	dv_gate_note_restandbys(&d->gate, d->engine, refs, alive);
	free(alive);
}

static void restandby_send(struct dv_daemon *d)
{
	struct dv_event ev;

	while (dv_gate_next_restandby(&d->gate, d->engine, &ev)) {
		char s[DV_ADDR_STRLEN];

		log_info("standby of client %" PRIu64 " for '%s' (rank %u) registered again after the heal",
			 ev.standby.client, dv_addr_fmt(&ev.standby.addr, s), ev.standby.rank);
		dv_daemon_submit(d, &ev);
	}
}

static int cl_restore(void *ud, const uint8_t *buf, size_t len)
{
	struct dv_daemon *d = ud;
	struct dv_gate_refs refs = {0};
	struct dv_effects fx = {0};
	int r;

	(void)dv_gate_refs_collect(d->engine, &refs);
	r = dv_engine_restore(d->engine, buf, len, &fx);
	dv_metrics.transfers[r == 0 ? DV_TRANSFER_RESTORED : DV_TRANSFER_REJECTED]++;
	sync_dist(d);
	dispatch_effects(d, &fx);
	dv_effects_free(&fx);
	if (r == 0) {
		const dv_nodeid_t *m;
		size_t n = dv_engine_members(d->engine, &m);

		for (size_t i = 0; i < n; i++) {
			struct dv_node_conf nc;

			if (m[i] != d->cluster->self && dv_engine_node_config(d->engine, m[i], &nc) == 0)
				dv_observe_cluster_mac(&d->obs, nc.mac);
		}
		restandby_note(d, &refs);
		tell_lost(d, &refs, "the cluster's state does not have it");
	}
	dv_gate_refs_clear(&refs);
	return r;
}

/* The node id became known after the engine was made (Corosync started
 * after dvipad): the same state, seen from this node. */
static int rebuild_engine(struct dv_daemon *d)
{
	struct dv_effects fx = {0};
	struct dv_engine *e;
	uint8_t *snap = NULL;
	size_t len = 0;
	int r;

	r = dv_engine_snapshot(d->engine, &snap, &len);
	if (r < 0)
		return r;
	e = dv_engine_new(d->cluster->self);
	if (!e) {
		free(snap);
		return -ENOMEM;
	}
	r = dv_engine_restore(e, snap, len, &fx);
	free(snap);
	dispatch_effects(d, &fx);
	dv_effects_free(&fx);
	if (r < 0) {
		dv_engine_free(e);
		return r;
	}
	dv_engine_free(d->engine);
	d->engine = e;
	return 0;
}

/* The connection to the cluster went with requests in flight: no answer
 * comes for them from the group, so their programs get one here (an
 * error they can act on: the node is not in a quorate cluster now). */
static void answer_unanswered(struct dv_daemon *d)
{
	struct dv_gate_request *q;

	while ((q = dv_gate_pop_unanswered(&d->gate))) {
		dv_control_reply(d->control, q->client, q->seq, q->addr.family ? &q->addr : NULL, DV_R_NOQUORUM,
				 "this node lost its connection to the cluster before the request was decided");
		free(q);
	}
}

static void cl_connected(void *ud, bool up)
{
	struct dv_daemon *d = ud;
	struct dv_gate_refs refs = {0};
	enum dv_gate_move move;
	struct dv_engine *fresh;

	if (up) {
		if (dv_engine_self(d->engine) != d->cluster->self && rebuild_engine(d) < 0)
			log_err("cannot rebuild the engine for node id %u", d->cluster->self);
		move = dv_gate_connected(&d->gate, true);
		/* Listener states are reported again to the group. */
		dv_observe_defines_resend(&d->obs);
		submit_node_config(d);
		restandby_send(d);
		if (move == DV_GATE_OPEN)
			open_gate(d);
		return;
	}
	(void)dv_gate_connected(&d->gate, false);
	close_gate(d, "the connection to the cluster is lost");
	answer_unanswered(d);
	/* Start over: the group forgets this node's holds when it leaves. */
	fresh = dv_engine_new(d->cluster->self);
	if (!fresh) {
		log_err("out of memory resetting the engine");
		return;
	}
	(void)dv_gate_refs_collect(d->engine, &refs);
	dv_engine_free(d->engine);
	d->engine = fresh;
	tell_lost(d, &refs, "this node lost its connection to the cluster");
	dv_gate_refs_clear(&refs);
	sync_dist(d);
}

static void maybe_ask(struct dv_daemon *d);

static void cl_exchanging(void *ud, bool on)
{
	struct dv_daemon *d = ud;

	if (dv_gate_exchanging(&d->gate, on) == DV_GATE_OPEN)
		open_gate(d);
	if (!on)
		maybe_ask(d);
}

/* The gate waits for the stream to say quorate after a loss (gate.h). */
static void maybe_ask(struct dv_daemon *d)
{
	if (dv_gate_should_ask(&d->gate) && dv_cluster_ask_quorum(d->cluster) > 0)
		dv_gate_ask_sent(&d->gate);
}

static void cl_asked(void *ud, bool answered)
{
	struct dv_daemon *d = ud;

	dv_gate_stream_asked(&d->gate, answered);
	maybe_ask(d); /* not answered: ask again */
}

/* Carry out what the gate answered to a report from Corosync. */
static void gate_move(struct dv_daemon *d, enum dv_gate_move move, const char *why)
{
	if (move == DV_GATE_CLOSE)
		close_gate(d, why);
	else if (move == DV_GATE_OPEN)
		open_gate(d);
	sync_dist(d); /* targets follow Corosync's word on quorum and the lease */
	maybe_ask(d);
}

static void cl_local_quorum(void *ud, bool quorate, uint64_t ring)
{
	struct dv_daemon *d = ud;

	gate_move(d, dv_gate_quorum(&d->gate, quorate, ring), "this node's partition lost quorum");
}

static void cl_lease(void *ud, bool held)
{
	struct dv_daemon *d = ud;

	gate_move(d, dv_gate_lease(&d->gate, held), "this node's ring lease ran out");
}

static void cl_takeover_wait(void *ud, bool on)
{
	struct dv_daemon *d = ud;

	if (dv_gate_takeover_wait(&d->gate, on) == DV_GATE_OPEN)
		open_gate(d);
	sync_dist(d);
}

static const struct dv_cluster_ops cluster_ops = {
	.deliver = deliver,
	.snapshot = cl_snapshot,
	.restore = cl_restore,
	.connected = cl_connected,
	.exchanging = cl_exchanging,
	.asked = cl_asked,
	.local_quorum = cl_local_quorum,
	.lease = cl_lease,
	.takeover_wait = cl_takeover_wait,
};

/* At start this node holds nothing yet, but the defines it is about to own
 * in CLUSTER NONE are kept rather than removed and added again. */
static bool keep_at_start(void *ud, const struct dv_addr *a)
{
	struct dv_daemon *d = ud;
	const struct dv_conf_define *def = dv_conf_find_define(d->conf, a);

	return d->conf->cluster == DV_CLUSTER_NONE && def && def->rank == DV_RANK_DEFINE;
}

static bool keep_installed(void *ud, const struct dv_addr *a)
{
	struct dv_daemon *d = ud;

	return dv_kaddr_installed(d->kaddr, a);
}

/* Check the configuration against the addresses already on the interface
 * (the host's own, those another program manages), with every error
 * logged: 0 or -EINVAL. keep: which leftovers to keep. */
static int reconcile_interface(struct dv_daemon *d, bool (*keep)(void *ud, const struct dv_addr *a),
			       const struct dv_conf *conf, FILE *errf)
{
	struct dv_addr *local = NULL;
	size_t n_local = 0;
	unsigned nerr;
	int r;

	r = dv_kaddr_reconcile(d->kaddr, keep, d, &local, &n_local);
	if (r < 0) {
		fprintf(errf, "%s: cannot read the addresses of '%s': %s\n", conf->file, conf->interface, strerror(-r));
		return r;
	}
	if (r > 0 && keep == keep_at_start)
		log_notice("removed %d address(es) an earlier dvipad left on '%s'", r, conf->interface);
	nerr = dv_conf_check_local(conf, local, n_local, errf);
	free(local);
	return nerr ? -EINVAL : 0;
}

/* A move asks whether connections live on an address before it gives it
 * away: with the index, a map lookup instead of a walk of the whole
 * established table (milliseconds of every takeover). Only in a cluster:
 * alone, nothing moves, and the index costs every connection of the
 * namespace a map update. */
static void use_connection_index(struct dv_daemon *d)
{
	struct dv_connidx *idx;
	char why[512];
	int r = dv_connidx_open(&idx, why, sizeof(why));

	if (r < 0) {
		log_warn("connection index unavailable (%s): moves walk the kernel's whole TCP table to find the "
			 "connections they keep",
			 why);
		return;
	}
	r = dv_sockdiag_use_index(d->sockdiag, idx);
	if (r < 0) {
		log_warn("connection index unavailable (cannot list the connections of before it: %s): moves walk "
			 "the kernel's whole TCP table to find the connections they keep",
			 strerror(-r));
		return;
	}
	log_info("connection index: a BPF sock_ops program counts this namespace's TCP connections per address");
}

/* The kernel side: the interface and its addresses, announcements, and
 * sock_diag (optional: API and operator holds work without it). */
static int open_kernel(struct dv_daemon *d)
{
	const struct dv_conf *conf = d->conf;
	char *errbuf = NULL;
	size_t errlen = 0;
	FILE *errf;
	int r;

	r = dv_kaddr_open(d->ev, conf->interface, conf->lease_s, &kaddr_ops, d, &d->kaddr);
	if (r < 0) {
		log_err("cannot use interface '%s': %s", conf->interface,
			r == -ENODEV ? "no such interface" : strerror(-r));
		return r;
	}
	r = daemon_open_routed(d);
	if (r < 0)
		return r;
	errf = open_memstream(&errbuf, &errlen);
	if (!errf)
		return -ENOMEM;
	r = reconcile_interface(d, keep_at_start, conf, errf);
	fclose(errf);
	if (r < 0)
		log_lines(LOG_ERR, errbuf);
	free(errbuf);
	if (r < 0)
		return r;
	r = dv_announce_open(d->ev, dv_kaddr_ifindex(d->kaddr), dv_kaddr_mac(d->kaddr), &d->announce);
	if (r < 0) {
		log_err("cannot open a packet socket on '%s': %s", conf->interface, strerror(-r));
		return r;
	}
	r = daemon_routed_answer_ns(d);
	if (r < 0)
		return r;
	r = dv_sockdiag_open(d->ev, &sockdiag_ops, d, &d->sockdiag);
	if (r < 0) {
		log_warn("sock_diag unavailable (%s): socket holds and BINDWATCH are disabled", strerror(-r));
		d->sockdiag = NULL;
		if (conf->n_distribute) {
			log_err("distributed VIPAs need sock_diag to tell which targets listen");
			return r;
		}
	}
	if (d->sockdiag && conf->cluster != DV_CLUSTER_NONE)
		use_connection_index(d);
	if (d->sockdiag && !dv_proc_sees_sockets())
		log_warn(
			"no CAP_SYS_PTRACE: dvipad cannot find the program of another process's socket, so a program's "
			"second port on a UNIQUE address may be refused as another program's, and socket holds are not "
			"taken back after a restart");
	/* Always: a table or lo addresses an earlier dvipad left go even
	 * when this configuration distributes nothing. */
	return dv_dist_open(d->ev, conf->interface, conf->lease_s, dist_resync, d, &d->dist);
}

/* The cluster backend and an engine seen from this node. In CLUSTER NONE
 * this node is the whole quorate cluster and publishes its configuration
 * now; with Corosync, once in sync. */
static int open_cluster(struct dv_daemon *d)
{
	int r;

	if (d->conf->cluster == DV_CLUSTER_NONE) {
		r = dv_cluster_solo_new(&cluster_ops, d, &d->cluster);
	} else {
		r = dv_cluster_corosync_new(d->ev, d->conf->group, &cluster_ops, d, &d->cluster);
		if (r < 0)
			log_err("cannot join Corosync group '%s': %s", d->conf->group, strerror(-r));
	}
	if (r < 0)
		return r;
	d->engine = dv_engine_new(d->cluster->self);
	if (!d->engine)
		return -ENOMEM;
	if (d->conf->cluster == DV_CLUSTER_NONE) {
		dv_nodeid_t self = d->cluster->self;
		struct dv_event e = {.type = DV_EV_MEMBERSHIP, .membership = {.n = 1, .nodes = &self}};

		dv_daemon_submit(d, &e);
		e = (struct dv_event){.type = DV_EV_QUORUM, .quorum.quorate = true};
		dv_daemon_submit(d, &e);
		submit_node_config(d);
	}
	return 0;
}

/*
 * NICE: raise this thread's scheduling priority to the configured nice
 * value (threads started later inherit it). A takeover is a few
 * milliseconds of dvipad's work, and behind two CPU-bound processes at the
 * same priority each of its steps waited for a time slice (issue 15 item
 * 5). Never lowered: an operator's Nice= or nice(1) asking for more stays.
 */
static void apply_nice(const struct dv_conf *c)
{
	int cur;

	errno = 0;
	cur = getpriority(PRIO_PROCESS, 0);
	if ((cur == -1 && errno) || cur <= c->nice)
		return;
	if (setpriority(PRIO_PROCESS, 0, c->nice) < 0)
		log_warn("scheduling priority stays at nice %d, not NICE %d: %s", cur, c->nice, strerror(errno));
	else
		log_info("scheduling priority raised from nice %d to %d (NICE)", cur, c->nice);
}

int dv_daemon_new(sd_event *ev, const char *conf_path, struct dv_conf *conf, struct dv_daemon **ret)
{
	struct dv_daemon *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	apply_nice(conf);
	dv_gate_init(&d->gate, conf->cluster == DV_CLUSTER_NONE);
	dv_observe_init(&d->obs);
	LIST_INIT(&d->probes);
	LIST_INIT(&d->graces);
	d->ev = sd_event_ref(ev);
	d->conf = conf;
	d->conf_path = strdup(conf_path);
	d->started_ms = dv_wall_ms();
	r = d->conf_path ? open_kernel(d) : -ENOMEM;
	if (r >= 0)
		r = open_cluster(d);
	if (r < 0) {
		dv_daemon_free(d);
		return r;
	}
	apply_bindwatch(d);
	apply_define_poll(d);
	/* With Corosync, when the gate opens: this node has the group's state. */
	dv_reclaim_socket_holds(d);
	*ret = d;
	return 0;
}

void dv_daemon_shutdown(struct dv_daemon *d)
{
	if (d && d->kaddr)
		dv_kaddr_del_all(d->kaddr);
	if (d && d->kroute && dv_kroute_remove(d->kroute) < 0)
		log_err("cannot remove the ROUTED ranges' routes and tables: %s", dv_kroute_last_error(d->kroute));
	if (d)
		dv_dist_stop(d->dist);
	/* Its addresses are gone: the shim need not ask for them. */
	if (d && d->rangetab)
		(void)dv_rangetab_write(d->rangetab, NULL, 0);
}

struct dv_daemon *dv_daemon_free(struct dv_daemon *d)
{
	if (!d)
		return NULL;
	while (!LIST_EMPTY(&d->probes)) {
		struct dv_probe_wait *w = LIST_FIRST(&d->probes);

		LIST_REMOVE(w, link);
		free(w);
	}
#ifdef DVIPA_METRICS_HTTP
	d->metrics_http = dv_metrics_http_free(d->metrics_http);
#endif
	d->control = dv_control_free(d->control);
	dv_watch_free(&d->watch);
	while (!LIST_EMPTY(&d->graces))
		grace_free(d, LIST_FIRST(&d->graces));
	dv_gate_clear(&d->gate);
	d->define_timer = sd_event_source_disable_unref(d->define_timer);
	d->sockdiag = dv_sockdiag_free(d->sockdiag);
	d->dist = dv_dist_free(d->dist);
	d->engine = dv_engine_free(d->engine);
	d->cluster = dv_cluster_free(d->cluster);
	d->announce = dv_announce_free(d->announce);
	d->kaddr = dv_kaddr_free(d->kaddr);
	d->kroute = dv_kroute_free(d->kroute);
	daemon_parked_clear(d);
	d->mld_timer = sd_event_source_disable_unref(d->mld_timer);
	d->mld_now = sd_event_source_disable_unref(d->mld_now);
	dv_addrset_clear(&d->mld_new);
	dv_conf_free(d->conf);
	dv_observe_clear(&d->obs);
	claimants_clear(d);
	dv_addrset_clear(&d->lost);
	if (d->rangetab)
		munmap(d->rangetab, sizeof(*d->rangetab));
	free(d->conf_path);
	sd_event_unref(d->ev);
	free(d);
	return NULL;
}

/* The ROUTED ranges are routes and tables set up at start: 1 (and why,
 * into errf) if nc's differ from old's. */
static unsigned routed_changed(const struct dv_conf *old, const struct dv_conf *nc, FILE *errf)
{
	_cleanup_free_ struct dv_prefix *a = NULL, *b = NULL;
	int na = dv_conf_routed(old, &a), nb = dv_conf_routed(nc, &b);

	bool same = na >= 0 && na == nb;

	for (int i = 0; same && i < na; i++)
		same = a[i].len == b[i].len && dv_addr_eq(&a[i].addr, &b[i].addr);
	if (same)
		return 0;
	return fprintf(errf, "%s: the ROUTED ranges changed: restart dvipad to change them\n", nc->file) > 0;
}

/* Settings bound to open sockets and timers: changing them under active
 * addresses is a restart, not a reload. The number of errors written. */
static unsigned restart_only_changes(const struct dv_conf *old, const struct dv_conf *nc, FILE *errf)
{
	unsigned nerr = 0;

	if (strcmp(nc->interface, old->interface) != 0)
		nerr += fprintf(errf, "%s: INTERFACE changed from '%s' to '%s': restart dvipad to change it\n",
				nc->file, old->interface, nc->interface) > 0;
	if (nc->cluster != old->cluster || strcmp(nc->group, old->group) != 0)
		nerr += fprintf(errf, "%s: CLUSTER changed: restart dvipad to change it\n", nc->file) > 0;
	if (nc->lease_s != old->lease_s)
		nerr += fprintf(errf, "%s: LEASE changed from %u to %u: restart dvipad to change it\n", nc->file,
				old->lease_s, nc->lease_s) > 0;
	if (nc->metrics_port != old->metrics_port || dv_addr_cmp(&nc->metrics_addr, &old->metrics_addr) != 0)
		nerr += fprintf(errf, "%s: METRICS changed: restart dvipad to change it\n", nc->file) > 0;
	if (strcmp(nc->node, old->node) != 0)
		nerr += fprintf(errf, "%s: NODE changed from '%s' to '%s': restart dvipad to change it\n", nc->file,
				old->node, nc->node) > 0;
	nerr += routed_changed(old, nc, errf);
	return nerr;
}

int dv_daemon_reload(struct dv_daemon *d, char **ret_errors)
{
	struct dv_conf *nc = NULL, *old;
	char *errbuf = NULL;
	size_t errlen = 0;
	unsigned nerr = 0;
	FILE *errf;
	int r;

	errf = open_memstream(&errbuf, &errlen);
	if (!errf)
		return -ENOMEM;
	r = dv_conf_parse_file(d->conf_path, errf, &nc, &nerr);
	if (r == 0)
		nerr += restart_only_changes(d->conf, nc, errf);
	if (r == 0 && nerr == 0 && reconcile_interface(d, keep_installed, nc, errf) < 0)
		nerr++;
	fclose(errf);
	if (r < 0 || nerr > 0) {
		dv_conf_free(nc);
		*ret_errors = errbuf;
		return -EINVAL;
	}
	free(errbuf);
	*ret_errors = NULL;

	old = d->conf;
	d->conf = nc;
	apply_nice(nc);
	/* The engine copies the node configuration while applying. */
	submit_node_config(d);
	dv_conf_free(old);
	publish_ranges(d);
	apply_bindwatch(d);
	apply_define_poll(d);
	dv_dist_reconfigured(d->dist);
	sync_dist(d);
	return 0;
}

/* The member that published this name, or 0. */
static dv_nodeid_t member_by_name(const struct dv_daemon *d, const char *name)
{
	const dv_nodeid_t *m;
	size_t n = dv_engine_members(d->engine, &m);

	for (size_t i = 0; i < n; i++) {
		const char *nm = dv_engine_node_name(d->engine, m[i]);

		if (nm && strcmp(nm, name) == 0)
			return m[i];
	}
	return 0;
}

/* The event a client's request becomes: 0, -ENOENT (it names no member),
 * -EINVAL (not an address request). */
static int request_event(struct dv_daemon *d, uint64_t client, uid_t uid, const struct dv_request *req,
			 struct dv_event *ret)
{
	enum dv_kind kind = req->kind ? (enum dv_kind)req->kind : DV_KIND_API;
	struct dv_event *ev = ret;

	*ev = (struct dv_event){0};
	switch (req->type) {
	case DV_MSG_ACTIVATE:
	case DV_MSG_RELEASE:
		/* claim and release: union members of one type, in one place. */
		ev->type = req->type == DV_MSG_ACTIVATE ? DV_EV_CLAIM : DV_EV_RELEASE;
		ev->claim.client = client;
		ev->claim.seq = req->seq;
		ev->claim.addr = req->addr;
		ev->claim.kind = kind;
		ev->claim.uid = uid;
		ev->claim.source_use = req->type == DV_MSG_ACTIVATE && req->source_use;
		break;
	case DV_MSG_STANDBY:
		ev->type = DV_EV_STANDBY;
		ev->standby.client = client;
		ev->standby.seq = req->seq;
		ev->standby.addr = req->addr;
		ev->standby.rank = req->rank;
		ev->standby.kind = kind;
		ev->standby.uid = uid;
		break;
	case DV_MSG_DEACTIVATE:
	case DV_MSG_REACTIVATE:
		ev->type = DV_EV_DEFINE_STATE;
		ev->define_state.client = client;
		ev->define_state.seq = req->seq;
		ev->define_state.addr = req->addr;
		ev->define_state.active = req->type == DV_MSG_REACTIVATE;
		ev->define_state.target = req->node[0] ? member_by_name(d, req->node) : dv_engine_self(d->engine);
		if (!ev->define_state.target)
			return -ENOENT;
		break;
	case DV_MSG_LEAVE:
	case DV_MSG_JOIN:
		ev->type = DV_EV_NODE_ADMIN;
		ev->node_admin.client = client;
		ev->node_admin.seq = req->seq;
		ev->node_admin.joined = req->type == DV_MSG_JOIN;
		ev->node_admin.target = req->node[0] ? member_by_name(d, req->node) : dv_engine_self(d->engine);
		if (!ev->node_admin.target)
			return -ENOENT;
		break;
	case DV_MSG_QUIESCE:
	case DV_MSG_RESUME:
		ev->type = DV_EV_QUIESCE;
		ev->quiesce.client = client;
		ev->quiesce.seq = req->seq;
		ev->quiesce.addr = req->addr;
		ev->quiesce.port = (uint16_t)req->port;
		ev->quiesce.on = req->type == DV_MSG_QUIESCE;
		ev->quiesce.target = req->node[0] ? member_by_name(d, req->node) : dv_engine_self(d->engine);
		if (!ev->quiesce.target)
			return -ENOENT;
		break;
	case DV_MSG_MOVE:
		ev->type = DV_EV_MOVE;
		ev->move.client = client;
		ev->move.seq = req->seq;
		ev->move.addr = req->addr;
		ev->move.uid = uid;
		ev->move.to = member_by_name(d, req->node);
		if (!ev->move.to)
			return -ENOENT;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

static void submit_request(struct dv_daemon *d, uint64_t client, uid_t uid, const struct dv_request *req)
{
	struct dv_event ev;
	char msg[DV_REASON_MAX];
	int r;

	/* Corosync said this partition lost quorum and the stream may not say
	 * so yet: a claim now would be granted an address this node will not
	 * install. */
	if ((req->type == DV_MSG_ACTIVATE || req->type == DV_MSG_STANDBY || req->type == DV_MSG_MOVE) &&
	    d->gate.connected && !d->gate.quorate) {
		dv_control_reply(d->control, client, req->seq, req->has_addr ? &req->addr : NULL, DV_R_NOQUORUM,
				 "this node's partition is not quorate");
		return;
	}
	r = request_event(d, client, uid, req, &ev);
	if (r == -EINVAL) {
		dv_control_reply(d->control, client, req->seq, NULL, DV_R_BADREQ, "not an address request");
		return;
	}
	if (r == -ENOENT) {
		snprintf(msg, sizeof(msg), "no member of the cluster is named '%s'", req->node);
		dv_control_reply(d->control, client, req->seq, req->has_addr ? &req->addr : NULL, DV_R_BADREQ, msg);
		return;
	}
	dv_daemon_submit(d, &ev);
}

static void probe_done(void *ud, const struct dv_addr *a, int result, const uint8_t mac[6])
{
	struct dv_probe_wait *w = ud;
	struct dv_daemon *d = w->d;

	LIST_REMOVE(w, link);
	/* The cluster may have learnt of the address while the probe ran (a
	 * state transfer after a heal): then the answer came from its owner,
	 * and the engine decides. */
	if (result == 0 || !dv_observe_needs_probe(&d->obs, d->engine, a, d->conf->probe_count)) {
		if (result == 0)
			dv_observe_probed(&d->obs, a);
		submit_request(d, w->client, w->uid, &w->req);
	} else if (result == -EADDRINUSE && dv_observe_is_cluster_mac(&d->obs, mac)) {
		/* A cluster node still has it: handing it over, or its dvipad
		 * died and the lease has not ended. Not a stranger's. */
		log_info("the probe of '%s' was answered by a cluster node (MAC %02x:%02x:%02x:%02x:%02x:%02x); going "
			 "on",
			 dv_addr_fmt(a, (char[DV_ADDR_STRLEN]){0}), mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		submit_request(d, w->client, w->uid, &w->req);
	} else {
		char s[DV_ADDR_STRLEN], msg[DV_REASON_MAX];

		dv_addr_fmt(a, s);
		dv_metrics.probe_conflicts += result == -EADDRINUSE;
		if (result == -EADDRINUSE)
			snprintf(msg, sizeof(msg),
				 "address %s is already in use by another host on %s (MAC "
				 "%02x:%02x:%02x:%02x:%02x:%02x)",
				 s, d->conf->interface, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		else
			snprintf(msg, sizeof(msg), "cannot probe address %s on %s: %s", s, d->conf->interface,
				 strerror(-result));
		log_warn("activation of '%s' refused: %s", s, msg);
		dv_control_reply(d->control, w->client, w->req.seq, a, result == -EADDRINUSE ? DV_R_INUSE : DV_R_KERNEL,
				 msg);
	}
	free(w);
}

void daemon_request(struct dv_daemon *d, uint64_t client, uid_t uid, const struct dv_request *req)
{
	struct dv_probe_wait *w;
	int r;

	if (req->kind == DV_KIND_SOCKET && !d->sockdiag && req->type != DV_MSG_RELEASE) {
		dv_control_reply(d->control, client, req->seq, &req->addr, DV_R_INTERNAL,
				 "socket holds are unavailable: dvipad cannot read sock_diag");
		return;
	}
	/* One user cannot fill the node's table (root can: it is the
	 * administrator's). The refusal is logged with the others. */
	if (uid != 0 && (req->type == DV_MSG_ACTIVATE || req->type == DV_MSG_STANDBY) &&
	    dv_engine_uid_vipas(d->engine, uid) >= d->conf->user_vipas) {
		char msg[DV_REASON_MAX];

		snprintf(msg, sizeof(msg), "uid %u has its maximum of %u VIPAs and standbys on node %s (MAXUSERVIPAS)",
			 (unsigned)uid, d->conf->user_vipas, d->conf->node);
		dv_control_reply(d->control, client, req->seq, &req->addr, DV_R_LIMIT, msg);
		return;
	}
	if (client && unique_answered(d, client, req))
		return;
	if (client && req->kind == DV_KIND_SOCKET && (req->type == DV_MSG_ACTIVATE || req->type == DV_MSG_STANDBY))
		dv_claimant_set(d, &req->addr, dv_control_client_pid(d->control, client));
	/* Not while the gate is closed: the request is refused "not quorate"
	 * anyway, and this node may not have the cluster's state yet, so the
	 * address's real owner would answer the probe. Not in a ROUTED range:
	 * the configuration says it is the cluster's (dvipa.conf(5)). */
	if ((req->type == DV_MSG_ACTIVATE || req->type == DV_MSG_STANDBY) && dv_gate_is_open(&d->gate) &&
	    !dv_kroute_covers(d->kroute, &req->addr) &&
	    dv_observe_needs_probe(&d->obs, d->engine, &req->addr, d->conf->probe_count)) {
		w = calloc(1, sizeof(*w));
		if (!w) {
			dv_control_reply(d->control, client, req->seq, &req->addr, DV_R_INTERNAL, "out of memory");
			return;
		}
		*w = (struct dv_probe_wait){.d = d, .client = client, .uid = uid, .req = *req};
		dv_metrics.probes++;
		r = dv_probe_start(d->announce, &req->addr, d->conf->probe_count, d->conf->probe_interval_ms,
				   probe_done, w);
		if (r < 0) {
			char msg[DV_REASON_MAX];

			snprintf(msg, sizeof(msg), "cannot probe the address on %s: %s", d->conf->interface,
				 strerror(-r));
			dv_control_reply(d->control, client, req->seq, &req->addr, DV_R_KERNEL, msg);
			free(w);
			return;
		}
		LIST_INSERT_HEAD(&d->probes, w, link);
		return;
	}
	submit_request(d, client, uid, req);
}

void daemon_client_gone(struct dv_daemon *d, uint64_t client)
{
	struct dv_event ev = {.type = DV_EV_CLIENT_GONE, .client_gone.client = client};

	struct dv_probe_wait *w, *next;

	dv_gate_drop_grants(&d->gate, client, NULL);
	dv_gate_drop_restandbys(&d->gate, client);
	dv_gate_drop_requests(&d->gate, client);
	for (w = LIST_FIRST(&d->probes); w; w = next) {
		next = LIST_NEXT(w, link);
		if (w->client == client) {
			LIST_REMOVE(w, link);
			dv_probe_cancel(d->announce, w);
			free(w);
		}
	}
	dv_daemon_submit(d, &ev);
}
