/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * MOVEABLE NONDISRUPTIVE moves (z/OS: the old owner keeps serving its
 * connections, state MOVING, while the new owner takes new ones and routes
 * the old ones' packets to it).
 *
 * The old owner: when the engine takes an address of a NONDISRUPTIVE range
 * (or a MOVEABLE IMMEDIATE define) to another node while connections are
 * established on it here, the address goes to lo instead of away (its ARP
 * requests dropped by the table below, arp_announce=2 so that it is not
 * the source of this node's: dist_arp_settings), and this node multicasts
 * the connections' peers
 * (DV_EV_MOVING). It counts them every second, sends the list again when
 * it changed (at most every MOVE_RESEND_US), and when the last one ends it
 * removes the address from lo and sends an empty list: MOVING ends
 * everywhere.
 *
 * The owner: a second netdev table of its own, DV_MOVE_TABLE, because its
 * sets live as long as a move, not as long as a distribution plan (dist.c
 * replaces its table when the plan's shape changes). For each address this
 * node owns that is MOVING elsewhere, a TCP packet
 *   - with SYN is a connection of this node's: remembered (own), accepted;
 *   - of a connection remembered, or one this node had before the move
 *     (its sockets, listed when the address's forwarding starts), accepted;
 *   - pinned by an old owner's list: forwarded to that node;
 *   - else (the race between a list and the packets: a connection opened
 *     on the old owner just before the move) forwarded to the old owner
 *     that moved last: the safety net.
 * The forwarding starts before the owner announces the address: the old
 * owner sends its list before it reports the address off its interface,
 * and the owner puts it on only after that report (the hand-over). A node
 * that still has the address on its interface, or that serves it MOVING,
 * forwards the same way (clients whose ARP caches still point at it), its
 * net to the owner. A packet that comes from another node's MAC was
 * forwarded once already and is never forwarded again: no loops.
 *
 * Limits: TCP only (UDP goes to the owner); a pin is the peer's address and
 * port, not the local port; what an old owner lists is what sock_diag sees
 * established (DV_DIST_PINS_MAX at most per list).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "clock.h"
#include "cluster.h"
#include "dist_int.h"
#include "engine.h"
#include "kernel.h"
#include "kernel_nft.h"
#include "log.h"
#include "jhash.h"

#define MOVE_POLL_US 1000000u	/* the old owner counts its connections */
#define MOVE_RESEND_US 5000000u /* a changed list goes again at most this often */
#define MOVE_OWN_TIMEOUT_S 7500 /* an idle connection of the owner's: TCP keepalive's 2 h and more */
#define MOVE_SET_SIZE 262144

static int fwd_pin_cmp(const void *x, const void *y)
{
	return dist_peer_pin_cmp(&((const struct move_fwd_pin *)x)->pin, &((const struct move_fwd_pin *)y)->pin);
}

/* By peer, then by the list's age: the last of a run is the newest. */
static int want_pin_cmp(const void *x, const void *y)
{
	const struct move_fwd_pin *a = x, *b = y;
	int c = fwd_pin_cmp(a, b);

	return c ? c : a->order < b->order ? -1 : a->order > b->order;
}

static const char *fam(const struct dv_addr *a)
{
	return a->family == AF_INET6 ? "6" : "4";
}

/* ---- the table ---- */

/* The table's shape: sets, one chain per node of the node list, the
 * rules. */
static char *table_text(const struct dv_dist *d, dv_nodeid_t self)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "table netdev %s {\n", DV_MOVE_TABLE);
	for (int v = 4; v <= 6; v += 2) {
		const char *t = v == 4 ? "ipv4_addr" : "ipv6_addr";

		fprintf(f, "\tset on%d {\n\t\ttype %s\n\t}\n", v, t);
		fprintf(f, "\tset own%d {\n\t\ttype %s . %s . inet_service\n\t\tflags dynamic,timeout\n", v, t, t);
		fprintf(f, "\t\ttimeout %us\n\t\tsize %u\n\t}\n", MOVE_OWN_TIMEOUT_S, MOVE_SET_SIZE);
		fprintf(f, "\tmap pin%d {\n\t\ttype %s . %s . inet_service : verdict\n\t\tsize %u\n\t}\n", v, t, t,
			MOVE_SET_SIZE);
		fprintf(f, "\tmap net%d {\n\t\ttype %s : verdict\n\t}\n", v, t);
	}
	fputs("\tset peers {\n\t\ttype ether_addr\n\t}\n", f);
	fputs("\tset here4 {\n\t\ttype ipv4_addr\n\t}\n", f);
	/* One chain per node, its rule added once its MAC is known
	 * (nodes_sync): a MAC reaches it in either family, whatever the
	 * families of its ring addresses. */
	for (size_t i = 0; i < d->n_nodes; i++)
		if (d->nodes[i].id != self)
			fprintf(f, "\tchain n%u {\n\t}\n", d->nodes[i].id);
	for (int v = 4; v <= 6; v += 2) {
		const char *ip = v == 4 ? "ip" : "ip6";
		char key[64];

		snprintf(key, sizeof(key), "%s daddr . %s saddr . tcp sport", ip, ip);
		fprintf(f, "\tchain in%d {\n", v);
		fprintf(f, "\t\ttcp flags & syn == syn update @own%d { %s } accept\n", v, key);
		fprintf(f, "\t\t%s @own%d update @own%d { %s } accept\n", key, v, v, key);
		fprintf(f, "\t\t%s vmap @pin%d\n", key, v);
		fprintf(f, "\t\t%s daddr vmap @net%d\n\t}\n", ip, v);
	}
	fputs("\tchain ingress {\n", f);
	fprintf(f, "\t\ttype filter hook ingress device \"%s\" priority -300; policy accept;\n", d->ifname);
	fputs("\t\tarp operation request arp daddr ip @here4 drop\n", f);
	fputs("\t\tether saddr @peers accept\n", f);
	fputs("\t\tip daddr @on4 ip protocol tcp jump in4\n", f);
	fputs("\t\tip6 daddr @on6 ip6 nexthdr tcp jump in6\n\t}\n}\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int run(struct dv_dist *d, const char *text, const char *what)
{
	_cleanup_free_ char *err = NULL;
	int r = dv_knft_run(d->mv_nft, text, &err);

	if (r < 0)
		log_err("moves: cannot %s in table 'netdev %s': %s", what, DV_MOVE_TABLE, err ? err : strerror(-r));
	return r;
}

static void fwd_free(struct move_fwd *fw)
{
	free(fw->pins);
	fw->pins = NULL;
	fw->n = 0;
}

static void table_remove(struct dv_dist *d)
{
	if (!d->mv_shape)
		return;
	(void)run(d, "add table netdev " DV_MOVE_TABLE "\ndelete table netdev " DV_MOVE_TABLE "\n", "remove it");
	free(d->mv_shape);
	d->mv_shape = NULL;
	for (size_t i = 0; i < d->n_fwd; i++)
		fwd_free(&d->fwd[i]);
	free(d->fwd);
	d->fwd = NULL;
	d->n_fwd = 0;
	d->n_mv_nodes = 0;
	dv_addrset_clear(&d->mv_here_set);
	log_info("moves: table 'netdev %s' removed: no address is MOVING here or from here", DV_MOVE_TABLE);
}

/* The table with this shape, empty but for more (commands in the same
 * transaction): a new shape, the node list changed. */
static int table_load(struct dv_dist *d, char *shape, const char *more)
{
	_cleanup_free_ char *text = NULL;
	size_t len = strlen(shape) + strlen(more) + 128;

	text = malloc(len);
	if (!text)
		return -ENOMEM;
	snprintf(text, len, "add table netdev %s\ndelete table netdev %s\n%s%s", DV_MOVE_TABLE, DV_MOVE_TABLE, shape,
		 more);
	if (run(d, text, "load it") < 0)
		return -EIO;
	free(d->mv_shape);
	d->mv_shape = shape;
	for (size_t i = 0; i < d->n_fwd; i++)
		fwd_free(&d->fwd[i]);
	d->n_fwd = 0;
	dv_addrset_clear(&d->mv_here_set);
	log_info("moves: table 'netdev %s' loaded on '%s'", DV_MOVE_TABLE, d->ifname);
	return 0;
}

/* Packets can go to node: its chain forwards to its MAC. */
static bool has_chain(const struct dv_dist *d, dv_nodeid_t node)
{
	for (size_t i = 0; i < d->n_mv_nodes; i++)
		if (d->mv_nodes[i].id == node)
			return true;
	return false;
}

static void elem_pin(FILE *f, const char *verb, const struct dv_addr *vipa, const struct move_fwd_pin *p)
{
	char a[DV_ADDR_STRLEN], b[DV_ADDR_STRLEN];

	fprintf(f, "%s element netdev %s pin%s { %s . %s . %u", verb, DV_MOVE_TABLE, fam(vipa), dv_addr_fmt(vipa, a),
		dv_addr_fmt(&p->pin.addr, b), p->pin.port);
	if (strcmp(verb, "add") == 0)
		fprintf(f, " : goto n%u", p->node);
	fputs(" }\n", f);
}

static void elem_net(FILE *f, const char *verb, const struct dv_addr *vipa, dv_nodeid_t node)
{
	char a[DV_ADDR_STRLEN];

	fprintf(f, "%s element netdev %s net%s { %s", verb, DV_MOVE_TABLE, fam(vipa), dv_addr_fmt(vipa, a));
	if (strcmp(verb, "add") == 0)
		fprintf(f, " : goto n%u", node);
	fputs(" }\n", f);
}

/* What the owner wants for one address: the pins of every old owner's
 * list (the latest list wins a peer listed twice), the net to the latest. */
struct want {
	struct dv_addr addr;
	dv_nodeid_t net;
	size_t n;
	struct move_fwd_pin *pins; /* sorted */
};

static int want_build(const struct dv_dist *d, const struct dv_addr *a, dv_nodeid_t self, dv_nodeid_t owner,
		      struct want *w)
{
	uint64_t best = 0;
	size_t n = 0, k = 0;

	*w = (struct want){.addr = *a};
	for (size_t i = 0; i < d->n_moves; i++) {
		const struct move_entry *m = &d->moves[i];

		if (m->node == self || !dv_addr_eq(&m->addr, a) || !has_chain(d, m->node))
			continue;
		n += m->n;
		if (m->order > best) {
			best = m->order;
			w->net = m->node;
		}
	}
	/* Not the owner (it lost a, or is losing it): what is not pinned
	 * goes to the owner. */
	if (w->net && owner && owner != self && has_chain(d, owner))
		w->net = owner;
	if (!w->net)
		return 0;
	w->pins = calloc(n ? n : 1, sizeof(*w->pins));
	if (!w->pins)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_moves; i++) {
		const struct move_entry *m = &d->moves[i];

		if (m->node == self || !dv_addr_eq(&m->addr, a) || !has_chain(d, m->node))
			continue;
		for (size_t j = 0; j < m->n; j++)
			w->pins[k++] = (struct move_fwd_pin){.pin = m->pins[j], .node = m->node, .order = m->order};
	}
	/* A peer in two lists (a connection that ended on one node and came
	 * back with the same port on another) goes to the newest. */
	qsort(w->pins, n, sizeof(*w->pins), want_pin_cmp);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && fwd_pin_cmp(&w->pins[k - 1], &w->pins[i]) == 0) {
			w->pins[k - 1] = w->pins[i];
			continue;
		}
		w->pins[k++] = w->pins[i];
	}
	w->n = k;
	return 0;
}

/* This node's established connections on a: its own, accepted as they
 * were before the move. */
static void own_elements(FILE *f, const struct dv_dist_env *env, const struct dv_addr *a)
{
	_cleanup_free_ struct dv_peer *peers = calloc(DV_DIST_PINS_MAX, sizeof(*peers));
	char s[DV_ADDR_STRLEN], p[DV_ADDR_STRLEN];
	size_t n = 0;
	int r;

	if (!peers || !env->sockdiag)
		return;
	r = dv_sockdiag_peers(env->sockdiag, a, 0, peers, DV_DIST_PINS_MAX, &n);
	if (r < 0 && r != -E2BIG) {
		log_err("moves: cannot list this node's connections on '%s': %s: their packets may go to the old "
			"owner",
			dv_addr_fmt(a, s), strerror(-r));
		return;
	}
	dv_addr_fmt(a, s);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "add element netdev %s own%s { %s . %s . %u }\n", DV_MOVE_TABLE, fam(a), s,
			dv_addr_fmt(&peers[i].addr, p), peers[i].port);
}

static dv_nodeid_t owner_of(const struct dv_dist_env *env, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	return dv_engine_lookup(env->engine, a, &v) == 0 ? v.owner : 0;
}

/* Packets of a come to this node: it owns it, or has it on its interface
 * still (the engine gave it away a moment ago), or serves it MOVING. */
static bool reaches_here(const struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a)
{
	if (!env->active)
		return false;
	if (owner_of(env, a) == dv_engine_self(env->engine) || (env->installed && env->installed(env->ud, a)))
		return true;
	for (size_t i = 0; i < d->n_here; i++)
		if (dv_addr_eq(&d->here[i].addr, a))
			return true;
	return false;
}

static void mac_fmt(FILE *f, const uint8_t mac[6])
{
	fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

static bool in_node_list(const struct dv_dist *d, dv_nodeid_t id)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		if (d->nodes[i].id == id)
			return true;
	return false;
}

/* The other members' MACs (from their published configuration): their
 * chains forward to them, and what comes from them was forwarded once
 * (the peers set). The commands for those not loaded yet into f; they
 * count as loaded (the caller undoes that if its transaction fails). */
static void nodes_text(struct dv_dist *d, const struct dv_dist_env *env, FILE *f)
{
	const dv_nodeid_t *m;
	size_t n = dv_engine_members(env->engine, &m);
	struct dv_node_conf me;

	if (dv_engine_node_config(env->engine, dv_engine_self(env->engine), &me) < 0 ||
	    !memcmp(me.mac, (uint8_t[6]){0}, 6))
		return;
	for (size_t i = 0; i < n; i++) {
		struct dv_node_conf nc;

		if (m[i] == dv_engine_self(env->engine) || has_chain(d, m[i]) || !in_node_list(d, m[i]) ||
		    dv_engine_node_config(env->engine, m[i], &nc) < 0 || !memcmp(nc.mac, (uint8_t[6]){0}, 6) ||
		    d->n_mv_nodes == DV_ENGINE_MAX_NODES)
			continue;
		fprintf(f, "add element netdev %s peers { ", DV_MOVE_TABLE);
		mac_fmt(f, nc.mac);
		fprintf(f, " }\nflush chain netdev %s n%u\nadd rule netdev %s n%u ether saddr set ", DV_MOVE_TABLE,
			m[i], DV_MOVE_TABLE, m[i]);
		mac_fmt(f, me.mac);
		fputs(" ether daddr set ", f);
		mac_fmt(f, nc.mac);
		fprintf(f, " fwd to \"%s\"\n", d->ifname);
		d->mv_nodes[d->n_mv_nodes].id = m[i];
		memcpy(d->mv_nodes[d->n_mv_nodes++].mac, nc.mac, 6);
	}
}

static struct move_fwd *fwd_find(struct dv_dist *d, const struct dv_addr *a)
{
	for (size_t i = 0; i < d->n_fwd; i++)
		if (dv_addr_eq(&d->fwd[i].addr, a))
			return &d->fwd[i];
	return NULL;
}

/* Make the kernel's forwarding for one address what w says: a new one with
 * this node's existing connections, the pins and the net (when the address
 * is on the interface already, tracking its new connections goes in a
 * transaction first: none of its own slips through), a known one by
 * difference. */
static void fwd_apply(struct dv_dist *d, const struct dv_dist_env *env, struct want *w)
{
	struct move_fwd *fw = fwd_find(d, &w->addr);
	char *text = NULL, s[DV_ADDR_STRLEN], first[256] = "";
	size_t len = 0, i = 0, j = 0;
	bool installed = true;
	FILE *f;

	dv_addr_fmt(&w->addr, s);
	if (!fw) {
		struct move_fwd *nf = realloc(d->fwd, (d->n_fwd + 1) * sizeof(*nf));

		if (!nf)
			return;
		d->fwd = nf;
		snprintf(first, sizeof(first), "add element netdev %s on%s { %s }\n", DV_MOVE_TABLE, fam(&w->addr), s);
		/* On the interface already, a owes new connections to their
		 * SYN being seen first; else (the usual case: the list comes
		 * before the hand-over) none arrives, and one transaction does
		 * (each takes up to a second on a loaded machine). */
		installed = env->installed && env->installed(env->ud, &w->addr);
		if (installed && run(d, first, "start forwarding") < 0)
			return;
		fw = &d->fwd[d->n_fwd++];
		*fw = (struct move_fwd){.addr = w->addr};
	}
	f = open_memstream(&text, &len);
	if (!f)
		goto fail;
	if (!fw->net && !installed)
		fputs(first, f);
	if (!fw->net)
		own_elements(f, env, &w->addr);
	if (fw->net != w->net) {
		if (fw->net)
			elem_net(f, "delete", &w->addr, fw->net);
		elem_net(f, "add", &w->addr, w->net);
	}
	/* Both sorted: delete what went or changed node, add what is new. */
	while (i < fw->n || j < w->n) {
		int c = i == fw->n ? 1 : j == w->n ? -1 : fwd_pin_cmp(&fw->pins[i], &w->pins[j]);

		if (c < 0) {
			elem_pin(f, "delete", &w->addr, &fw->pins[i++]);
		} else if (c > 0) {
			elem_pin(f, "add", &w->addr, &w->pins[j++]);
		} else {
			if (fw->pins[i].node != w->pins[j].node) {
				elem_pin(f, "delete", &w->addr, &fw->pins[i]);
				elem_pin(f, "add", &w->addr, &w->pins[j]);
			}
			i++;
			j++;
		}
	}
	if (fclose(f) != 0 || (len && run(d, text, "route the old owner's connections") < 0)) {
		free(text);
		goto fail;
	}
	free(text);
	if (!fw->net)
		log_info("moves: '%s' is MOVING: packets of node %u's %zu connection(s) on it go there", s, w->net,
			 w->n);
	free(fw->pins);
	fw->pins = w->pins;
	fw->n = w->n;
	fw->net = w->net;
	w->pins = NULL;
	return;
fail:
	if (!installed && !fw->net) /* nothing of it in the kernel: new next time */
		d->n_fwd--;
}

static void fwd_stop(struct dv_dist *d, size_t i)
{
	struct move_fwd *fw = &d->fwd[i];
	char *buf = NULL, s[DV_ADDR_STRLEN];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	dv_addr_fmt(&fw->addr, s);
	/* Its pins one by one in the same transaction: a flush would take
	 * every address's. */
	if (f) {
		fprintf(f, "delete element netdev %s on%s { %s }\n", DV_MOVE_TABLE, fam(&fw->addr), s);
		if (fw->net)
			elem_net(f, "delete", &fw->addr, fw->net);
		for (size_t k = 0; k < fw->n; k++)
			elem_pin(f, "delete", &fw->addr, &fw->pins[k]);
		if (fclose(f) == 0)
			(void)run(d, buf, "stop forwarding");
		free(buf);
	}
	log_info("moves: '%s' is no longer MOVING elsewhere: all of its packets stay here", s);
	fwd_free(fw);
	d->fwd[i] = d->fwd[--d->n_fwd];
}

/* The here4 set: the IPv4 addresses MOVING here, whose ARP requests the
 * table drops (this node has them on lo, and arp_ignore stays 0). */
static int here_set_sync(struct dv_dist *d)
{
	struct dv_addrset now = {0};
	const struct dv_addr *a;
	char *buf = NULL, s[DV_ADDR_STRLEN];
	size_t len = 0;
	FILE *f;
	int r = 0;

	for (size_t i = 0; i < d->n_here; i++)
		if (d->here[i].addr.family == AF_INET)
			(void)dv_addrset_add(&now, &d->here[i].addr);
	f = open_memstream(&buf, &len);
	if (!f) {
		dv_addrset_clear(&now);
		return -ENOMEM;
	}
	for (size_t i = 0; dv_addrset_next(&now, &i, &a);)
		if (!dv_addrset_has(&d->mv_here_set, a))
			fprintf(f, "add element netdev %s here4 { %s }\n", DV_MOVE_TABLE, dv_addr_fmt(a, s));
	for (size_t i = 0; dv_addrset_next(&d->mv_here_set, &i, &a);)
		if (!dv_addrset_has(&now, a))
			fprintf(f, "delete element netdev %s here4 { %s }\n", DV_MOVE_TABLE, dv_addr_fmt(a, s));
	if (fclose(f) == 0 && len)
		r = run(d, buf, "drop the ARP requests for the addresses MOVING here");
	free(buf);
	if (r == 0) {
		dv_addrset_clear(&d->mv_here_set);
		d->mv_here_set = now;
	} else {
		dv_addrset_clear(&now);
	}
	return r;
}

/* The table while this node forwards for an address or serves one
 * MOVING; what is in it. 0, or -errno when the addresses MOVING here
 * could not be kept out of ARP. */
static int forwarding_sync(struct dv_dist *d, const struct dv_dist_env *env)
{
	dv_nodeid_t self = dv_engine_self(env->engine);
	struct dv_addrset want = {0};
	const struct dv_addr *a;
	char *shape;
	int r = 0;

	/* Its chains come from the node list: read before the table's shape
	 * (a node that distributes nothing has not read it yet). */
	dist_refresh_nodes(d, env);
	for (size_t i = 0; i < d->n_moves; i++)
		if (d->moves[i].node != self && reaches_here(d, env, &d->moves[i].addr))
			(void)dv_addrset_add(&want, &d->moves[i].addr);
	for (size_t i = 0; i < d->n_fwd;)
		if (!dv_addrset_has(&want, &d->fwd[i].addr))
			fwd_stop(d, i);
		else
			i++;
	if (!want.n && !d->n_here) {
		table_remove(d);
		return 0;
	}
	shape = table_text(d, self);
	if (!shape) {
		r = -ENOMEM;
	} else {
		/* A new table and the members' chains in one transaction. */
		bool reload = !d->mv_shape || strcmp(shape, d->mv_shape) != 0;
		size_t before = d->n_mv_nodes, len = 0;
		char *nodes = NULL;
		FILE *f = open_memstream(&nodes, &len);

		if (reload)
			d->n_mv_nodes = 0;
		if (f) {
			nodes_text(d, env, f);
			if (fclose(f) != 0)
				d->n_mv_nodes = reload ? 0 : before;
		}
		if (reload) {
			r = table_load(d, shape, nodes ? nodes : "");
			if (r < 0) {
				free(shape);
				d->n_mv_nodes = before; /* the old table stays */
			}
		} else {
			free(shape);
			if (nodes && len && run(d, nodes, "forward to the members' MACs") < 0)
				d->n_mv_nodes = before;
		}
		free(nodes);
	}
	if (r == 0)
		r = here_set_sync(d);
	for (size_t i = 0; r == 0 && dv_addrset_next(&want, &i, &a);) {
		struct want w;

		if (want_build(d, a, self, owner_of(env, a), &w) < 0)
			continue;
		if (w.net)
			fwd_apply(d, env, &w);
		free(w.pins);
	}
	dv_addrset_clear(&want);
	return r;
}

/* ---- the old owner ---- */

/* The membership, to send the lists again when it changes. */
static uint32_t members_digest(const struct dv_dist_env *env)
{
	const dv_nodeid_t *m;
	size_t n = dv_engine_members(env->engine, &m);

	return n ? dv_jhash(m, n * sizeof(*m), 0) : 0;
}

static int poll_tick(sd_event_source *src, uint64_t usec, void *ud)
{
	struct dv_dist *d = ud;

	(void)src;
	(void)usec;
	if (d->resync)
		d->resync(d->ud); /* dist_move_sync, with the daemon's state */
	if (d->n_here)
		(void)sd_event_source_set_time_relative(d->mv_timer, MOVE_POLL_US);
	else
		(void)sd_event_source_set_enabled(d->mv_timer, SD_EVENT_OFF);
	return 0;
}

static void timer_arm(struct dv_dist *d)
{
	if (!d->mv_timer) {
		if (sd_event_add_time_relative(d->ev, &d->mv_timer, CLOCK_MONOTONIC, MOVE_POLL_US, 100000, poll_tick,
					       d) < 0) {
			log_err("moves: cannot start a timer: the connections left are counted only when the state "
				"changes");
			return;
		}
	} else {
		(void)sd_event_source_set_time_relative(d->mv_timer, MOVE_POLL_US);
	}
	(void)sd_event_source_set_enabled(d->mv_timer, SD_EVENT_ON);
}

static struct move_here *here_find(struct dv_dist *d, const struct dv_addr *a)
{
	for (size_t i = 0; i < d->n_here; i++)
		if (dv_addr_eq(&d->here[i].addr, a))
			return &d->here[i];
	return NULL;
}

static void submit(const struct dv_dist_env *env, const struct dv_addr *a, const struct dv_peer *peers, size_t n)
{
	struct dv_event ev = {.type = DV_EV_MOVING};

	/* dv_peer and dv_peer_pin alike: address, port. */
	_Static_assert(sizeof(struct dv_peer) == sizeof(struct dv_peer_pin), "peers are pins");
	ev.moving.addr = *a;
	ev.moving.n = n;
	ev.moving.pins = n ? (const struct dv_peer_pin *)peers : NULL;
	if (env->submit)
		env->submit(env->ud, &ev);
}

/* This node's established connections on a, all ports: 0 and *ret_n, or
 * -errno (logged). */
static int list_here(const struct dv_dist_env *env, const struct dv_addr *a, struct dv_peer *peers, size_t *ret_n)
{
	char s[DV_ADDR_STRLEN];
	int r = dv_sockdiag_peers(env->sockdiag, a, 0, peers, DV_DIST_PINS_MAX, ret_n);

	if (r == -E2BIG)
		log_err("moves: more than %d connections on '%s' here: only the first are routed here after the move",
			DV_DIST_PINS_MAX, dv_addr_fmt(a, s));
	else if (r < 0)
		log_err("moves: cannot list the connections on '%s' here: %s", dv_addr_fmt(a, s), strerror(-r));
	return r == -E2BIG ? 0 : r;
}

static void here_end(struct dv_dist *d, const struct dv_dist_env *env, size_t i, const char *why)
{
	struct dv_addr a = d->here[i].addr;
	char s[DV_ADDR_STRLEN];

	d->here[i] = d->here[--d->n_here];
	if (dv_addrset_has(&d->on_lo, &a))
		dist_lo_del(d, &a);
	dist_arp_settings(d, d->arp_ignore_set);
	(void)forwarding_sync(d, env); /* answered for in ARP again at once */
	submit(env, &a, NULL, 0);
	log_info("moves: '%s' is no longer MOVING here: %s", dv_addr_fmt(&a, s), why);
}

bool dv_dist_move_begin(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a)
{
	_cleanup_free_ struct dv_peer *peers = NULL;
	struct move_here *h;
	char s[DV_ADDR_STRLEN];
	size_t n = 0;

	if (!d || !env->sockdiag || !env->in_group || here_find(d, a))
		return false;
	peers = calloc(DV_DIST_PINS_MAX, sizeof(*peers));
	if (!peers || list_here(env, a, peers, &n) < 0 || n == 0)
		return false;
	dv_addr_fmt(a, s);
	if (d->n_here == DV_MOVE_MAX) {
		log_err("moves: more than %d addresses MOVING here: the connections on '%s' end", DV_MOVE_MAX, s);
		return false;
	}
	h = realloc(d->here, (d->n_here + 1) * sizeof(*h));
	if (!h)
		return false;
	d->here = h;
	d->here[d->n_here++] = (struct move_here){.addr = *a, .n = n, .sent_us = dv_mono_us()};
	/* Not answered for, not a source of ARP requests, before it is on lo. */
	dist_arp_settings(d, d->arp_ignore_set);
	if (forwarding_sync(d, env) < 0 || dist_lo_add(d, a) < 0) {
		d->n_here--;
		dist_arp_settings(d, d->arp_ignore_set);
		forwarding_sync(d, env);
		return false;
	}
	submit(env, a, peers, n);
	log_info("moves: '%s' moved to another node: its %zu connection(s) here stay, served from 'lo' "
		 "until they end (MOVING)",
		 s, n);
	d->mv_poll_us = dv_mono_us() + MOVE_POLL_US;
	d->mv_members = members_digest(env); /* they have the list now */
	timer_arm(d);
	return true;
}

void dv_dist_move_taken(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a)
{
	for (size_t i = 0; d && i < d->n_here; i++)
		if (dv_addr_eq(&d->here[i].addr, a)) {
			here_end(d, env, i, "this node owns it again");
			return;
		}
}

/* Every MOVE_POLL_US: the connections left; the list again when it
 * changed, or to members that may not have it. */
static void here_poll(struct dv_dist *d, const struct dv_dist_env *env, bool resend)
{
	_cleanup_free_ struct dv_peer *peers = NULL;
	uint64_t now = dv_mono_us();

	/* The timer's tick may come a little early (its accuracy). */
	if (!d->n_here || (!resend && now + MOVE_POLL_US / 10 < d->mv_poll_us))
		return;
	d->mv_poll_us = now + MOVE_POLL_US;
	peers = calloc(DV_DIST_PINS_MAX, sizeof(*peers));
	if (!peers)
		return;
	for (size_t i = 0; i < d->n_here;) {
		struct move_here *h = &d->here[i];
		size_t n = 0;

		if (!env->in_group) {
			here_end(d, env, i, "this node left its quorate group");
			continue;
		}
		if (list_here(env, &h->addr, peers, &n) < 0) {
			i++;
			continue;
		}
		/* Twice, a poll apart: a dump can miss a connection that
		 * moves from the handshake's table to the established one. */
		if (n == 0 && ++h->zeros >= 2) {
			here_end(d, env, i, "its last connection here ended");
			continue;
		}
		if (n == 0) {
			i++;
			continue;
		}
		h->zeros = 0;
		if (n != h->n)
			h->changed = true;
		h->n = n;
		if (resend || (h->changed && now - h->sent_us >= MOVE_RESEND_US)) {
			submit(env, &h->addr, peers, n);
			h->sent_us = now;
			h->changed = false;
		}
		i++;
	}
}

/* ---- the lists ---- */

void dv_dist_moving(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_event *ev)
{
	struct move_entry *m = NULL;
	struct dv_peer_pin *pins = NULL;

	if (!d)
		return;
	for (size_t i = 0; i < d->n_moves && !m; i++)
		if (d->moves[i].node == ev->node && dv_addr_eq(&d->moves[i].addr, &ev->moving.addr))
			m = &d->moves[i];
	if (!ev->moving.n) {
		if (m) {
			free(m->pins);
			*m = d->moves[--d->n_moves];
		}
		(void)forwarding_sync(d, env);
		return;
	}
	if (!m) {
		struct move_entry *nm;

		if (d->n_moves == DV_MOVE_MAX) {
			log_err("moves: more than %d old owners' lists: that of node %u is not kept", DV_MOVE_MAX,
				ev->node);
			return;
		}
		nm = realloc(d->moves, (d->n_moves + 1) * sizeof(*nm));
		if (!nm)
			return;
		d->moves = nm;
		m = &d->moves[d->n_moves++];
		*m = (struct move_entry){.addr = ev->moving.addr, .node = ev->node, .order = ++d->move_seq};
	}
	pins = malloc(ev->moving.n * sizeof(*pins));
	if (!pins)
		return;
	memcpy(pins, ev->moving.pins, ev->moving.n * sizeof(*pins));
	qsort(pins, ev->moving.n, sizeof(*pins), dist_peer_pin_cmp);
	free(m->pins);
	m->pins = pins;
	m->n = ev->moving.n;
	(void)forwarding_sync(d, env);
}

/* A member that left took its connections with it. */
static void drop_departed(struct dv_dist *d, const struct dv_dist_env *env)
{
	for (size_t i = 0; i < d->n_moves;)
		if (!dv_engine_is_member(env->engine, d->moves[i].node)) {
			free(d->moves[i].pins);
			d->moves[i] = d->moves[--d->n_moves];
		} else {
			i++;
		}
}

void dist_move_sync(struct dv_dist *d, const struct dv_dist_env *env)
{
	uint32_t digest = members_digest(env);
	bool resend = digest != d->mv_members;

	d->mv_members = digest;
	drop_departed(d, env);
	here_poll(d, env, resend);
	(void)forwarding_sync(d, env);
}

void dist_move_stop(struct dv_dist *d)
{
	table_remove(d);
	for (size_t i = 0; i < d->n_moves; i++)
		free(d->moves[i].pins);
	free(d->moves);
	d->moves = NULL;
	d->n_moves = 0;
	free(d->here);
	d->here = NULL;
	d->n_here = 0;
	d->mv_timer = sd_event_source_disable_unref(d->mv_timer);
}

/* ---- status ---- */

size_t dv_dist_moving_nodes(const struct dv_dist *d, const struct dv_addr *a, struct dv_moving *ret, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; d && i < d->n_moves && k < max; i++)
		if (dv_addr_eq(&d->moves[i].addr, a))
			ret[k++] = (struct dv_moving){.node = d->moves[i].node, .connections = d->moves[i].n};
	return k;
}

bool dist_move_routes(const struct dv_dist *d, const struct dv_addr *a)
{
	for (size_t i = 0; i < d->n_fwd; i++)
		if (dv_addr_eq(&d->fwd[i].addr, a))
			return true;
	return false;
}

int dist_move_conns(const struct dv_dist *d, const struct dv_addr *a, struct dv_records *out)
{
	char ab[DV_ADDR_STRLEN], cb[DV_ADDR_STRLEN];

	for (size_t i = 0; d && i < d->n_fwd; i++) {
		const struct move_fwd *fw = &d->fwd[i];

		if (a && !dv_addr_eq(&fw->addr, a))
			continue;
		dv_addr_fmt(&fw->addr, ab);
		for (size_t k = 0; k < fw->n; k++) {
			const char *name = NULL;

			for (size_t j = 0; j < d->n_nodes && !name; j++)
				if (d->nodes[j].id == fw->pins[k].node)
					name = d->nodes[j].name;
			dv_records_begin(out, DV_REC_CONN);
			dv_msgb_field_str(out->b, "addr", ab);
			dv_msgb_field_u64(out->b, "port", 0);
			dv_msgb_field_str(out->b, "client", dv_addr_fmt(&fw->pins[k].pin.addr, cb));
			dv_msgb_field_u64(out->b, "client_port", fw->pins[k].pin.port);
			dv_msgb_field_str(out->b, "target", name ? name : "?");
			dv_msgb_field_str(out->b, "state", "moving");
			dv_msgb_field_u64(out->b, "expires_ms", 0);
			if (dv_records_emit(out) < 0)
				return -EPIPE;
		}
	}
	return 0;
}

size_t dv_dist_moving_here(const struct dv_dist *d, const struct dv_addr *a)
{
	for (size_t i = 0; d && i < d->n_here; i++)
		if (dv_addr_eq(&d->here[i].addr, a))
			return d->here[i].n;
	return 0;
}
