/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel side of dvipad: addresses through rtnetlink (kernel_addr.c) and
 * announcements/probes through AF_PACKET (kernel_announce.c). Both run on the
 * daemon's sd-event loop and never block it beyond one netlink round trip.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "addr.h"

/* Tag of dvipa's addresses (IFA_PROTO, Linux >= 5.18): how a restarted dvipad
 * finds the addresses a previous instance left behind. */
#define DV_IFA_PROTO 0xda

/* ---------------- kernel_addr.c ---------------- */

struct dv_kaddr;

struct dv_kaddr_ops {
	/* An installed address disappeared without dvipad asking (someone ran
	 * `ip addr del`); the module has already re-added it (result of that
	 * attempt in err). For logging. */
	void (*readded)(void *ud, const struct dv_addr *a, int err);
};

/*
 * Open rtnetlink sockets for interface ifname: one for requests (every
 * change with NLM_F_ACK, NETLINK_EXT_ACK, checked seq and port id), one
 * subscribed to the IPv4/IPv6 address groups. lease_s is the finite
 * lifetime (valid and preferred) given to installed addresses; the module
 * refreshes them every lease_s/3 from an sd-event timer.
 */
int dv_kaddr_open(sd_event *ev, const char *ifname, unsigned lease_s, const struct dv_kaddr_ops *ops, void *ud,
		  struct dv_kaddr **ret);
struct dv_kaddr *dv_kaddr_free(struct dv_kaddr *k); /* removes nothing */

int dv_kaddr_ifindex(const struct dv_kaddr *k);
/* The interface's hardware address, 6 bytes. */
const uint8_t *dv_kaddr_mac(const struct dv_kaddr *k);

/*
 * Install a as a host address (/32, /128) on the interface, tagged
 * DV_IFA_PROTO, IPv6 with IFA_F_NODAD, with the lease lifetime; remember it
 * as desired. Synchronous: returns 0 once the kernel acknowledged, or
 * -errno; the kernel's extended-ack message, if any, is in
 * dv_kaddr_last_error().
 */
int dv_kaddr_add(struct dv_kaddr *k, const struct dv_addr *a);
/* Remove a (and forget it). Removing an absent address is success. */
int dv_kaddr_del(struct dv_kaddr *k, const struct dv_addr *a);
/* Remove every desired address (clean shutdown). */
void dv_kaddr_del_all(struct dv_kaddr *k);
const char *dv_kaddr_last_error(const struct dv_kaddr *k);
bool dv_kaddr_installed(const struct dv_kaddr *k, const struct dv_addr *a);

/*
 * Dump the interface's addresses. Tagged ones (left by an earlier dvipad)
 * are removed, unless keep(ud, a) says the engine wants them (then they are
 * adopted as desired). Every other address is returned in *ret_local
 * (malloc'ed, caller frees) for dv_conf_check_local(). Returns the number
 * of tagged addresses removed, or -errno.
 */
int dv_kaddr_reconcile(struct dv_kaddr *k, bool (*keep)(void *ud, const struct dv_addr *a), void *ud,
		       struct dv_addr **ret_local, size_t *ret_n_local);

/* ---------------- kernel_announce.c ---------------- */

struct dv_announce;

int dv_announce_open(sd_event *ev, int ifindex, const uint8_t mac[6], struct dv_announce **ret);
struct dv_announce *dv_announce_free(struct dv_announce *an);

/*
 * Announce a: IPv4, a gratuitous ARP as RFC 5227 defines the announcement
 * (ARP request, sender IP = target IP = a, sender MAC = ours, broadcast);
 * IPv6, an unsolicited neighbour advertisement (override flag, target a,
 * source a, to ff02::1, target link-layer address option). The first at
 * once, count in total, interval_ms apart. A new call for the same address
 * restarts its series.
 */
int dv_announce_start(struct dv_announce *an, const struct dv_addr *a, unsigned count, unsigned interval_ms);
void dv_announce_stop(struct dv_announce *an, const struct dv_addr *a);

/*
 * Check that no other host uses a before we take it: IPv4, count ARP probes
 * (sender IP 0.0.0.0, target a) interval_ms apart; IPv6, count DAD neighbour
 * solicitations (source ::, to the solicited-node group). Any ARP packet
 * with sender IP a, or NA for target a, from another MAC within the window
 * (until interval_ms after the last probe) is a conflict. done() is called
 * exactly once (not from within this call) with 0 or -EADDRINUSE and the
 * other host's MAC. count 0: done(0) on the next loop iteration.
 * Returns 0 or -errno (then done is never called).
 */
typedef void (*dv_probe_done_fn)(void *ud, const struct dv_addr *a, int result, const uint8_t mac[6]);
int dv_probe_start(struct dv_announce *an, const struct dv_addr *a, unsigned count, unsigned interval_ms,
		   dv_probe_done_fn done, void *ud);
/* Forget every probe whose callback data is ud (the requester went away). */
void dv_probe_cancel(struct dv_announce *an, void *ud);
