/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connecting to dvipad's control socket with a deadline (ctlsock.h). */
#include "ctlsock.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
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

/* Wait until fd polls for events or deadline_ms: 0, or -ETIMEDOUT. */
static int wait_for(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		int64_t left = deadline_ms - dv_now_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int dv_ctl_ask(const struct sockaddr_un *sa, socklen_t len, const void *req, size_t req_len, int64_t deadline_ms,
	       dv_connect_fn connect_fn, int *ret_conn, struct dv_reply *ret_reply)
{
	uint8_t buf[1024];
	struct dv_msg m;
	int fd, r;

	if (ret_conn)
		*ret_conn = -1;
	fd = dv_ctl_connect(sa, len, deadline_ms, connect_fn);
	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t n = send(fd, req, req_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == (ssize_t)req_len)
			break;
		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			r = n >= 0 ? -EIO : -errno;
			/* Refused at the door: the reason is the answer. */
			if (dv_ctl_refusal(fd, ret_reply) >= 0)
				r = 0;
			goto out;
		}
		r = wait_for(fd, POLLOUT, deadline_ms);
		if (r < 0)
			goto out;
	}
	for (;;) {
		ssize_t n;

		r = wait_for(fd, POLLIN, deadline_ms);
		if (r < 0)
			goto out;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -ECONNRESET;
			goto out;
		}
		if ((size_t)n > sizeof(buf) || dv_msg_parse(buf, (size_t)n, &m) < 0) {
			r = -EBADMSG;
			goto out;
		}
		if (m.type != DV_MSG_RESULT)
			continue; /* not for this question */
		r = dv_reply_decode(&m, ret_reply) < 0 ? -EBADMSG : 0;
		if (r == 0 && ret_reply->seq != 1 && ret_reply->seq != 0)
			continue;
		if (r == 0 && ret_conn) {
			*ret_conn = fd;
			return 0;
		}
		goto out;
	}
out:
	close(fd);
	return r;
}

int dv_ctl_source_ports(const struct sockaddr_un *sa, socklen_t len, const struct dv_addr *a, int64_t deadline_ms,
			dv_connect_fn connect_fn, struct dv_reply *ret_reply)
{
	/* header, then ADDR: family and up to 16 bytes, padded to 4 */
	uint8_t req[sizeof(struct dv_msg_hdr) + sizeof(struct dv_attr) + 20] = {0};
	size_t n_addr = dv_addr_size(a), attr_len = sizeof(struct dv_attr) + 1 + n_addr;
	struct dv_msg_hdr h = {.magic = DV_PROTO_MAGIC,
			       .version = DV_PROTO_VERSION,
			       .type = DV_MSG_SOURCE_PORTS,
			       .len = (uint32_t)(sizeof(h) + ((attr_len + 3) & ~(size_t)3)),
			       .seq = 1};
	struct dv_attr at = {.type = DV_A_ADDR, .len = (uint16_t)attr_len};

	memcpy(req, &h, sizeof(h));
	memcpy(req + sizeof(h), &at, sizeof(at));
	req[sizeof(h) + sizeof(at)] = (uint8_t)a->family;
	memcpy(req + sizeof(h) + sizeof(at) + 1, a->bytes, n_addr);
	return dv_ctl_ask(sa, len, req, h.len, deadline_ms, connect_fn, NULL, ret_reply);
}
