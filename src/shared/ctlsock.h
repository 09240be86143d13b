/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The client end of dvipad's control socket: connecting with a deadline.
 * Shared by libdvipa, dvipactl and the preload shim; libc only and
 * async-signal-safe (the shim calls it from bind(), which a signal handler
 * may call).
 */
#pragma once

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * The one limit of a client's wait for dvipad: the shim's whole exchange
 * (connect, send, the answer to an ACTIVATE), the connect of libdvipa and
 * dvipactl, each message of an answer to dvipactl. dvipad answers within a
 * second (its longest step is the duplicate-address probe) unless it is
 * stopped or wedged; in a cluster an activation may also wait for the
 * other nodes, which Corosync bounds well below this.
 */
#define DV_CTL_TIMEOUT_S 30
#define DV_CTL_TIMEOUT_MS (DV_CTL_TIMEOUT_S * 1000)

/* Linux 6.3; glibc 2.36 (Debian 12) does not name it yet. */
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif

typedef int (*dv_connect_fn)(int fd, const struct sockaddr *sa, socklen_t len);

/* CLOCK_MONOTONIC in milliseconds: what deadlines are expressed in. */
int64_t dv_now_ms(void);

/*
 * A new SOCK_SEQPACKET socket (close-on-exec, non-blocking) connected to
 * sa, or -errno: -ETIMEDOUT when dvipad's listen queue stayed full until
 * deadline_ms. connect_fn is connect(2), or what the shim resolved as the
 * real one (its own would look at the socket for nothing).
 */
int dv_ctl_connect(const struct sockaddr_un *sa, socklen_t len, int64_t deadline_ms, dv_connect_fn connect_fn);

/*
 * A connection dvipad refused at the door gets the reason before it is
 * closed (a RESULT of seq 0), so a send on it fails (EPIPE) with the reason
 * still waiting to be read. After such a failure: the result code (enum
 * dv_result) with the reason in ret_reply, or -1 when there is none.
 */
struct dv_reply;
int dv_ctl_refusal(int fd, struct dv_reply *ret_reply);

/*
 * One request (req, req_len bytes, seq 1) on a new connection to sa and
 * its RESULT (seq 1, or 0 when dvipad refused the connection) in
 * *ret_reply, waiting until deadline_ms. 0, or -errno when dvipad cannot
 * be asked or broke the protocol (-ETIMEDOUT after deadline_ms). With
 * ret_conn, a connection that got its answer stays open in *ret_conn for
 * the caller to close (a claim lasts while it is open); -1 there
 * otherwise. System calls only.
 */
struct dv_reply;
int dv_ctl_ask(const struct sockaddr_un *sa, socklen_t len, const void *req, size_t req_len, int64_t deadline_ms,
	       dv_connect_fn connect_fn, int *ret_conn, struct dv_reply *ret_reply);

/*
 * SOURCE_PORTS: ask dvipad at sa which ports this node's programs send
 * from when a is their source (a SYSPLEXPORTS slice). 0 with dvipad's
 * RESULT in *ret_reply (port_lo..port_hi, 0..0 when any port will do), or
 * -errno when dvipad cannot be asked or broke the protocol (-ETIMEDOUT
 * after deadline_ms). One short connection.
 */
struct dv_addr;
int dv_ctl_source_ports(const struct sockaddr_un *sa, socklen_t len, const struct dv_addr *a, int64_t deadline_ms,
			dv_connect_fn connect_fn, struct dv_reply *ret_reply);
