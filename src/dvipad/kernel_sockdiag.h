/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which local addresses have sockets bound to them, from sock_diag
 * (NETLINK_SOCK_DIAG): the source of socket holds (a VIPA activated by a
 * bind() through the preload shim lives while any socket in the network
 * namespace is bound to it or connected from it, whichever process owns
 * it) and of bind watch (VIPARANGE ... BINDWATCH: a listening or bound
 * socket on a range address activates it).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "addr.h"
#include "addrset.h"

struct dv_sockdiag;

struct dv_sockdiag_ops {
	/* A watched address gained its first (bound=true) or lost its last
	 * (bound=false) socket; or (bind watch) a socket bound to an address
	 * inside a watched prefix appeared (bound=true). */
	void (*changed)(void *ud, const struct dv_addr *a, bool bound);
	/* Optional. A re-check or poll in the event loop failed with err
	 * (-errno); it is retried, and told again only after one succeeded. */
	void (*failed)(void *ud, int err);
};

/* Default period of the bind poll: the kernel sends no notification for a
 * new bind, so a filtered dump of listening TCP and bound UDP sockets runs
 * this often, and only while prefixes are set or a watched address is
 * unbound (no timer otherwise). Detection delay of a bind <= one period. */
#define DV_SOCKDIAG_POLL_MS 20

/* Fails if the kernel cannot dump TCP and UDP sockets (tcp_diag, udp_diag).
 * changed() may call any function here, dv_sockdiag_free() included. */
int dv_sockdiag_open(sd_event *ev, const struct dv_sockdiag_ops *ops, void *ud, struct dv_sockdiag **ret);
struct dv_sockdiag *dv_sockdiag_free(struct dv_sockdiag *s);
/* Period of the bind poll, 1..10000 ms (-EINVAL otherwise). */
int dv_sockdiag_set_poll(struct dv_sockdiag *s, unsigned poll_ms);

/* Track a (at most 65536 addresses, -ENOSPC beyond; a v4-mapped IPv6
 * address is its IPv4 address); the current state is reported through
 * changed() from the event loop (not from within this call) when it is
 * known, then every transition. Watching a watched address changes
 * nothing. Losing the last socket is seen from destroy notifications;
 * gaining one (unbound -> bound) from the bind poll, which sees listening
 * TCP and UDP sockets only. A TCP socket that is bound but neither
 * listening nor connected is invisible to sock_diag. */
int dv_sockdiag_watch(struct dv_sockdiag *s, const struct dv_addr *a);
/* Stop tracking a. It also forgets a's bind-watch appearance: a socket
 * still or again bound to it inside a watched prefix is reported anew by the
 * next poll (a server that rebinds right after its address went away). */
void dv_sockdiag_unwatch(struct dv_sockdiag *s, const struct dv_addr *a);
/* Synchronous one-off check: 1 if some socket is bound to a, 0 if not, -errno. */
int dv_sockdiag_bound(struct dv_sockdiag *s, const struct dv_addr *a);

/* A bitmap of the 65,536 ports, bit set: a listener's port. */
#define DV_PORT_BITMAP (65536 / 8)
static inline bool dv_port_in(const uint8_t *bitmap, uint16_t port)
{
	return bitmap[port / 8] & (1u << (port % 8));
}

/* Synchronous, one dump: every port a TCP socket listens on (any address,
 * any family) in the namespace, into ret. 0 or -errno. For TRACKPORT. */
int dv_sockdiag_listening_ports(struct dv_sockdiag *s, uint8_t ret[static DV_PORT_BITMAP]);

/* Synchronous, one dump: the addresses of `of` that a TCP connection
 * (established or closing, either side) has as its local address are
 * added to ret. 0 or -errno. For WHENIDLE. */
int dv_sockdiag_busy_set(struct dv_sockdiag *s, const struct dv_addrset *of, struct dv_addrset *ret);

/* Bind watch: replace the set of watched prefixes (at most 4096, -ENOSPC
 * beyond; host bits set: -EINVAL). An address inside them reported
 * bound=true stays reported until no listening TCP or UDP socket is left
 * on it; a later socket reports it again. */
int dv_sockdiag_set_prefixes(struct dv_sockdiag *s, const struct dv_prefix *p, size_t n);
