// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ROUTED ranges (dvipa.conf(5), dvipad(8)): one local route per range in
 * table local, and the nftables tables of routed_rules.h that answer only
 * for the active addresses. An activation is one set element, not an
 * address: the kernel's per-address work (the local route of every /32
 * that fib_sync_up walks, the interface's address list, the lifetime
 * checker) does not grow with the count.
 *
 * Set-element changes are queued and sent together, one nf_tables
 * transaction for all that the event loop's iteration asked for (a
 * client's burst of requests, a client gone with all its holds): per
 * address, a netlink round trip and a transaction cost far more than the
 * element. The queue goes from an sd-event defer source of the kernel's
 * priority, so after the handler that filled it and before anything else;
 * dv_kroute_ops.done() then says how each change ended, and only then may
 * the daemon tell a program that its address is usable.
 *
 * The routes carry protocol DV_IFA_PROTO, so a restarted dvipad finds and
 * removes those of ranges no longer ROUTED. The crash guarantee comes from
 * the "alive" sets: their one element per range has a timeout of the
 * lease, refreshed every third of it from an sd-event timer; if dvipad
 * dies, every address of its routed ranges stops answering (packets and
 * ARP dropped) within the lease, route and tables left behind inert. A
 * change still queued when it dies never reached the kernel.
 */
#include "kernel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrset.h"
#include "cleanup.h"
#include "kernel_nft.h"
#include "prio.h"
#include "routed_rules.h"

#define NL_RX_SIZE (32u << 10)
#define MSG_SIZE 256 /* one route request */
/* Changes per transaction at most: 2,048 addresses are two messages of
 * ~33 KB each, well within a netlink socket's default send buffer
 * (wmem_default, 208 KiB); a fuller queue is sent at once. */
#define BATCH_MAX 2048
#define ELEM_SIZE 32 /* one element's attributes: list entry, key, value */

struct dv_kroute {
	sd_event *ev;
	struct dv_knft *nft; /* NULL: no ROUTED range */
	struct dv_nl nl;
	/* nf_tables, for the activations: one batch of two set-element
	 * messages straight over netlink costs a fraction of a libnftables
	 * run, which parses text and reads the ruleset's cache each time. */
	struct dv_nl nfnl;
	int lo;
	struct dv_prefix *p;
	size_t n;
	unsigned lease_s;
	/* What the kernel has once the queue is through: the active sets. */
	struct dv_addrset active;
	/* The queue: addresses to add (in active already) and to remove (no
	 * longer in active), each in one of them at most. */
	struct dv_addrset to_add, to_del;
	sd_event_source *timer;
	sd_event_source *flush_src; /* defer: sends the queue */
	const struct dv_kroute_ops *ops;
	void *ud;
	size_t telling; /* dv_kroute_telling() */
	bool refresh_failed;
	/* A removal failed: the kernel may answer for an address the engine
	 * no longer wants. The refresh rewrites the active sets first, and
	 * refreshes nothing while it cannot (the ranges go quiet). */
	bool dirty;
	char errmsg[320];
};

/* Run the text f holds (a memstream over *buf) as one nft transaction;
 * nft's message in r->errmsg on failure. */
static int run_text(struct dv_kroute *r, FILE *f, char **buf)
{
	_cleanup_free_ char *err = NULL;
	int k;

	if (fclose(f) != 0) {
		free(*buf);
		*buf = NULL;
		snprintf(r->errmsg, sizeof(r->errmsg), "out of memory");
		return -ENOMEM;
	}
	k = dv_knft_run(r->nft, *buf, &err);
	free(*buf);
	*buf = NULL;
	if (k < 0) {
		size_t len;

		snprintf(r->errmsg, sizeof(r->errmsg), "nftables: %s", err ? err : "failed");
		len = strlen(r->errmsg);
		while (len && r->errmsg[len - 1] == '\n')
			r->errmsg[--len] = '\0';
	}
	return k;
}

#define TEXT_BEGIN(f, buf, size)                                                                                       \
	do {                                                                                                           \
		(f) = open_memstream(&(buf), &(size));                                                                 \
		if (!(f))                                                                                              \
			return -ENOMEM;                                                                                \
	} while (0)

/* ---- routes ---- */

static struct nlmsghdr *route_msg(struct dv_kroute *r, char *buf, uint16_t type, uint16_t flags,
				  const struct dv_prefix *p)
{
	struct nlmsghdr *nlh = dv_nl_msg(&r->nl, buf, type, NLM_F_ACK | flags);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)p->addr.family;
	rtm->rtm_dst_len = p->len;
	rtm->rtm_table = RT_TABLE_LOCAL;
	rtm->rtm_protocol = DV_IFA_PROTO;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put(nlh, RTA_DST, dv_addr_size(&p->addr), p->addr.bytes);
	mnl_attr_put_u32(nlh, RTA_TABLE, RT_TABLE_LOCAL);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)r->lo);
	return nlh;
}

struct route_list {
	struct dv_prefix p[64];
	size_t n;
	bool more;
};

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_list *l = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	uint32_t table;
	struct dv_prefix p = {0};

	if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
		return MNL_CB_OK;
	if ((rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) || rtm->rtm_protocol != DV_IFA_PROTO ||
	    rtm->rtm_type != RTN_LOCAL)
		return MNL_CB_OK;
	p.addr.family = rtm->rtm_family;
	table = rtm->rtm_table;
	p.len = rtm->rtm_dst_len;
	mnl_attr_for_each(attr, nlh, sizeof(*rtm))
	{
		if (mnl_attr_get_type(attr) == RTA_TABLE && mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			table = mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == RTA_DST && mnl_attr_get_payload_len(attr) == dv_addr_size(&p.addr))
			memcpy(p.addr.bytes, mnl_attr_get_payload(attr), dv_addr_size(&p.addr));
	}
	if (table != RT_TABLE_LOCAL || p.len > 8 * dv_addr_size(&p.addr))
		return MNL_CB_OK;
	if (l->n == sizeof(l->p) / sizeof(l->p[0])) {
		l->more = true;
		return MNL_CB_OK;
	}
	l->p[l->n++] = p;
	return MNL_CB_OK;
}

static bool configured(const struct dv_kroute *r, const struct dv_prefix *p)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->p[i].len == p->len && dv_addr_eq(&r->p[i].addr, &p->addr))
			return true;
	return false;
}

/* Remove the routes of ours (by protocol) in table local that are not of
 * a configured range (all of them: everything = true). The number
 * removed, or -errno. */
static int prune_routes(struct dv_kroute *r, bool everything)
{
	static const uint8_t families[] = {AF_INET, AF_INET6};
	_Alignas(8) char buf[MSG_SIZE];
	int removed = 0;

	for (size_t fam = 0; fam < 2;) {
		struct route_list l = {0};
		struct nlmsghdr *nlh = dv_nl_msg(&r->nl, buf, RTM_GETROUTE, NLM_F_DUMP);
		struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		size_t gone = 0;
		int k;

		rtm->rtm_family = families[fam];
		k = dv_nl_request(&r->nl, nlh, route_cb, &l);
		if (k < 0)
			return k;
		for (size_t i = 0; i < l.n; i++) {
			if (!everything && configured(r, &l.p[i]))
				continue;
			k = dv_nl_request(&r->nl, route_msg(r, buf, RTM_DELROUTE, 0, &l.p[i]), NULL, NULL);
			if (k < 0 && k != -ESRCH)
				return k;
			removed++;
			gone++;
		}
		if (!l.more || gone == 0)
			fam++;
	}
	return removed;
}

/* ---- the refresh of the alive sets ---- */

static uint64_t refresh_usec(const struct dv_kroute *r)
{
	return (uint64_t)r->lease_s * 1000000 / 3;
}

static int refresh(struct dv_kroute *r)
{
	_cleanup_free_ char *buf = NULL;
	const struct dv_addr *a;
	size_t size;
	FILE *f;
	int k;

	/* The rewrite below is of the sets as they are once the queue is
	 * through. */
	dv_kroute_flush(r);
	TEXT_BEGIN(f, buf, size);
	if (r->dirty) {
		dv_routed_flush_write(f);
		for (size_t i = 0; dv_addrset_next(&r->active, &i, &a);)
			dv_routed_elem_write(f, a, true);
	}
	dv_routed_alive_write(f, r->p, r->n, r->lease_s);
	k = run_text(r, f, &buf);
	if (k == 0)
		r->dirty = false;
	return k;
}

static int on_refresh(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct dv_kroute *r = userdata;
	int k = refresh(r);

	/* Told once per run of failures; the next tick tries again, and the
	 * ranges stop answering at the end of the lease if none succeeds. */
	if (k < 0 && !r->refresh_failed && r->ops && r->ops->failed)
		r->ops->failed(r->ud, r->errmsg);
	r->refresh_failed = k < 0;
	if (sd_event_source_set_time(src, usec + refresh_usec(r)) < 0 ||
	    sd_event_source_set_enabled(src, SD_EVENT_ONESHOT) < 0) {
		if (r->ops && r->ops->failed)
			r->ops->failed(r->ud, "cannot plan the next refresh");
	}
	return 0;
}

/* ---- public ---- */

int dv_kroute_new(sd_event *ev, const struct dv_prefix *p, size_t n, unsigned lease_s, const struct dv_kroute_ops *ops,
		  void *ud, struct dv_kroute **ret)
{
	struct dv_kroute *r;

	if (lease_s == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (p[i].addr.family != AF_INET && p[i].addr.family != AF_INET6)
			return -EAFNOSUPPORT;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->ev = ev;
	r->lease_s = lease_s;
	r->ops = ops;
	r->ud = ud;
	if (n) {
		r->p = calloc(n, sizeof(*r->p));
		if (!r->p) {
			dv_kroute_free(r);
			return -ENOMEM;
		}
		memcpy(r->p, p, n * sizeof(*p));
		r->n = n;
	}
	*ret = r;
	return 0;
}

static int on_flush(sd_event_source *src, void *userdata);

static int start(struct dv_kroute *r)
{
	_cleanup_free_ char *buf = NULL;
	size_t size, n = r->n;
	FILE *f;
	int k;

	r->lo = (int)if_nametoindex("lo");
	if (r->lo <= 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "no interface 'lo'");
		return -ENODEV;
	}
	k = dv_nl_open(&r->nl, NETLINK_ROUTE, NL_RX_SIZE, 0);
	if (k < 0)
		return k;
	k = prune_routes(r, false);
	if (k < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "cannot remove the local routes of earlier ROUTED ranges: %s",
			 strerror(-k));
		return k;
	}
	k = dv_knft_new(&r->nft);
	if (k < 0)
		return k;
	k = dv_nl_open(&r->nfnl, NETLINK_NETFILTER, NL_RX_SIZE, 0);
	if (k < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "cannot open an nf_tables socket: %s", strerror(-k));
		return k;
	}
	if (n == 0) {
		/* Tables an earlier dvipad left: gone, if nftables works at
		 * all (it need not without ROUTED ranges). */
		f = open_memstream(&buf, &size);
		if (f) {
			dv_routed_rules_write(f, NULL, 0, r->lease_s);
			dv_routed_remove_write(f);
			(void)run_text(r, f, &buf);
		}
		r->nft = dv_knft_free(r->nft);
		r->errmsg[0] = '\0';
		return 0;
	}
	/* The filter first: the route never answers for an address the
	 * tables do not allow. The leftovers' active elements go with the
	 * old tables; the engine's addresses come back through add. */
	TEXT_BEGIN(f, buf, size);
	dv_routed_rules_write(f, r->p, r->n, r->lease_s);
	k = run_text(r, f, &buf);
	if (k < 0)
		return k;
	for (size_t i = 0; i < n; i++) {
		_Alignas(8) char rb[MSG_SIZE];

		k = dv_nl_request(&r->nl, route_msg(r, rb, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &r->p[i]), NULL,
				  NULL);
		if (k < 0) {
			snprintf(r->errmsg, sizeof(r->errmsg), "cannot add the local route: %s",
				 r->nl.ackmsg[0] ? r->nl.ackmsg : strerror(-k));
			return k;
		}
	}
	k = sd_event_add_time_relative(r->ev, &r->timer, CLOCK_MONOTONIC, refresh_usec(r), 100 * 1000, on_refresh, r);
	if (k < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "cannot start the refresh timer: %s", strerror(-k));
		return k;
	}
	/* The kernel's priority: the queue goes right after the handler that
	 * filled it, before the next client's requests. */
	k = sd_event_add_defer(r->ev, &r->flush_src, on_flush, r);
	if (k >= 0)
		k = sd_event_source_set_priority(r->flush_src, DV_PRIO_KERNEL);
	if (k >= 0)
		k = sd_event_source_set_enabled(r->flush_src, SD_EVENT_OFF);
	if (k < 0)
		snprintf(r->errmsg, sizeof(r->errmsg), "cannot set up the activations' queue: %s", strerror(-k));
	return k;
}

int dv_kroute_start(struct dv_kroute *r)
{
	int k = start(r);

	if (k < 0 && !r->errmsg[0])
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", strerror(-k));
	return k;
}

struct dv_kroute *dv_kroute_free(struct dv_kroute *r)
{
	if (!r)
		return NULL;
	r->timer = sd_event_source_disable_unref(r->timer);
	r->flush_src = sd_event_source_disable_unref(r->flush_src);
	r->nft = dv_knft_free(r->nft);
	dv_nl_close(&r->nl);
	dv_nl_close(&r->nfnl);
	dv_addrset_clear(&r->active);
	dv_addrset_clear(&r->to_add);
	dv_addrset_clear(&r->to_del);
	free(r->p);
	free(r);
	return NULL;
}

bool dv_kroute_covers(const struct dv_kroute *r, const struct dv_addr *a)
{
	if (!r || !a)
		return false;
	for (size_t i = 0; i < r->n; i++)
		if (dv_prefix_contains(&r->p[i], a))
			return true;
	return false;
}

bool dv_kroute_installed(const struct dv_kroute *r, const struct dv_addr *a)
{
	/* A queued removal: the kernel has it until the queue is through. */
	return r && (dv_addrset_has(&r->active, a) || dv_addrset_has(&r->to_del, a));
}

bool dv_kroute_answers(const struct dv_kroute *r, const struct dv_addr *a)
{
	/* Not before its element is in: a packet would be dropped. */
	return r && dv_addrset_has(&r->active, a) && !dv_addrset_has(&r->to_add, a);
}

bool dv_kroute_next(const struct dv_kroute *r, size_t *i, const struct dv_addr **ret)
{
	return r && dv_addrset_next(&r->active, i, ret);
}

size_t dv_kroute_count(const struct dv_kroute *r)
{
	return r ? r->active.n : 0;
}

static struct nlmsghdr *nft_msg(struct dv_kroute *r, char *buf, uint16_t type, uint16_t flags, uint8_t family,
				uint16_t res_id)
{
	struct nlmsghdr *nlh = dv_nl_msg(&r->nfnl, buf, type, flags);
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));

	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(res_id);
	return nlh;
}

/* One set-element message at buf: a[0..n) added to (or deleted from) the
 * active set of family (the table's; the addresses are of its family);
 * its length. */
static size_t elem_msg(struct dv_kroute *r, char *buf, uint8_t family, const struct dv_addr *const *a, size_t n,
		       bool add)
{
	struct nlmsghdr *nlh =
		nft_msg(r, buf, (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM),
			NLM_F_ACK | (add ? NLM_F_CREATE : 0), family, 0);
	struct nlattr *list;

	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, DV_ROUTED_TABLE);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, "active");
	list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (size_t i = 0; i < n; i++) {
		struct nlattr *elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
		struct nlattr *key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);

		mnl_attr_put(nlh, NFTA_DATA_VALUE, dv_addr_size(a[i]), a[i]->bytes);
		mnl_attr_nest_end(nlh, key);
		mnl_attr_nest_end(nlh, elem);
	}
	mnl_attr_nest_end(nlh, list);
	return nlh->nlmsg_len;
}

/* Of v[0..n), those of family af (in place, the others after them); how many. */
static size_t partition(const struct dv_addr **v, size_t n, int af)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i]->family == af) {
			const struct dv_addr *t = v[m];

			v[m++] = v[i];
			v[i] = t;
		}
	return m;
}

/* One nf_tables transaction: add[0..n_add) to the active sets of their
 * family and del[0..n_del) from them (the equivalent of
 * dv_routed_elem_write() for each; the arrays are reordered). All or
 * nothing: the first error aborts it. */
static int send_elems(struct dv_kroute *r, const struct dv_addr **add, size_t n_add, const struct dv_addr **del,
		      size_t n_del)
{
	/* The tables of routed_rules.c, by the family of their addresses. */
	static const struct {
		uint8_t table, af;
	} tables[] = {{NFPROTO_IPV4, AF_INET}, {NFPROTO_ARP, AF_INET}, {NFPROTO_IPV6, AF_INET6}};
	size_t add4 = partition(add, n_add, AF_INET), del4 = partition(del, n_del, AF_INET);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	uint32_t first;
	unsigned msgs = 0;
	int k;

	/* An IPv4 address goes to two tables, an IPv6 one to one. */
	buf = malloc(2 * NLMSG_HDRLEN + 6 * MSG_SIZE + 2 * (n_add + n_del) * ELEM_SIZE);
	if (!buf)
		return -ENOMEM;
	len += nft_msg(r, buf, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES)->nlmsg_len;
	first = r->nfnl.seq + 1;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		bool v4 = tables[i].af == AF_INET;
		size_t na = v4 ? add4 : n_add - add4, nd = v4 ? del4 : n_del - del4;

		/* The IPv4 ones first in each array (partition()). */
		if (na) {
			len += elem_msg(r, buf + len, tables[i].table, v4 ? add : add + add4, na, true);
			msgs++;
		}
		if (nd) {
			len += elem_msg(r, buf + len, tables[i].table, v4 ? del : del + del4, nd, false);
			msgs++;
		}
	}
	len += nft_msg(r, buf + len, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES)->nlmsg_len;
	k = dv_nl_send(&r->nfnl, buf, len);
	if (k == 0)
		k = dv_nl_wait(&r->nfnl, first, msgs, NULL, NULL, NULL);
	/* Removing an element that is not there is no failure: said only by
	 * a transaction of that one removal (the caller's fallback). */
	if (k == -ENOENT && n_add == 0 && n_del == 1)
		k = 0;
	if (k < 0)
		snprintf(r->errmsg, sizeof(r->errmsg), "nftables: %s",
			 r->nfnl.ackmsg[0] ? r->nfnl.ackmsg : strerror(-k));
	return k;
}

static int elem_ptrs(const struct dv_addrset *s, const struct dv_addr ***ret)
{
	const struct dv_addr **v = malloc((s->n ? s->n : 1) * sizeof(*v));
	const struct dv_addr *a;
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; dv_addrset_next(s, &i, &a);)
		v[n++] = a;
	*ret = v;
	return 0;
}

/* How a's change ended: the state kept, and the daemon told. */
static void change_done(struct dv_kroute *r, const struct dv_addr *a, bool add, int err)
{
	/* A failed addition is not active; a failed removal is forgotten
	 * all the same and made good by the next refresh. */
	if (err < 0 && add)
		(void)dv_addrset_del(&r->active, a);
	if (err < 0 && !add)
		r->dirty = true;
	if (r->ops && r->ops->done)
		r->ops->done(r->ud, a, add, err);
}

size_t dv_kroute_telling(const struct dv_kroute *r)
{
	return r ? r->telling : 0;
}

static void told_note(struct dv_kroute_told *t, const struct dv_addr *a, bool add)
{
	size_t *n = add ? &t->added : &t->removed;
	struct dv_addr *lo = add ? &t->add_lo : &t->del_lo, *hi = add ? &t->add_hi : &t->del_hi;

	if (*n == 0 || dv_addr_cmp(a, lo) < 0)
		*lo = *a;
	if (*n == 0 || dv_addr_cmp(a, hi) > 0)
		*hi = *a;
	(*n)++;
}

/* Send the queue and say how each change ended, then how they all did.
 * The queue is taken out first: done() may queue new changes (a refused
 * address released), and even send them (a full queue). */
static void queue_send(struct dv_kroute *r)
{
	struct dv_addrset add = r->to_add, del = r->to_del;
	_cleanup_free_ const struct dv_addr **va = NULL, **vd = NULL;
	_cleanup_free_ int *errs = NULL;
	struct dv_kroute_told told = {.n = add.n + del.n};
	size_t was = r->telling;
	const struct dv_addr *a;
	int k;

	if (add.n == 0 && del.n == 0)
		return;
	r->to_add = (struct dv_addrset){0};
	r->to_del = (struct dv_addrset){0};
	k = elem_ptrs(&add, &va);
	if (k == 0)
		k = elem_ptrs(&del, &vd);
	if (k < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "out of memory");
		for (size_t i = 0; dv_addrset_next(&add, &i, &a);)
			change_done(r, a, true, k);
		for (size_t i = 0; dv_addrset_next(&del, &i, &a);)
			change_done(r, a, false, k);
	} else {
		k = send_elems(r, va, add.n, vd, del.n);
		/* The transaction failed: each change alone, so that one bad
		 * element (one someone else removed, say) fails no other. */
		if (k < 0 && add.n + del.n > 1)
			errs = calloc(add.n + del.n, sizeof(*errs));
		for (size_t i = 0; errs && i < add.n + del.n; i++)
			errs[i] = i < add.n ? send_elems(r, &va[i], 1, NULL, 0)
					    : send_elems(r, NULL, 0, &vd[i - add.n], 1);
		r->telling = told.n;
		for (size_t i = 0; i < add.n + del.n; i++) {
			const struct dv_addr *c = i < add.n ? va[i] : vd[i - add.n];
			int err = errs ? errs[i] : k;

			change_done(r, c, i < add.n, err);
			if (err == 0)
				told_note(&told, c, i < add.n);
		}
		r->telling = was;
		if (r->ops && r->ops->told)
			r->ops->told(r->ud, &told);
	}
	dv_addrset_clear(&add);
	dv_addrset_clear(&del);
}

static int on_flush(sd_event_source *src, void *userdata)
{
	struct dv_kroute *r = userdata;

	(void)sd_event_source_set_enabled(src, SD_EVENT_OFF);
	queue_send(r);
	return 0;
}

void dv_kroute_flush(struct dv_kroute *r)
{
	if (!r)
		return;
	if (r->flush_src)
		(void)sd_event_source_set_enabled(r->flush_src, SD_EVENT_OFF);
	queue_send(r);
}

/* Queue a's change; the queue goes at the end of the loop's iteration, or
 * now if full (before a joins it, so that done() about a comes after its
 * caller has seen it queued; unless the defer source fails). */
static int queue(struct dv_kroute *r, const struct dv_addr *a, bool add)
{
	if (r->to_add.n + r->to_del.n >= BATCH_MAX)
		dv_kroute_flush(r);
	if (dv_addrset_add(add ? &r->to_add : &r->to_del, a) < 0)
		return -ENOMEM;
	if (!r->flush_src || sd_event_source_set_enabled(r->flush_src, SD_EVENT_ONESHOT) < 0) {
		/* Not planned: sent now, as one transaction of its own. */
		dv_kroute_flush(r);
	}
	return 1;
}

static int change(struct dv_kroute *r, const struct dv_addr *a, bool add)
{
	int k;

	if (!dv_kroute_covers(r, a))
		return -EINVAL;
	/* The other change of a, queued, goes first, and its program hears
	 * of it before this one's: the order they were asked in. */
	if (dv_addrset_has(add ? &r->to_del : &r->to_add, a))
		dv_kroute_flush(r);
	if (dv_addrset_has(&r->active, a) == add)
		return 0;
	k = add ? dv_addrset_add(&r->active, a) : dv_addrset_del(&r->active, a);
	if (k >= 0)
		k = queue(r, a, add);
	if (k < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "out of memory");
		/* A removal is forgotten all the same, made good by the next
		 * refresh. */
		if (add)
			(void)dv_addrset_del(&r->active, a);
		else
			r->dirty = true;
	}
	return k;
}

int dv_kroute_add(struct dv_kroute *r, const struct dv_addr *a)
{
	return change(r, a, true);
}

int dv_kroute_del(struct dv_kroute *r, const struct dv_addr *a)
{
	return change(r, a, false);
}

bool dv_kroute_pending(const struct dv_kroute *r, const struct dv_addr *a)
{
	return r && (dv_addrset_has(&r->to_add, a) || dv_addrset_has(&r->to_del, a));
}

void dv_kroute_del_all(struct dv_kroute *r)
{
	_cleanup_free_ char *buf = NULL;
	size_t size;
	FILE *f;

	if (!r || !r->nft)
		return;
	/* What was asked for before happens first, as it would have one by
	 * one: additions and their programs told, then all go. */
	dv_kroute_flush(r);
	f = open_memstream(&buf, &size);
	if (!f)
		return;
	dv_routed_flush_write(f);
	/* Forgotten whatever the kernel said; a failure is made good by the
	 * next refresh. */
	if (run_text(r, f, &buf) < 0)
		r->dirty = true;
	dv_addrset_clear(&r->active);
}

int dv_kroute_remove(struct dv_kroute *r)
{
	_cleanup_free_ char *buf = NULL;
	size_t size;
	FILE *f;
	int k;

	if (!r || !r->nft)
		return 0;
	r->timer = sd_event_source_disable_unref(r->timer);
	r->flush_src = sd_event_source_disable_unref(r->flush_src);
	dv_addrset_clear(&r->to_add);
	dv_addrset_clear(&r->to_del);
	k = prune_routes(r, true);
	if (k < 0)
		return k;
	TEXT_BEGIN(f, buf, size);
	dv_routed_remove_write(f);
	k = run_text(r, f, &buf);
	dv_addrset_clear(&r->active);
	return k;
}

const char *dv_kroute_last_error(const struct dv_kroute *r)
{
	return r->errmsg;
}
