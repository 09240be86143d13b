/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host addresses through rtnetlink (libmnl).
 *
 * Two sockets: "req" carries our requests, one at a time or in batches,
 * each answered by an ACK we wait for (seq and port id checked); "mon" is
 * subscribed to the address groups and tells us when someone else removes
 * one of our addresses. The desired set is on the one hash table (hashtab.h) so
 * that add, del and lookup stay O(1) with tens of thousands of addresses.
 */
#include "kernel.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addrset.h"
#include "cleanup.h"
#include "clock.h"
#include "hashtab.h"
#include "lease.h"
#include "prio.h"

#define KADDR_MAX 65536		  /* desired addresses */
#define SLOTS_MAX (2 * KADDR_MAX) /* desired, or awaiting the notification of our removal */
#define BATCH_MAX 256		  /* requests per sendmsg during refresh and removal */
#define MSG_ROOM 256		  /* upper bound of one address request */
#define TX_SIZE (BATCH_MAX * MSG_ROOM)
#define RX_SIZE 65536 /* larger than any dump skb the kernel builds */
#define SOCK_BUF (8 << 20)
#define DUMP_RETRIES 5
#define MON_BURST 64	/* datagrams per wake-up, so the loop is not starved */
#define SLICE_USEC 1000 /* refresh work per loop iteration */

struct slot {
	struct dv_addr a; /* first: the key of dv_addr_item_hash() */
	bool desired;
	/* RTM_DELADDRs we issued whose notification the monitor has not read
	 * yet: those are ours, not someone else's removal. */
	uint16_t own_dels;
	uint32_t seen;	  /* sync generation in which a dump showed it */
	uint64_t expires; /* CLOCK_MONOTONIC usec: the end of the lifetime we gave it */
	uint32_t life_s;  /* that lifetime */
};

/* One address of a refresh pass, with the end of its lifetime. */
struct pass_item {
	uint64_t expires;
	struct dv_addr a;
};

struct dv_kaddr {
	sd_event *ev;
	struct dv_nl req, mon;
	int ifindex;
	uint8_t mac[6];
	unsigned lease_s;	    /* configured: the shortest lifetime */
	unsigned lease_cur;	    /* the lifetime addresses are given now */
	struct dv_lease_cost model; /* the last pass over DV_LEASE_MODEL_MIN or more */
	const struct dv_kaddr_ops *ops;
	void *ud;
	sd_event_source *mon_src, *refresh_src;

	struct dv_hashtab slots; /* of struct slot */
	struct slot *spare;	 /* for the next slot_insert() */
	size_t n_desired;
	uint32_t gen;

	/* The refresh pass under way: a snapshot worked off in slices, the
	 * lifetimes that end first first. */
	struct pass_item *pass;
	size_t pass_n, pass_pos;
	uint64_t pass_start; /* CLOCK_MONOTONIC usec */
	uint64_t pass_cpu;   /* thread CPU usec the pass has taken so far */
	uint64_t next_at;    /* CLOCK_MONOTONIC usec: the next pass, when none is under way */
	size_t pass_set;     /* addresses held when the pass began (it refreshes those due) */
	unsigned batch;	     /* requests per sendmsg, adapted to the kernel's speed */

	char *tx;
	char errmsg[320];
	struct dv_kroute *routed; /* addresses of ROUTED ranges go there */
};

struct ifa_info {
	struct dv_addr a;
	int ifindex;
	unsigned plen;
	uint8_t proto;
};

static bool family_ok(const struct dv_addr *a)
{
	return a && (a->family == AF_INET || a->family == AF_INET6);
}

/* ---------------- desired set ---------------- */

#define slot_hash dv_addr_item_hash
#define slot_match dv_addr_item_match
_Static_assert(offsetof(struct slot, a) == 0, "a slot begins with its key");

static struct slot *slot_find(const struct dv_kaddr *k, const struct dv_addr *a)
{
	return dv_hashtab_get(&k->slots, dv_addr_hash(a), slot_match, a);
}

static bool slot_keep(void *item, void *ud)
{
	struct slot *s = item;
	const bool *forget_dels = ud;

	if (*forget_dels)
		s->own_dels = 0;
	if (s->desired || s->own_dels)
		return true;
	free(s);
	return false;
}

/* Drop the slots that are neither desired nor awaiting a notification; with
 * forget_dels, forget every own_dels first (after a monitor overrun). */
static void slots_drop_idle(struct dv_kaddr *k, bool forget_dels)
{
	dv_hashtab_filter(&k->slots, slot_keep, &forget_dels, slot_hash);
}

/* Room for one more slot, so that the insert after a successful kernel
 * request cannot fail. */
static int slots_reserve(struct dv_kaddr *k)
{
	if (dv_hashtab_size(&k->slots) + 1 > SLOTS_MAX)
		return -ENOSPC;
	if (!k->spare) {
		k->spare = malloc(sizeof(*k->spare));
		if (!k->spare)
			return -ENOMEM;
	}
	return dv_hashtab_reserve(&k->slots, 1, slot_hash);
}

/* After slots_reserve(). */
static struct slot *slot_insert(struct dv_kaddr *k, const struct dv_addr *a)
{
	struct slot *s = slot_find(k, a);

	if (s)
		return s;
	s = TAKE_PTR(k->spare);
	*s = (struct slot){.a = *a};
	(void)dv_hashtab_put(&k->slots, s, slot_hash);
	return s;
}

static void slot_remove(struct dv_kaddr *k, struct slot *s)
{
	dv_hashtab_del(&k->slots, dv_hashtab_find(&k->slots, slot_hash(s), slot_match, &s->a), slot_hash);
	free(s);
}

static void slot_put(struct dv_kaddr *k, struct slot *s)
{
	if (!s->desired && !s->own_dels)
		slot_remove(k, s);
}

static void set_desired(struct dv_kaddr *k, struct slot *s, bool desired)
{
	if (s->desired == desired)
		return;
	s->desired = desired;
	if (desired)
		k->n_desired++;
	else
		k->n_desired--;
}

/* ---------------- netlink round trips ---------------- */

static void set_error(struct dv_kaddr *k, int r)
{
	if (k->req.ackmsg[0])
		snprintf(k->errmsg, sizeof(k->errmsg), "%s (%s)", k->req.ackmsg, strerror(-r));
	else
		snprintf(k->errmsg, sizeof(k->errmsg), "%s", strerror(-r));
}

static struct nlmsghdr *put_addr_msg(struct dv_kaddr *k, char *buf, uint16_t type, const struct dv_addr *a,
				     unsigned plen)
{
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	nlh = dv_nl_msg(&k->req, buf, type, NLM_F_ACK | (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_REPLACE : 0));
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = a->family;
	ifa->ifa_prefixlen = (uint8_t)plen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)k->ifindex;
	/* IPv4 names the address IFA_LOCAL (IFA_ADDRESS is the peer); IPv6
	 * uses IFA_LOCAL only for a peer configuration. */
	if (a->family == AF_INET)
		mnl_attr_put(nlh, IFA_LOCAL, 4, &a->v4);
	mnl_attr_put(nlh, IFA_ADDRESS, dv_addr_size(a), a->bytes);
	if (type == RTM_NEWADDR) {
		struct ifa_cacheinfo ci = {.ifa_prefered = k->lease_cur, .ifa_valid = k->lease_cur};
		uint32_t flags = 0;

		/*
		 * No kernel DAD: dvipad probes the address itself before the
		 * first activation (dv_probe_start), and on a move the address
		 * is legitimately still on the old owner for a moment. Kernel
		 * DAD would keep the address tentative (unusable for bind and
		 * for replies) for a second or more, and on seeing the old
		 * owner's answer mark it dadfailed for good, which breaks fast
		 * takeover.
		 */
		if (a->family == AF_INET6) {
			flags |= IFA_F_NODAD;
			ifa->ifa_flags = IFA_F_NODAD;
		}
		mnl_attr_put_u32(nlh, IFA_FLAGS, flags);
		mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
		mnl_attr_put_u8(nlh, IFA_PROTO, DV_IFA_PROTO);
	}
	return nlh;
}

/* The end of the lifetime a request sent at `sent` gives: the kernel
 * starts it when it handles the request, no earlier. */
static uint64_t lease_end(const struct dv_kaddr *k, uint64_t sent)
{
	return sent + (uint64_t)k->lease_cur * 1000000;
}

static void slot_leased(struct dv_kaddr *k, struct slot *s, uint64_t sent);

/* On success, *s (if any) learns when the lifetime it now has ends. */
static int send_add(struct dv_kaddr *k, const struct dv_addr *a, struct slot *s)
{
	const struct nlmsghdr *nlh = put_addr_msg(k, k->tx, RTM_NEWADDR, a, dv_addr_maxlen(a));
	uint64_t sent = dv_mono_us();
	int r;

	r = dv_nl_request(&k->req, nlh, NULL, NULL);
	if (r == 0 && s)
		slot_leased(k, s, sent);
	return r;
}

static bool del_ok(int r)
{
	return r == 0 || r == -ENOENT || r == -EADDRNOTAVAIL;
}

static int send_del(struct dv_kaddr *k, const struct dv_addr *a, unsigned plen)
{
	int r;

	r = dv_nl_request(&k->req, put_addr_msg(k, k->tx, RTM_DELADDR, a, plen), NULL, NULL);
	/* Already gone: the kernel sends no notification either. */
	if (r == -ENOENT || r == -EADDRNOTAVAIL)
		return 1;
	return r;
}

/* ---------------- parsing ---------------- */

static int ifa_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);
	int r;

	switch (type) {
	case IFA_ADDRESS:
	case IFA_LOCAL:
		r = mnl_attr_validate(attr, MNL_TYPE_BINARY);
		break;
	case IFA_PROTO:
		r = mnl_attr_validate(attr, MNL_TYPE_U8);
		break;
	default:
		return MNL_CB_OK;
	}
	if (r < 0)
		return MNL_CB_ERROR;
	tb[type] = attr;
	return MNL_CB_OK;
}

/* -EAFNOSUPPORT for families we do not handle, -EBADMSG for malformed. */
static int parse_ifa(const struct nlmsghdr *nlh, struct ifa_info *ret)
{
	const struct nlattr *tb[IFA_MAX + 1] = {0};
	const struct ifaddrmsg *ifa;
	const struct nlattr *at;
	struct ifa_info info = {0};

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)))
		return -EBADMSG;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (mnl_attr_parse(nlh, sizeof(*ifa), ifa_attr_cb, tb) != MNL_CB_OK)
		return -EBADMSG;
	info.a.family = ifa->ifa_family;
	at = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!at || mnl_attr_get_payload_len(at) != dv_addr_size(&info.a))
		return -EBADMSG;
	memcpy(info.a.bytes, mnl_attr_get_payload(at), dv_addr_size(&info.a));
	info.ifindex = (int)ifa->ifa_index;
	info.plen = ifa->ifa_prefixlen;
	info.proto = tb[IFA_PROTO] ? mnl_attr_get_u8(tb[IFA_PROTO]) : 0;
	*ret = info;
	return 0;
}

struct ifa_list {
	int ifindex;
	struct ifa_info *v;
	size_t n, cap;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifa_list *l = data;
	struct ifa_info info;
	int r;

	if (nlh->nlmsg_type != RTM_NEWADDR)
		return 0;
	r = parse_ifa(nlh, &info);
	if (r == -EAFNOSUPPORT)
		return 0;
	if (r < 0)
		return r;
	if (info.ifindex != l->ifindex)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct ifa_info *nv = reallocarray(l->v, ncap, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = info;
	return 0;
}

/* The interface's addresses, both families, consistent (retried when the
 * kernel flags the dump as interrupted by a concurrent change). */
static int dump_addrs(struct dv_kaddr *k, struct ifa_list *l)
{
	static const uint8_t families[] = {AF_INET, AF_INET6};
	int r = -EINTR;

	for (unsigned attempt = 0; attempt < DUMP_RETRIES && r == -EINTR; attempt++) {
		l->n = 0;
		r = 0;
		for (size_t f = 0; f < sizeof(families) && r == 0; f++) {
			struct nlmsghdr *nlh = dv_nl_msg(&k->req, k->tx, RTM_GETADDR, NLM_F_DUMP);
			struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

			ifa->ifa_family = families[f];
			r = dv_nl_request(&k->req, nlh, dump_cb, l);
		}
	}
	return r;
}

/* ---------------- keeping the kernel in line ---------------- */

/*
 * Compare the kernel's addresses with the desired set. Desired ones that
 * are missing are re-added (ops->readded). With reconcile, tagged ones
 * that are not desired are adopted if keep() says so, else removed, and
 * untagged ones are collected in *local.
 */
static int sync_addrs(struct dv_kaddr *k, bool reconcile, bool (*keep)(void *ud, const struct dv_addr *a), void *ud,
		      struct ifa_list *local, int *ret_removed)
{
	_cleanup_free_ struct ifa_info *v = NULL;
	_cleanup_free_ struct dv_addr *missing = NULL;
	struct ifa_list l = {.ifindex = k->ifindex};
	size_t n_missing = 0;
	int removed = 0, result = 0, r;

	r = dump_addrs(k, &l);
	v = l.v;
	if (r < 0) {
		set_error(k, r);
		return r;
	}

	k->gen++;
	for (size_t i = 0; i < l.n; i++) {
		const struct ifa_info *x = &v[i];
		bool host = x->plen == dv_addr_maxlen(&x->a);
		struct slot *s = slot_find(k, &x->a);

		if (x->proto != DV_IFA_PROTO) {
			if (s && s->desired && host)
				s->seen = k->gen;
			if (reconcile && local) {
				if (local->n == local->cap) {
					size_t ncap = local->cap ? local->cap * 2 : 16;
					struct ifa_info *nv = reallocarray(local->v, ncap, sizeof(*nv));

					if (!nv)
						return -ENOMEM;
					local->v = nv;
					local->cap = ncap;
				}
				local->v[local->n++] = *x;
			}
			continue;
		}
		if (s && s->desired && host) {
			s->seen = k->gen;
			if (reconcile) {
				/* Restart the lease of what we already own. */
				r = send_add(k, &x->a, s);
				if (r < 0) {
					set_error(k, r);
					if (result == 0)
						result = r;
				}
			}
			continue;
		}
		if (!reconcile)
			continue;
		if (host && keep && keep(ud, &x->a) && k->n_desired < KADDR_MAX && slots_reserve(k) == 0) {
			/* Adopt: a fresh lease now, refreshed from here on. */
			uint64_t sent = dv_mono_us();

			r = send_add(k, &x->a, NULL);
			if (r < 0) {
				set_error(k, r);
				if (result == 0)
					result = r;
				continue;
			}
			s = slot_insert(k, &x->a);
			set_desired(k, s, true);
			s->seen = k->gen;
			slot_leased(k, s, sent);
			continue;
		}
		/* Not in the desired set: the monitor ignores its removal. */
		r = send_del(k, &x->a, x->plen);
		if (r < 0) {
			set_error(k, r);
			if (result == 0)
				result = r;
		} else if (r == 0) {
			removed++;
		}
	}

	/* Collect first: readded() may change the set under our feet. */
	if (k->n_desired) {
		struct slot *s;

		missing = calloc(k->n_desired, sizeof(*missing));
		if (!missing)
			return -ENOMEM;
		DV_HASHTAB_FOREACH(s, &k->slots)
			if (s->desired && s->seen != k->gen)
				missing[n_missing++] = s->a;
	}
	for (size_t i = 0; i < n_missing; i++) {
		struct slot *s = slot_find(k, &missing[i]);

		if (!s || !s->desired)
			continue;
		r = send_add(k, &missing[i], s);
		if (r < 0)
			set_error(k, r);
		if (k->ops && k->ops->readded)
			k->ops->readded(k->ud, &missing[i], r);
	}
	if (ret_removed)
		*ret_removed = removed;
	return result;
}

/* ---------------- monitor ---------------- */

static void resync(struct dv_kaddr *k)
{
	/* Queued notifications predate the loss and would be judged against
	 * own_dels we are about to forget: drop them, the dump tells all. */
	for (;;) {
		ssize_t n = dv_nl_recv(&k->mon);

		if (n < 0 && n != -EINTR)
			break;
	}
	slots_drop_idle(k, true);
	(void)sync_addrs(k, false, NULL, NULL, NULL, NULL);
}

static void on_deladdr(struct dv_kaddr *k, const struct nlmsghdr *nlh)
{
	struct ifa_info info;
	struct slot *s;
	int r;

	if (parse_ifa(nlh, &info) < 0 || info.ifindex != k->ifindex || info.plen != dv_addr_maxlen(&info.a))
		return;
	s = slot_find(k, &info.a);
	if (!s)
		return;
	if (s->own_dels) {
		s->own_dels--;
		slot_put(k, s);
		return;
	}
	if (!s->desired)
		return;
	r = send_add(k, &info.a, s);
	if (r < 0)
		set_error(k, r);
	if (k->ops && k->ops->readded)
		k->ops->readded(k->ud, &info.a, r);
}

static int on_monitor(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct dv_kaddr *k = userdata;

	(void)src, (void)fd, (void)revents;
	for (unsigned burst = 0; burst < MON_BURST; burst++) {
		ssize_t len = dv_nl_recv(&k->mon);
		int left;

		if (len == -EINTR)
			continue;
		if (len == -ENOBUFS) {
			resync(k);
			break;
		}
		if (len < 0)
			break;
		left = (int)len;
		for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)k->mon.rx; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left))
			if (nlh->nlmsg_type == RTM_DELADDR)
				on_deladdr(k, nlh);
	}
	/* A negative return would disable the source for good. */
	return 0;
}

/* ---------------- refresh ---------------- */

/* Every third of the lifetime the addresses were given. */
static uint64_t refresh_usec(const struct dv_kaddr *k)
{
	return (uint64_t)k->lease_cur * 1000000 / 3;
}

/* When an address wants its refresh: a third into its lifetime. */
static uint64_t slot_due(const struct slot *s)
{
	return s->expires - (uint64_t)s->life_s * 2000000 / 3;
}

static void refresh_at(struct dv_kaddr *k, uint64_t at)
{
	k->next_at = at;
	(void)sd_event_source_set_time_accuracy(k->refresh_src, refresh_usec(k) / 10);
	(void)sd_event_source_set_time(k->refresh_src, at);
	(void)sd_event_source_set_enabled(k->refresh_src, SD_EVENT_ONESHOT);
}

/*
 * *s got a lifetime from a request sent at `sent`. The next pass must come
 * by the time it is due: a lifetime shorter than the one the pass was
 * planned for (the lease fell back to LEASE as the set shrank, measured:
 * a pass 102 s away, 10,098 addresses given 30 s lapsed). During a pass
 * the pass's end plans the next one from every address.
 */
static void slot_leased(struct dv_kaddr *k, struct slot *s, uint64_t sent)
{
	s->expires = lease_end(k, sent);
	s->life_s = k->lease_cur;
	if (!k->pass && k->refresh_src && slot_due(s) < k->next_at)
		refresh_at(k, slot_due(s));
}

/*
 * The lifetime for the next pass, from what this one cost (lease.h): a pass
 * over n IPv4 addresses costs the kernel O(n^2) (inet_rtm_newaddr walks the
 * interface's address list), at 65,536 seconds of CPU. Rather than spend a
 * core on it, the lifetime grows until the refresh takes 1/DV_LEASE_SHARE
 * of one, and a pass ends within a third of the lifetime, or on a starved
 * machine addresses would lapse while held (measured: hundreds of 7,800
 * with LEASE 30 at load 20). With few addresses it stays the configured
 * LEASE (dvipad(8)).
 */
static void adapt_lease(struct dv_kaddr *k)
{
	struct dv_lease_cost pass = {.n = k->pass_n, .cpu_us = k->pass_cpu, .wall_us = dv_mono_us() - k->pass_start};
	unsigned lease, last;

	/* A pass refreshes the addresses that are due; each cost a walk of
	 * all pass_set, so a pass over all would have cost pass_set / n
	 * times as much. */
	if (pass.n && k->pass_set > pass.n) {
		pass.cpu_us = pass.cpu_us * k->pass_set / pass.n;
		pass.wall_us = pass.wall_us * k->pass_set / pass.n;
		pass.n = k->pass_set;
	}
	if (k->pass_n >= DV_LEASE_MODEL_MIN)
		k->model = pass;
	/* What this pass cost, and what the model says of the set as it is
	 * now (it may have grown or shrunk meanwhile). */
	last = dv_lease_for(k->lease_s, &pass, pass.n);
	lease = dv_lease_for(k->lease_s, &k->model, k->n_desired);
	if (last > lease)
		lease = last;
	if (lease == k->lease_cur)
		return;
	k->lease_cur = lease;
	if (k->ops && k->ops->lease_changed)
		k->ops->lease_changed(k->ud, lease, pass.n, pass.cpu_us, pass.wall_us);
}

/*
 * An address joins a set of n: it gets the lifetime a pass over n needs.
 * Waiting for the next pass to find out is too late while the set grows
 * fast (lease.h). A quarter more than needed, so that a growing set
 * raises it (and logs it) a few times, not once per address.
 */
static void lease_for_growth(struct dv_kaddr *k, size_t n)
{
	unsigned want = dv_lease_for(k->lease_s, &k->model, n);

	if (want <= k->lease_cur)
		return;
	want += want / 4;
	k->lease_cur = want > DV_LEASE_MAX && k->lease_s <= DV_LEASE_MAX ? DV_LEASE_MAX : want;
	if (k->ops && k->ops->lease_changed)
		k->ops->lease_changed(k->ud, k->lease_cur, k->model.n, k->model.cpu_us, k->model.wall_us);
}

/* Re-send NEWADDR for the next addresses of the pass, for about
 * SLICE_USEC. Returns true when the pass is complete. */
static bool refresh_slice(struct dv_kaddr *k)
{
	uint64_t t0 = dv_mono_us(), cpu0 = dv_thread_cpu_us(), t;
	struct slot *batch[BATCH_MAX];
	int errs[BATCH_MAX];

	do {
		size_t len = 0;
		unsigned n = 0;
		uint32_t first = k->req.seq + 1;
		uint64_t tb = dv_mono_us();
		int r;

		for (; k->pass_pos < k->pass_n && n < k->batch; k->pass_pos++) {
			const struct dv_addr *a = &k->pass[k->pass_pos].a;
			struct slot *sl = slot_find(k, a);
			const struct nlmsghdr *nlh;

			/* Removed since the snapshot. */
			if (!sl || !sl->desired)
				continue;
			nlh = put_addr_msg(k, k->tx + len, RTM_NEWADDR, a, dv_addr_maxlen(a));
			len += nlh->nlmsg_len;
			errs[n] = -ETIMEDOUT;
			batch[n++] = sl;
		}
		if (!n)
			break;
		r = dv_nl_send(&k->req, k->tx, len);
		if (r == 0)
			r = dv_nl_wait(&k->req, first, n, NULL, NULL, errs);
		if (r < 0)
			set_error(k, r);
		/* Nothing runs between the send and here that could free a
		 * slot (no callbacks). */
		for (unsigned j = 0; r == 0 && j < n; j++)
			if (errs[j] == 0)
				slot_leased(k, batch[j], tb);
		t = dv_mono_us();
		/*
		 * An IPv6 RTM_NEWADDR, even one that only changes the lifetime,
		 * makes the kernel walk every multicast group of the interface
		 * (ipv6_find_idev -> ipv6_mc_up): with thousands of addresses one
		 * request costs milliseconds. Size the batches to fit the slice.
		 */
		if ((t - tb) * 2 > SLICE_USEC && k->batch > 1)
			k->batch /= 2;
		else if ((t - tb) * 8 < SLICE_USEC && k->batch < BATCH_MAX)
			k->batch *= 2;
	} while (k->pass_pos < k->pass_n && t - t0 < SLICE_USEC);
	k->pass_cpu += dv_thread_cpu_us() - cpu0;
	return k->pass_pos >= k->pass_n;
}

static int pass_item_cmp(const void *x, const void *y)
{
	const struct pass_item *a = x, *b = y;

	return a->expires < b->expires ? -1 : a->expires > b->expires;
}

static int on_refresh(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct dv_kaddr *k = userdata;
	uint64_t next;

	(void)usec;
	if (!k->pass) {
		/* A snapshot: the set may change between slices, and addresses
		 * added meanwhile start with a full lease anyway. */
		k->pass_start = dv_mono_us();
		k->pass_cpu = 0;
		k->pass_n = k->pass_pos = 0;
		k->pass_set = k->n_desired;
		k->pass = calloc(k->n_desired ? k->n_desired : 1, sizeof(*k->pass));
		if (k->pass) {
			/* Only what is due before a third of LEASE from now: an
			 * address given a long lifetime a moment ago (a growing
			 * set) waits for a later pass, planned from its own due
			 * time. Refreshing all of them at every pass cost minutes
			 * of CPU at 65,536, with clients waiting (measured). */
			uint64_t horizon = k->pass_start + (uint64_t)k->lease_s * 1000000 / 3;
			struct slot *s;

			DV_HASHTAB_FOREACH(s, &k->slots)
				if (s->desired && slot_due(s) <= horizon)
					k->pass[k->pass_n++] = (struct pass_item){.expires = s->expires, .a = s->a};
			/* A pass that takes longer than the last one (a grown set,
			 * a loaded machine) reaches the oldest lifetimes first,
			 * not in the table's order. */
			qsort(k->pass, k->pass_n, sizeof(*k->pass), pass_item_cmp);
		}
	}
	if (k->pass && !refresh_slice(k)) {
		/* More to do: go on after the loop has seen to other events. */
		(void)sd_event_source_set_time_accuracy(src, 1);
		(void)sd_event_source_set_time_relative(src, 0);
		(void)sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
	} else {
		struct slot *s;

		k->pass = dv_mfree(k->pass);
		adapt_lease(k);
		/* A third of the lifetime from this pass's start (at once if it
		 * overran), or earlier if an address given a shorter lifetime
		 * (before the lease grew, or added meanwhile) is due. */
		next = k->pass_start + refresh_usec(k);
		DV_HASHTAB_FOREACH(s, &k->slots)
			if (s->desired && slot_due(s) < next)
				next = slot_due(s);
		refresh_at(k, next);
	}
	return 0;
}

/* ---------------- setup ---------------- */

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dv_kaddr *k = data;
	const struct nlattr *at;

	if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct ifinfomsg)))
		return 0;
	if (((const struct ifinfomsg *)mnl_nlmsg_get_payload(nlh))->ifi_index != k->ifindex)
		return 0;
	mnl_attr_for_each(at, nlh, sizeof(struct ifinfomsg))
	{
		if (mnl_attr_get_type(at) != IFLA_ADDRESS)
			continue;
		if (mnl_attr_validate(at, MNL_TYPE_BINARY) < 0)
			return -EBADMSG;
		/* Interfaces without a 6-byte address (tun, wireguard) keep
		 * zeros: addresses work, announcements make no sense there. */
		if (mnl_attr_get_payload_len(at) == 6)
			memcpy(k->mac, mnl_attr_get_payload(at), 6);
	}
	return 0;
}

static int read_mac(struct dv_kaddr *k)
{
	struct nlmsghdr *nlh = dv_nl_msg(&k->req, k->tx, RTM_GETLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = k->ifindex;
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return dv_nl_request(&k->req, nlh, link_cb, k);
}

static int setup_mon(struct dv_kaddr *k)
{
	/* Only RTM_DELADDR on our interface: the refresh makes one RTM_NEWADDR
	 * per address every lease/3, which would otherwise fill the buffer.
	 * Classic BPF loads are big-endian, hence htons/htonl on host fields. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_type)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htons(RTM_DELADDR), 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NLMSG_HDRLEN + offsetof(struct ifaddrmsg, ifa_index)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl((uint32_t)k->ifindex), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	int groups[] = {RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR};
	int r, fd;

	r = dv_nl_open(&k->mon, NETLINK_ROUTE, RX_SIZE, SOCK_BUF);
	if (r < 0)
		return r;
	fd = dv_nl_fd(&k->mon);
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	r = dv_nl_join(&k->mon, groups, sizeof(groups) / sizeof(groups[0]));
	if (r < 0)
		return r;
	return sd_event_add_io(k->ev, &k->mon_src, fd, EPOLLIN, on_monitor, k);
}

int dv_kaddr_open(sd_event *ev, const char *ifname, unsigned lease_s, const struct dv_kaddr_ops *ops, void *ud,
		  struct dv_kaddr **ret)
{
	struct dv_kaddr *k;
	unsigned idx;
	int r;

	/* 0 is not a lease and 0xffffffff means forever to the kernel. */
	if (!ev || !ifname || !ret || lease_s == 0 || lease_s >= UINT32_MAX)
		return -EINVAL;
	idx = if_nametoindex(ifname);
	if (idx == 0)
		return -ENODEV;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->ev = sd_event_ref(ev);
	k->ifindex = (int)idx;
	k->lease_s = k->lease_cur = lease_s;
	k->ops = ops;
	k->ud = ud;
	k->batch = BATCH_MAX;
	snprintf(k->errmsg, sizeof(k->errmsg), "%s", strerror(0));
	k->tx = malloc(TX_SIZE);
	if (!k->tx) {
		r = -ENOMEM;
		goto fail;
	}

	r = dv_nl_open(&k->req, NETLINK_ROUTE, RX_SIZE, SOCK_BUF);
	if (r < 0)
		goto fail;
	/* Subscribe before anything is installed, so no removal is missed. */
	r = setup_mon(k);
	if (r < 0)
		goto fail;
	r = read_mac(k);
	if (r == -ENODEV)
		goto fail;
	if (r < 0) {
		set_error(k, r);
		goto fail;
	}
	k->next_at = dv_mono_us() + refresh_usec(k);
	r = sd_event_add_time(ev, &k->refresh_src, CLOCK_MONOTONIC, k->next_at, refresh_usec(k) / 10, on_refresh, k);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_priority(k->refresh_src, DV_PRIO_KERNEL);
	(void)sd_event_source_set_priority(k->mon_src, DV_PRIO_KERNEL);
	(void)sd_event_source_set_description(k->refresh_src, "dvipa-kaddr-refresh");
	(void)sd_event_source_set_description(k->mon_src, "dvipa-kaddr-monitor");
	*ret = k;
	return 0;
fail:
	dv_kaddr_free(k);
	return r;
}

struct dv_kaddr *dv_kaddr_free(struct dv_kaddr *k)
{
	if (!k)
		return NULL;
	sd_event_source_disable_unref(k->mon_src);
	sd_event_source_disable_unref(k->refresh_src);
	dv_nl_close(&k->req);
	dv_nl_close(&k->mon);
	sd_event_unref(k->ev);
	{
		struct slot *s;

		DV_HASHTAB_FOREACH(s, &k->slots)
			free(s);
	}
	dv_hashtab_clear(&k->slots);
	free(k->spare);
	free(k->pass);
	free(k->tx);
	free(k);
	return NULL;
}

int dv_kaddr_ifindex(const struct dv_kaddr *k)
{
	return k->ifindex;
}

const uint8_t *dv_kaddr_mac(const struct dv_kaddr *k)
{
	return k->mac;
}

const char *dv_kaddr_last_error(const struct dv_kaddr *k)
{
	return k->errmsg;
}

void dv_kaddr_set_routed(struct dv_kaddr *k, struct dv_kroute *r)
{
	k->routed = r;
}

/* Run a routed change, its error as ours. */
static int routed_result(struct dv_kaddr *k, int r)
{
	if (r < 0)
		snprintf(k->errmsg, sizeof(k->errmsg), "%s", dv_kroute_last_error(k->routed));
	return r;
}

bool dv_kaddr_installed(const struct dv_kaddr *k, const struct dv_addr *a)
{
	const struct slot *s;

	if (!family_ok(a))
		return false;
	if (dv_kroute_covers(k->routed, a))
		return dv_kroute_installed(k->routed, a);
	s = slot_find(k, a);
	return s && s->desired;
}

int dv_kaddr_add(struct dv_kaddr *k, const struct dv_addr *a)
{
	uint64_t t0;
	struct slot *s;
	int r;

	if (!family_ok(a))
		return -EINVAL;
	if (dv_kroute_covers(k->routed, a)) {
		if (!dv_kroute_installed(k->routed, a) && k->n_desired + dv_kroute_count(k->routed) >= KADDR_MAX) {
			snprintf(k->errmsg, sizeof(k->errmsg), "more than %d addresses", KADDR_MAX);
			return -ENOSPC;
		}
		return routed_result(k, dv_kroute_add(k->routed, a));
	}
	s = slot_find(k, a);
	if (!(s && s->desired) && k->n_desired + dv_kroute_count(k->routed) >= KADDR_MAX) {
		snprintf(k->errmsg, sizeof(k->errmsg), "more than %d addresses", KADDR_MAX);
		return -ENOSPC;
	}
	r = slots_reserve(k);
	if (r < 0) {
		set_error(k, r);
		return r;
	}
	if (!(s && s->desired))
		lease_for_growth(k, k->n_desired + 1);
	t0 = dv_mono_us();
	r = send_add(k, a, NULL);
	if (r < 0) {
		set_error(k, r);
		return r;
	}
	s = slot_insert(k, a);
	slot_leased(k, s, t0);
	set_desired(k, s, true);
	return 0;
}

int dv_kaddr_del(struct dv_kaddr *k, const struct dv_addr *a)
{
	struct slot *s;
	int r;

	if (!family_ok(a))
		return -EINVAL;
	if (dv_kroute_covers(k->routed, a))
		return routed_result(k, dv_kroute_del(k->routed, a));
	/* Forget first: the monitor must not take our removal for someone
	 * else's and put the address back. */
	s = slot_find(k, a);
	if (s) {
		set_desired(k, s, false);
		slot_put(k, s);
	}
	r = send_del(k, a, dv_addr_maxlen(a));
	if (r < 0) {
		set_error(k, r);
		return r;
	}
	/* Its notification is still to come: remember it as ours, so that a
	 * re-add before the monitor reads it is not undone. Best effort. */
	if (r == 0 && slots_reserve(k) == 0) {
		s = slot_insert(k, a);
		if (s->own_dels < UINT16_MAX)
			s->own_dels++;
	}
	return 0;
}

void dv_kaddr_del_all(struct dv_kaddr *k)
{
	int errs[BATCH_MAX];
	struct slot *batch[BATCH_MAX];
	size_t i = 0;

	if (!k)
		return;
	dv_kroute_del_all(k->routed);
	while (i < k->slots.cap) {
		size_t len = 0;
		unsigned n = 0;
		uint32_t first = k->req.seq + 1;
		int r;

		for (; i < k->slots.cap && n < BATCH_MAX; i++) {
			struct slot *s = k->slots.slots[i];
			const struct nlmsghdr *nlh;

			if (!s || !s->desired)
				continue;
			nlh = put_addr_msg(k, k->tx + len, RTM_DELADDR, &s->a, dv_addr_maxlen(&s->a));
			len += nlh->nlmsg_len;
			batch[n] = s;
			errs[n] = -ETIMEDOUT;
			n++;
		}
		if (!n)
			break;
		r = dv_nl_send(&k->req, k->tx, len);
		if (r == 0)
			r = dv_nl_wait(&k->req, first, n, NULL, NULL, errs);
		else
			for (unsigned j = 0; j < n; j++)
				errs[j] = r;
		/* Slots do not move until the batch is through: no removal yet. */
		for (unsigned j = 0; j < n; j++) {
			struct slot *s = batch[j];

			if (!del_ok(errs[j]))
				set_error(k, errs[j]);
			set_desired(k, s, false);
			if (errs[j] == 0 && s->own_dels < UINT16_MAX)
				s->own_dels++;
		}
	}
	/* Drop slots that wait for nothing, now that indexes may move. */
	slots_drop_idle(k, false);
}

int dv_kaddr_reconcile(struct dv_kaddr *k, bool (*keep)(void *ud, const struct dv_addr *a), void *ud,
		       struct dv_addr **ret_local, size_t *ret_n_local)
{
	struct ifa_list local = {0};
	struct dv_addr *out = NULL;
	int removed = 0, r;

	r = sync_addrs(k, true, keep, ud, ret_local ? &local : NULL, &removed);
	if (r < 0) {
		free(local.v);
		return r;
	}
	if (ret_local) {
		if (local.n) {
			out = calloc(local.n, sizeof(*out));
			if (!out) {
				free(local.v);
				return -ENOMEM;
			}
			for (size_t i = 0; i < local.n; i++)
				out[i] = local.v[i].a;
		}
		*ret_local = out;
		if (ret_n_local)
			*ret_n_local = local.n;
	}
	free(local.v);
	return removed;
}
