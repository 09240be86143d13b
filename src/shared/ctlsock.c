/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connecting to dvipad's control socket with a deadline (ctlsock.h). */
#include "ctlsock.h"

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

/* The longest sleep between two attempts while the listen queue is full. */
#define RETRY_MAX_MS 50

int64_t dv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dv_ctl_connect(const struct sockaddr_un *sa, socklen_t len, int64_t deadline_ms, dv_connect_fn connect_fn)
{
	int fd, wait_ms = 1;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		int64_t left;
		int e;

		if (connect_fn(fd, (const struct sockaddr *)sa, len) == 0)
			return fd;
		e = errno;
		/*
		 * A blocking connect() to a listener whose queue is full sleeps
		 * until dvipad accepts, for ever if dvipad is stopped. A
		 * non-blocking one fails with EAGAIN instead (AF_UNIX has no
		 * EINPROGRESS, and poll() cannot wait for room in another
		 * socket's queue), so try again, a little later each time.
		 */
		if (e != EAGAIN && e != EINTR) {
			close(fd);
			return -e;
		}
		left = deadline_ms - dv_now_ms();
		if (left <= 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		if (e == EAGAIN) {
			(void)poll(NULL, 0, left < wait_ms ? (int)left : wait_ms);
			wait_ms = wait_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait_ms * 2;
		}
	}
}

int dv_ctl_refusal(int fd, struct dv_reply *ret_reply)
{
	uint8_t buf[1024]; /* a refusal is small; the shim's stack may be too */
	struct dv_msg m;
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n <= 0 || dv_msg_parse(buf, (size_t)n, &m) < 0 || m.type != DV_MSG_RESULT || m.seq != 0 ||
	    dv_reply_decode(&m, ret_reply) < 0)
		return -1;
	return (int)ret_reply->result;
}
