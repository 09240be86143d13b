// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The ROUTED ranges' queue (kernel_routed.c) seen from the daemon. An
 * activation or release there is queued and goes to the kernel with the
 * others of the event loop's iteration, in one nf_tables transaction. What
 * tells a program about the address - an OK reply (activated, released), a
 * GRANTED or LOST notice - is parked meanwhile, by address, and goes out
 * when the transaction about that address went through
 * (dv_kroute_ops.done); if an addition failed, the program hears the
 * kernel's refusal instead and this node's holds on the address end, as
 * for an address the interface refused. What follows an address being in
 * the kernel (announcements, the monitors' news, the log) waits the same
 * way, and a removal is reported to the group only once it is done (the
 * hand-over to the next owner).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "control.h"
#include "daemon_int.h"
#include "kernel.h"
#include "log.h"

struct parked {
	TAILQ_ENTRY(parked) link;
	uint64_t client;
	bool event; /* a notice (what), not a reply to seq */
	uint32_t seq;
	enum dv_result result;
	enum dv_notify what;
	char reason[]; /* NUL-terminated */
};

/* What waits for one address, in the order it was said. */
struct parked_addr {
	struct dv_addr a; /* first: the key of dv_addr_item_hash() */
	TAILQ_HEAD(, parked) list;
};

static struct parked_addr *parked_take(struct dv_daemon *d, const struct dv_addr *a)
{
	void **slot = dv_hashtab_find(&d->parked, dv_addr_hash(a), dv_addr_item_match, a);
	struct parked_addr *pa;

	if (!slot)
		return NULL;
	pa = *slot;
	dv_hashtab_del(&d->parked, slot, dv_addr_item_hash);
	return pa;
}

static void parked_addr_free(struct parked_addr *pa)
{
	struct parked *p;

	while ((p = TAILQ_FIRST(&pa->list))) {
		TAILQ_REMOVE(&pa->list, p, link);
		free(p);
	}
	free(pa);
}

/* Park it if a change of a is queued: true; false to send it now (also
 * when there is no memory to park it: the queue goes first). */
static bool park(struct dv_daemon *d, const struct dv_addr *a, const struct parked *what, const char *reason)
{
	size_t len = reason ? strlen(reason) : 0;
	struct parked_addr *pa;
	struct parked *p;

	if (!a || !dv_kroute_pending(d->kroute, a))
		return false;
	pa = dv_hashtab_get(&d->parked, dv_addr_hash(a), dv_addr_item_match, a);
	if (!pa) {
		pa = calloc(1, sizeof(*pa));
		if (!pa)
			goto now;
		pa->a = *a;
		TAILQ_INIT(&pa->list);
		if (dv_hashtab_put(&d->parked, pa, dv_addr_item_hash) < 0) {
			free(pa);
			goto now;
		}
	}
	p = malloc(sizeof(*p) + len + 1);
	if (!p)
		goto now;
	*p = *what;
	memcpy(p->reason, reason ? reason : "", len + 1);
	TAILQ_INSERT_TAIL(&pa->list, p, link);
	return true;
now:
	dv_kroute_flush(d->kroute);
	return false;
}

void daemon_reply(struct dv_daemon *d, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result,
		  const char *reason)
{
	struct parked p = {.client = client, .seq = seq, .result = result};

	if (result == DV_R_OK && park(d, a, &p, reason))
		return;
	dv_control_reply(d->control, client, seq, a, result, reason);
}

void daemon_event(struct dv_daemon *d, uint64_t client, const struct dv_addr *a, enum dv_notify what,
		  const char *reason)
{
	struct parked p = {.client = client, .event = true, .what = what};

	if ((what == DV_NOTIFY_GRANTED || what == DV_NOTIFY_LOST) && park(d, a, &p, reason))
		return;
	dv_control_event(d->control, client, a, what, reason);
}

static void routed_failed(void *ud, const char *msg)
{
	struct dv_daemon *d = ud;

	log_err("cannot refresh the ROUTED ranges (their addresses stop answering %u s after the last refresh): %s",
		d->conf->lease_s, msg);
}

static void send_parked(struct dv_daemon *d, const struct dv_addr *a, struct parked_addr *pa)
{
	struct parked *p;

	for (p = pa ? TAILQ_FIRST(&pa->list) : NULL; p; p = TAILQ_NEXT(p, link)) {
		if (p->event)
			dv_control_event(d->control, p->client, a, p->what, p->reason);
		else
			dv_control_reply(d->control, p->client, p->seq, a, p->result, p->reason);
	}
	if (pa)
		parked_addr_free(pa);
}

/* Transactions of more changes than this are logged in one line, each
 * change at debug level: a takeover of 10,923 addresses wrote as many lines
 * in 0.8 s, beyond journald's default burst of 10,000 a service per 30 s,
 * which then drops the lines that follow, errors included. */
#define LOG_EACH_MAX 16

static void routed_done(void *ud, const struct dv_addr *a, bool add, int err)
{
	struct dv_daemon *d = ud;
	struct parked_addr *pa = parked_take(d, a);
	char s[DV_ADDR_STRLEN], msg[DV_REASON_MAX];
	int prio = dv_kroute_telling(d->kroute) > LOG_EACH_MAX ? LOG_DEBUG : LOG_INFO;
	struct parked *p;

	dv_addr_fmt(a, s);
	if (!add) {
		/* A failed removal is forgotten all the same (kernel.h): the
		 * program was told, the refresh makes it good. */
		if (err < 0)
			log_err("cannot remove address '%s' from its ROUTED range: %s", s,
				dv_kroute_last_error(d->kroute));
		else
			dv_log(prio, "address '%s' removed from 'ROUTED range'", s);
		send_parked(d, a, pa);
		if (err == 0)
			daemon_report_removed(d, a);
		return;
	}
	if (err == 0) {
		daemon_address_up(d, a, prio);
		send_parked(d, a, pa);
		/* Its group reported with the others of this turn. Without
		 * memory, the next full report has it. */
		if (a->family == AF_INET6 && d->mld_now && dv_addrset_add(&d->mld_new, a) >= 0)
			(void)sd_event_source_set_enabled(d->mld_now, SD_EVENT_ONESHOT);
		return;
	}
	log_err("cannot add address '%s' to its ROUTED range: %s", s, dv_kroute_last_error(d->kroute));
	snprintf(msg, sizeof(msg), "the kernel refused the address: %s", dv_kroute_last_error(d->kroute));
	for (p = pa ? TAILQ_FIRST(&pa->list) : NULL; p; p = TAILQ_NEXT(p, link)) {
		if (p->event)
			dv_control_event(d->control, p->client, a, DV_NOTIFY_LOST, msg);
		else
			dv_control_reply(d->control, p->client, p->seq, a, DV_R_KERNEL, msg);
	}
	if (pa)
		parked_addr_free(pa);
	daemon_release_local_holds(d, a);
}

/* "N addresses added to 'ROUTED range', 'LO' to 'HI'" (IPv4 ones sort
 * first: "IPv4 'LO' to IPv6 'HI'" when both are). */
static void log_told(const char *what, size_t n, const struct dv_addr *lo, const struct dv_addr *hi)
{
	char l[DV_ADDR_STRLEN], h[DV_ADDR_STRLEN];
	bool mixed = lo->family != hi->family;

	log_info("%zu addresses %s 'ROUTED range', %s'%s' to %s'%s' (each at debug level)", n, what,
		 mixed ? "IPv4 " : "", dv_addr_fmt(lo, l), mixed ? "IPv6 " : "", dv_addr_fmt(hi, h));
}

static void routed_told(void *ud, const struct dv_kroute_told *t)
{
	if (t->n <= LOG_EACH_MAX)
		return; /* each said */
	if (t->added)
		log_told("added to", t->added, &t->add_lo, &t->add_hi);
	if (t->removed)
		log_told("removed from", t->removed, &t->del_lo, &t->del_hi);
}

const struct dv_kroute_ops daemon_routed_ops = {
	.failed = routed_failed,
	.done = routed_done,
	.told = routed_told,
};

void daemon_parked_clear(struct dv_daemon *d)
{
	struct parked_addr *pa;

	DV_HASHTAB_FOREACH(pa, &d->parked)
		parked_addr_free(pa);
	dv_hashtab_clear(&d->parked);
}

/* The kernel answers ARP for a local route's addresses only with
 * arp_ignore 0 (the larger of 'all' and the interface's applies). */
static void check_arp_ignore(const struct dv_daemon *d)
{
	const char *const ifs[] = {"all", d->conf->interface};
	char path[96];
	int v, worst = 0;

	for (size_t i = 0; i < 2; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/arp_ignore", ifs[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fscanf(f, "%d", &v) == 1 && v > worst)
			worst = v;
		fclose(f);
	}
	if (worst)
		log_err("arp_ignore is %d on '%s': the addresses of the ROUTED ranges get no ARP answer (they need 0)",
			worst, d->conf->interface);
}

/* An IPv6 bind() to an address on no interface fails (EADDRNOTAVAIL),
 * local route or not, unless ip_nonlocal_bind (IPv4 takes the route's
 * word): set, so that the programs of an IPv6 ROUTED range bind as they
 * would to an address on the interface. Left set: a program may still be
 * bound when dvipad stops. */
static void allow_nonlocal_bind6(void)
{
	static const char path[] = "/proc/sys/net/ipv6/ip_nonlocal_bind";
	FILE *f = fopen(path, "re");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	if (v == 1)
		return;
	f = fopen(path, "we");
	if (!f || fputs("1\n", f) < 0 || fclose(f) != 0) {
		log_err("cannot set net.ipv6.ip_nonlocal_bind to 1 (%s): programs cannot bind to the addresses of the "
			"IPv6 ROUTED ranges without IP_FREEBIND",
			strerror(errno));
		return;
	}
	log_notice("net.ipv6.ip_nonlocal_bind set to 1: programs bind to the addresses of the IPv6 ROUTED ranges");
}

static bool routed_family(const struct dv_prefix *p, size_t n, int af)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].addr.family == af)
			return true;
	return false;
}

int daemon_open_routed(struct dv_daemon *d)
{
	_cleanup_free_ struct dv_prefix *p = NULL;
	int n = dv_conf_routed(d->conf, &p), r;

	if (n < 0)
		return n;
	r = dv_kroute_new(d->ev, p, (size_t)n, d->conf->lease_s, &daemon_routed_ops, d, &d->kroute);
	if (r < 0)
		return r;
	r = dv_kroute_start(d->kroute);
	if (r < 0) {
		log_err("cannot set up the ROUTED ranges: %s", dv_kroute_last_error(d->kroute));
		if (n > 0)
			return r;
		log_warn("leftovers of ROUTED ranges, if any, are still there");
	}
	dv_kaddr_set_routed(d->kaddr, d->kroute);
	if (routed_family(p, (size_t)n, AF_INET))
		check_arp_ignore(d);
	if (routed_family(p, (size_t)n, AF_INET6))
		allow_nonlocal_bind6();
	return 0;
}

static bool answers(void *ud, const struct dv_addr *a)
{
	struct dv_daemon *d = ud;

	return dv_kroute_answers(d->kroute, a);
}

/* Well within the 260 s a snooping switch keeps a group it hears nothing
 * more of (RFC 3810 9.4), and than the 70 s of a query interval of 30 s. */
#define MLD_REPEAT_USEC (20 * 1000000ULL)

static void mld_send(struct dv_daemon *d, const struct dv_addrset *s, bool all)
{
	_cleanup_free_ const struct dv_addr **v = NULL;
	const struct dv_addr *a;
	size_t n = 0, cap = all ? dv_kroute_count(d->kroute) : s->n;
	int r;

	v = malloc((cap ? cap : 1) * sizeof(*v));
	if (!v) {
		log_err("cannot send the MLD reports of the IPv6 ROUTED ranges: %s", strerror(ENOMEM));
		return;
	}
	for (size_t i = 0; all ? dv_kroute_next(d->kroute, &i, &a) : dv_addrset_next(s, &i, &a);)
		if (n < cap && a->family == AF_INET6 && (!all || dv_kroute_answers(d->kroute, a)))
			v[n++] = a;
	r = dv_announce_mld_report(d->announce, v, n);
	/* Told once per run of failures, as the refresh is. */
	if (r < 0 && !d->mld_failed)
		log_err("cannot send the MLD reports of the IPv6 ROUTED ranges on '%s': %s", d->conf->interface,
			strerror(-r));
	d->mld_failed = r < 0;
}

static int on_mld_now(sd_event_source *s, void *userdata)
{
	struct dv_daemon *d = userdata;

	(void)s;
	mld_send(d, &d->mld_new, false);
	dv_addrset_clear(&d->mld_new);
	return 0;
}

static int on_mld_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dv_daemon *d = userdata;

	mld_send(d, NULL, true);
	(void)sd_event_source_set_time(s, usec + MLD_REPEAT_USEC);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

static int mld_open(struct dv_daemon *d)
{
	int r = sd_event_add_defer(d->ev, &d->mld_now, on_mld_now, d);

	if (r >= 0)
		r = sd_event_source_set_enabled(d->mld_now, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_time_relative(d->ev, &d->mld_timer, CLOCK_MONOTONIC, MLD_REPEAT_USEC, 1000000,
					       on_mld_timer, d);
	if (r < 0) {
		d->mld_timer = sd_event_source_disable_unref(d->mld_timer);
		d->mld_now = sd_event_source_disable_unref(d->mld_now);
	}
	return r;
}

int daemon_routed_answer_ns(struct dv_daemon *d)
{
	_cleanup_free_ struct dv_prefix *p = NULL;
	int n = dv_conf_routed(d->conf, &p), r;

	if (n < 0 || !routed_family(p, (size_t)n, AF_INET6))
		return n < 0 ? n : 0;
	r = dv_announce_answer_ns(d->announce, answers, d);
	if (r < 0) {
		log_err("cannot answer neighbour solicitations on '%s' for the IPv6 ROUTED ranges: %s",
			d->conf->interface, strerror(-r));
		return r;
	}
	r = mld_open(d);
	if (r < 0)
		log_err("cannot plan the MLD reports of the IPv6 ROUTED ranges: %s", strerror(-r));
	return r;
}
