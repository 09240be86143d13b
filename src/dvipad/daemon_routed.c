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
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "daemon_int.h"
#include "kernel.h"

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

static void routed_done(void *ud, const struct dv_addr *a, bool add, int err)
{
	struct dv_daemon *d = ud;
	struct parked_addr *pa = parked_take(d, a);
	char s[DV_ADDR_STRLEN], msg[DV_REASON_MAX];
	struct parked *p;

	dv_addr_fmt(a, s);
	if (!add) {
		/* A failed removal is forgotten all the same (kernel.h): the
		 * program was told, the refresh makes it good. */
		if (err < 0)
			log_err("cannot remove address '%s' from its ROUTED range: %s", s,
				dv_kroute_last_error(d->kroute));
		else
			log_info("address '%s' removed from 'ROUTED range'", s);
		send_parked(d, a, pa);
		if (err == 0)
			daemon_report_removed(d, a);
		return;
	}
	if (err == 0) {
		daemon_address_up(d, a);
		send_parked(d, a, pa);
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

const struct dv_kroute_ops daemon_routed_ops = {
	.failed = routed_failed,
	.done = routed_done,
};

void daemon_parked_clear(struct dv_daemon *d)
{
	struct parked_addr *pa;

	DV_HASHTAB_FOREACH(pa, &d->parked)
		parked_addr_free(pa);
	dv_hashtab_clear(&d->parked);
}
