/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The nftables text of ROUTED ranges (dvipa.conf(5)): pure, for
 * kernel_routed.c and the golden test.
 *
 * A ROUTED range is one local route in table local, so the kernel takes
 * every address of it as its own (packets, ARP, an IPv4 bind() without
 * IP_FREEBIND). Three tables of the same name decide which of those
 * addresses answer: "ip dvipa_routed" and "ip6 dvipa_routed" (packets, on
 * the input hook, from every interface and from 'lo') and "arp
 * dvipa_routed" (ARP requests; IPv6 neighbour solicitations are answered
 * by dvipad, for the active addresses only). Each has two sets, of its
 * family's addresses:
 *   active - the VIPAs this node holds, one element per activation;
 *   alive  - one element per range, its network address, with a timeout of
 *            the lease: refreshed by dvipad, gone LEASE seconds after
 *            dvipad stopped refreshing it (kill -9, a hang).
 * A packet or ARP request for a range address is dropped unless the range
 * is alive and the address active.
 */
#pragma once

#include <stdio.h>

#include "addr.h"

#define DV_ROUTED_TABLE "dvipa_routed"

/* Replace the tables (delete any earlier ones in the same transaction)
 * by ones for the prefixes p[0..n), with empty sets; the ranges are alive
 * for lease_s seconds. */
void dv_routed_rules_write(FILE *f, const struct dv_prefix *p, size_t n, unsigned lease_s);

/* Make every range alive for lease_s seconds from now: the refresh. */
void dv_routed_alive_write(FILE *f, const struct dv_prefix *p, size_t n, unsigned lease_s);

/* Add (add true) or delete a from the active sets of its family. */
void dv_routed_elem_write(FILE *f, const struct dv_addr *a, bool add);

/* Empty every active set. */
void dv_routed_flush_write(FILE *f);

/* Delete the tables, which must exist (create them first to be sure). */
void dv_routed_remove_write(FILE *f);
