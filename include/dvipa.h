/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdvipa: let an application own dynamic VIPAs. See libdvipa(3).
 *
 * A handle is one connection to dvipad. Holds made through a handle last
 * until released or until the handle is closed or the process ends (even by
 * kill -9): dvipad sees the connection close.
 *
 * The caller owns the event loop: poll dvipa_fd() for POLLIN and call
 * dvipa_dispatch(). Requests are synchronous. All functions are thread-safe
 * on one handle. Depends on libc only.
 */
#ifndef DVIPA_H
#define DVIPA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results. Functions return 0 on success, DVIPA_PENDING where noted, or a
 * negated DVIPA_E_* code. The numbers are also dvipactl's exit codes. */
#define DVIPA_PENDING 1	    /* standby registered; DVIPA_EVENT_GRANTED follows */
#define DVIPA_E_INVAL 2	    /* bad argument or malformed request */
#define DVIPA_E_NORANGE 3   /* the address is in no VIPARANGE of the node */
#define DVIPA_E_HELD 4	    /* held elsewhere, UNIQUE, or another node's define */
#define DVIPA_E_PERM 5	    /* the range's ALLOW list does not admit the caller */
#define DVIPA_E_UNREACH 6   /* dvipad cannot be reached or went away */
#define DVIPA_E_INUSE 7	    /* another host on the link uses the address */
#define DVIPA_E_NOTHELD 8   /* release of an address this handle does not hold */
#define DVIPA_E_LIMIT 9	    /* a capacity limit of dvipad was reached */
#define DVIPA_E_NOQUORUM 10 /* the node's cluster partition is not quorate */
#define DVIPA_E_KERNEL 11   /* the kernel refused to install the address */
#define DVIPA_E_INTERNAL 12
#define DVIPA_E_LEFT 13 /* the node left the group (dvipactl leave) */

#define DVIPA_EVENT_GRANTED 1 /* a standby registration was granted */
#define DVIPA_EVENT_LOST 2    /* a hold ended without the application asking */

typedef struct dvipa dvipa_t;

struct dvipa_event {
	int type;	    /* DVIPA_EVENT_* */
	char addr[64];	    /* the VIPA, as text */
	const char *reason; /* valid during the callback only */
};

typedef void (*dvipa_event_fn)(dvipa_t *h, const struct dvipa_event *ev, void *userdata);

/* Connect to dvipad at path, or $DVIPA_SOCKET, or /run/dvipa/dvipad.sock. */
int dvipa_open(dvipa_t **ret, const char *path);
/* Close the connection; every hold and standby of the handle ends. NULL ok. */
void dvipa_close(dvipa_t *h);

/* Activate addr and hold it; returns once the address is usable. */
int dvipa_activate(dvipa_t *h, const char *addr);
/* End this handle's hold (or standby registration) on addr. */
int dvipa_release(dvipa_t *h, const char *addr);
/* Register as standby with rank 1..254: 0 if granted at once (no active
 * holder), DVIPA_PENDING if registered (a GRANTED event follows). */
int dvipa_standby(dvipa_t *h, const char *addr, unsigned rank);

/* A descriptor that polls readable while events wait for dvipa_dispatch(). */
int dvipa_fd(dvipa_t *h);
/* Deliver pending events to fn; never blocks. Returns the number delivered,
 * or -DVIPA_E_UNREACH once dvipad has gone away. */
int dvipa_dispatch(dvipa_t *h, dvipa_event_fn fn, void *userdata);

/* The daemon's explanation of the last request's outcome on this handle,
 * in the calling thread's view; with h NULL, of the thread's last
 * dvipa_listen(). Never NULL. */
const char *dvipa_reason(dvipa_t *h);
/*
 * Make outbound traffic of socket fd leave from addr (z/OS SOURCEVIPA,
 * Connect:Direct TCP.SOURCEIP): binds fd to addr with port 0, before
 * connect() or the first send. The port is still chosen at connect time
 * (IP_BIND_ADDRESS_NO_PORT), so many connections can share the VIPA.
 * An IPv4 addr on an IPv6 socket is bound as v4-mapped. The address must
 * be active on this node (dvipa_activate() it first): -DVIPA_E_NOTHELD
 * otherwise, also where ip_nonlocal_bind would let the bind succeed. It
 * never activates or moves the address.
 *
 * dvipad ($DVIPA_SOCKET, else the default socket) is asked which ports
 * to use: for a distributed VIPA with SYSPLEXPORTS, this node's slice of
 * its ports (IP_LOCAL_PORT_RANGE), so that the distributor sends the
 * replies here; dvipad's refusal is returned (-DVIPA_E_NOTHELD: not a
 * target now; -DVIPA_E_LIMIT: no slice), and -DVIPA_E_UNREACH when it
 * cannot be asked. Needs no handle; async-signal-safe (one short
 * connection to dvipad, no allocation).
 */
int dvipa_bind_source(int fd, const char *addr);

/* The most pairs of a listen set (Connect:Direct's TCP.API.LISTEN). */
#define DVIPA_LISTEN_MAX 8

/*
 * Listen (TCP) on a listen set, as Connect:Direct's TCP.API.LISTEN does:
 * pairs[0..n) are "ADDR:PORT", "[ADDR6]:PORT", "ANYADDR:PORT" (0.0.0.0) or
 * "ANYADDR6:PORT" (::), the VIPA first, the wildcard of its family after
 * it, at most DVIPA_LISTEN_MAX. A connection to the VIPA reaches
 * ret_fds[0], one to any other address of the host on that port the
 * wildcard's descriptor. The sockets have SO_REUSEPORT (the kernel lets a
 * specific and a wildcard listener share a port only so), CLOEXEC, and
 * the backlog given.
 *
 * The VIPA is claimed from dvipad ($DVIPA_SOCKET, else the default socket)
 * as a socket hold, as the preload shim's bind() claims it: it stays
 * active while a socket is bound to it (ret_fds[0], and its copies in
 * children), whatever becomes of any handle. On failure no descriptor is
 * left open and dvipa_reason(NULL) names the pair and the reason; dvipad's
 * refusal is returned as it is, -DVIPA_E_HELD when a socket of another
 * program listens on a pair already (SO_REUSEPORT would share its
 * connections), -DVIPA_E_INVAL for a bad set. Needs no handle.
 */
int dvipa_listen(const char *const pairs[], size_t n, int backlog, int ret_fds[]);

/* A fixed text for a result code (negated or not). */
const char *dvipa_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
