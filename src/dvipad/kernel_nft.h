/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The distributed VIPAs' table in the kernel, through libnftables: every
 * change is one batch, hence one atomic transaction (never a split one, and
 * never the nft program). The text comes from dist_rules.c.
 */
#pragma once

#include <systemd/sd-event.h>

#include "dist_rules.h"

struct dv_knft;

int dv_knft_new(struct dv_knft **ret);
struct dv_knft *dv_knft_free(struct dv_knft *k);

/*
 * Install rs as the whole table, replacing any table of that name in the
 * same transaction. Drops the pins: for start-up and for changes of the
 * table's shape (services, targets, ports); slot changes go through
 * dv_knft_set_slots. On failure the kernel keeps what it had, and
 * *ret_error (when not NULL) gets nft's message, to be freed.
 */
int dv_knft_replace(struct dv_knft *k, const struct dv_dist_ruleset *rs, char **ret_error);

/* Change slot maps, keeping the pins, in one transaction: old NULL,
 * rewrite every service's; else old[i], if not NULL, are service i's
 * slots in the kernel, and only the slots that differ are written. */
int dv_knft_set_slots(struct dv_knft *k, const struct dv_dist_ruleset *rs, const uint32_t *const *old,
		      char **ret_error);

/* Run nft commands (text) as one transaction, in the foreground: for a
 * few elements. 0, or -EIO and nft's message in *ret_error. */
int dv_knft_run(struct dv_knft *k, const char *text, char **ret_error);

/* One element of a set or map of the table, as the kernel has it: the
 * key's and the value's bytes (each field padded to 4 bytes, ports in
 * network order, marks in host order) and the ms until it expires. */
struct dv_knft_elem {
	const uint8_t *key, *data;
	size_t key_len, data_len;
	uint64_t expires_ms;
};
typedef int (*dv_knft_elem_fn)(void *ud, const struct dv_knft_elem *e);

/*
 * Every element of set (or map) `set` of the table, to cb; a negative
 * return stops the walk (and the kernel's dump) and is returned. Straight
 * from a netlink dump: libnftables took 24 to 62 s to list 262,000 pins as
 * text here, this 3 to 7 s, and the dump's cost grows with the square of
 * the elements read (stop early). 0 or -errno (-ENOENT: no such set).
 */
int dv_knft_elements(const char *set, dv_knft_elem_fn cb, void *ud);

/* Remove the table, if there is one. */
int dv_knft_remove(struct dv_knft *k, char **ret_error);

/* Set the base chain's rules only (dv_dist_rules_write_ingress): small,
 * for a distributor's role changing hands. */
int dv_knft_set_ingress(struct dv_knft *k, const struct dv_dist_ruleset *rs, char **ret_error);

/*
 * In the background: a slot map of 65,537 elements takes 0.5 to 3 s to
 * commit on a loaded machine, longer than the ring lease the event loop
 * must keep answering (fence.h). The text is made now; the transaction
 * runs in a child process with a libnftables context of its own and none
 * of the daemon's descriptors, one at a time, and done() is called from the event
 * loop with 0 or -EIO and nft's message (NULL if none). -EBUSY while one
 * runs.
 */
typedef void (*dv_knft_done_fn)(void *ud, int r, const char *error);
int dv_knft_replace_bg(struct dv_knft *k, sd_event *ev, const struct dv_dist_ruleset *rs, dv_knft_done_fn done,
		       void *ud);
int dv_knft_set_slots_bg(struct dv_knft *k, sd_event *ev, const struct dv_dist_ruleset *rs, const uint32_t *const *old,
			 dv_knft_done_fn done, void *ud);
bool dv_knft_busy(const struct dv_knft *k);
/* Wait for the background transaction, if any (shutdown); done() is not
 * called. */
void dv_knft_wait(struct dv_knft *k);
