/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Listen sets (Connect:Direct's TCP.API.LISTEN): an ordered list of up to
 * DV_LISTEN_MAX (address, port) pairs, the VIPA first and the wildcard of
 * its family (ANYADDR, ANYADDR6) after it, on which one program listens.
 * The kernel lets a specific and a wildcard listener share a port only
 * when both have SO_REUSEPORT (and the same uid); see libdvipa(3).
 *
 * Compiled into libdvipa (dvipa_listen()), the preload shim (DVIPA_LISTEN)
 * and dvipactl (run --listen), so all three take the same text and say the
 * same errors. libc only, no allocation, no stdio: the shim parses its
 * environment where only async-signal-safe calls are allowed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "addr.h"
#include "proto.h"

#define DV_LISTEN_MAX 8
/* "[" + the longest IPv6 text + "]:65535", and the NUL. */
#define DV_LISTEN_PAIR_STRLEN (DV_ADDR_STRLEN + 8)
/* An error of dv_listen_set_parse(): where, the pair's text, and why. */
#define DV_LISTEN_ERR_MAX 256

struct dv_listen_pair {
	struct dv_addr addr; /* the VIPA, or 0.0.0.0 / :: */
	uint16_t port;	     /* 1..65535 */
};

struct dv_listen_set {
	size_t n;
	struct dv_listen_pair pair[DV_LISTEN_MAX];
};

/*
 * One pair: "a.b.c.d:PORT", "[IPV6]:PORT", "ANYADDR:PORT" (0.0.0.0) or
 * "ANYADDR6:PORT" (::), the words in any case; the text is s[0..len).
 * 0, or -EINVAL with *ret_why a fixed text.
 */
int dv_listen_pair_parse(const char *s, size_t len, struct dv_listen_pair *ret, const char **ret_why);

/*
 * Append p to set, by the rules of a listen set: at most DV_LISTEN_MAX
 * pairs; the first names the VIPA (a specific address that can be one);
 * every later one is the wildcard of the VIPA's family; no pair twice.
 * 0, or -EINVAL with *ret_why a fixed text.
 */
int dv_listen_set_add(struct dv_listen_set *set, const struct dv_listen_pair *p, const char **ret_why);

/*
 * A whole set from "PAIR,PAIR,..." (DVIPA_LISTEN). 0, or -EINVAL with
 * err (of errlen bytes) saying which pair and why: "pair 2 'x:80': ...".
 */
int dv_listen_set_parse(const char *list, struct dv_listen_set *ret, char *err, size_t errlen);

/* The index of (a, port) in set, or -1. The family counts: 0.0.0.0 is not
 * ::, and an IPv6 socket bound to :: is no pair of an IPv4 set. */
int dv_listen_set_find(const struct dv_listen_set *set, const struct dv_addr *a, uint16_t port);

/* "10.1.0.5:8080", "[fd00::5]:8080". */
const char *dv_listen_pair_fmt(const struct dv_listen_pair *p, char buf[static DV_LISTEN_PAIR_STRLEN]);

/*
 * Whether a TCP socket of this network namespace listens on exactly p
 * (sock_diag, filtered in the kernel): 1, 0, or -errno when it cannot be
 * told. With SO_REUSEPORT set, a bind to p would join such a socket's
 * group and share its connections instead of failing with EADDRINUSE.
 * System calls only.
 */
int dv_listen_taken(const struct dv_listen_pair *p);

/*
 * Claim the VIPA a as a socket hold (ACTIVATE, KIND socket), as the shim
 * does for a bind(): the hold lasts while a socket of this network
 * namespace is bound to a. 0 with the connection in *ret_conn, to be
 * closed once the socket is bound (dvipad gives a claim without a socket
 * a short grace while the claimant lives); dvipad's refusal as a positive
 * enum dv_result with its reason in *ret_reply; or -errno when dvipad
 * cannot be asked (-ETIMEDOUT after deadline_ms). System calls only.
 */
int dv_listen_claim(const struct sockaddr_un *sa, socklen_t len, const struct dv_addr *a, int64_t deadline_ms,
		    int *ret_conn, struct dv_reply *ret_reply);
