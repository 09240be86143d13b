/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The distributed VIPAs' table in the kernel, through libnftables: every
 * change is one batch, hence one atomic transaction (never a split one, and
 * never the nft program). The text comes from dist_rules.c.
 */
#pragma once

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

/* Replace service i's slot map, keeping the pins. */
int dv_knft_set_slots(struct dv_knft *k, const struct dv_dist_ruleset *rs, size_t i, char **ret_error);

/* Remove the table, if there is one. */
int dv_knft_remove(struct dv_knft *k, char **ret_error);
