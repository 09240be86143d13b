/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one netlink socket helper of dvipad (libmnl): rtnetlink requests and
 * monitor (kernel_addr.c) and sock_diag dumps and destroy notifications
 * (kernel_sockdiag.c) open, send and receive through it.
 *
 * Every answer is checked against our port id and the sequence numbers of
 * the exchange, so that a late answer to a request that timed out, or a
 * unicast from another process, is never taken for ours. NETLINK_EXT_ACK
 * makes the kernel say why it refused; the first such text of an exchange
 * is kept for the caller's log line.
 */
#include "kernel.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cleanup.h"
#include "clock.h"

#define REPLY_TIMEOUT_MS 1000 /* per datagram, reset by every reply */

int dv_nl_open(struct dv_nl *nl, int bus, size_t rx_size, int rcvbuf)
{
	uint32_t seq = nl->seq ? nl->seq : (uint32_t)time(NULL);
	int one = 1, fd, r;

	/* A reopened socket goes on counting: no old answer matches. */
	*nl = (struct dv_nl){.seq = seq};
	nl->rx = malloc(rx_size);
	if (!nl->rx)
		return -ENOMEM;
	nl->rx_size = rx_size;
	nl->sock = mnl_socket_open2(bus, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!nl->sock) {
		r = -errno;
		goto fail;
	}
	fd = mnl_socket_get_fd(nl->sock);
	/* Beyond rmem_max needs CAP_NET_ADMIN, which dvipad has anyway. */
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* CAP_ACK: errors carry no copy of our request; EXT_ACK: the
	 * kernel's reason in words. */
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one)) < 0 ||
	    mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one)) < 0) {
		r = -errno;
		goto fail;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	return 0;
fail:
	dv_nl_close(nl);
	return r;
}

void dv_nl_close(struct dv_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
	nl->rx = dv_mfree(nl->rx);
}

int dv_nl_fd(const struct dv_nl *nl)
{
	return mnl_socket_get_fd(nl->sock);
}

int dv_nl_join(struct dv_nl *nl, const int *groups, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int g = groups[i];

		if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
			return -errno;
	}
	return 0;
}

struct nlmsghdr *dv_nl_msg(struct dv_nl *nl, void *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

int dv_nl_send(struct dv_nl *nl, const void *buf, size_t len)
{
	nl->ackmsg[0] = 0;
	if (mnl_socket_sendto(nl->sock, buf, len) < 0)
		return -errno;
	return 0;
}

ssize_t dv_nl_recv(struct dv_nl *nl)
{
	struct sockaddr_nl sa;
	struct iovec iov = {.iov_base = nl->rx, .iov_len = nl->rx_size};
	struct msghdr msg = {.msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	for (;;) {
		n = recvmsg(mnl_socket_get_fd(nl->sock), &msg, 0);
		if (n < 0)
			return -errno;
		if (msg.msg_flags & MSG_TRUNC)
			return -ENOSPC;
		if (msg.msg_namelen == sizeof(sa) && sa.nl_family == AF_NETLINK && sa.nl_pid == 0)
			return n;
		/* A unicast from another process: not ours to believe. */
		msg.msg_namelen = sizeof(sa);
	}
}

static int extack_attr_cb(const struct nlattr *attr, void *data)
{
	struct dv_nl *nl = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0 &&
	    !nl->ackmsg[0])
		snprintf(nl->ackmsg, sizeof(nl->ackmsg), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* The error of an NLMSG_ERROR or NLMSG_DONE, keeping the kernel's text. */
static int reply_error(struct dv_nl *nl, const struct nlmsghdr *nlh)
{
	size_t plen = mnl_nlmsg_get_payload_len(nlh), off;
	const char *p = mnl_nlmsg_get_payload(nlh);
	int err;

	if (plen < sizeof(int))
		return nlh->nlmsg_type == NLMSG_DONE ? 0 : -EBADMSG;
	memcpy(&err, p, sizeof(err));
	if (err == 0)
		return 0;
	if (err > 0 || err < -4095)
		return -EPROTO;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return err;
	if (nlh->nlmsg_type == NLMSG_DONE) {
		off = sizeof(int);
	} else {
		struct nlmsgerr e;

		if (plen < sizeof(e))
			return err;
		memcpy(&e, p, sizeof(e));
		off = sizeof(e);
		/* Without NETLINK_CAP_ACK the whole request is echoed first. */
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += MNL_ALIGN(e.msg.nlmsg_len) - sizeof(struct nlmsghdr);
	}
	if (off < plen)
		(void)mnl_attr_parse_payload(p + off, plen - off, extack_attr_cb, nl);
	return err;
}

/* Wait until the socket is readable or the deadline (ms) has passed. */
static int wait_readable(struct dv_nl *nl, uint64_t deadline)
{
	struct pollfd pfd = {.fd = mnl_socket_get_fd(nl->sock), .events = POLLIN};
	uint64_t now = dv_mono_us() / 1000;

	if (now >= deadline)
		return -ETIMEDOUT;
	if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

int dv_nl_wait(struct dv_nl *nl, uint32_t first, unsigned n, dv_nl_data_fn cb, void *data, int *errs)
{
	uint64_t deadline = dv_mono_us() / 1000 + REPLY_TIMEOUT_MS;
	unsigned answered = 0;
	bool intr = false;
	int result = 0;

	nl->done = false;
	while (answered < n) {
		ssize_t len = dv_nl_recv(nl);
		int left;

		if (len == -EINTR)
			continue;
		if (len == -EAGAIN) {
			int r = wait_readable(nl, deadline);

			if (r < 0)
				return r;
			continue;
		}
		if (len < 0)
			return (int)len; /* -ENOBUFS: answers were lost */
		deadline = dv_mono_us() / 1000 + REPLY_TIMEOUT_MS;

		left = (int)len;
		for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->rx; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			uint32_t idx = nlh->nlmsg_seq - first;
			int r;

			/* Late answers to a request that timed out. */
			if (nlh->nlmsg_pid != nl->portid || idx >= n)
				continue;
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			switch (nlh->nlmsg_type) {
			case NLMSG_NOOP:
			case NLMSG_OVERRUN:
				continue;
			case NLMSG_ERROR:
			case NLMSG_DONE:
				r = reply_error(nl, nlh);
				answered++;
				if (errs)
					errs[idx] = r;
				break;
			default:
				r = cb ? cb(nlh, data) : 0;
				break;
			}
			if (r < 0 && result == 0)
				result = r;
		}
		if (left != 0)
			return -EBADMSG;
	}
	nl->done = true;
	if (result == 0 && intr)
		result = -EINTR;
	return result;
}

int dv_nl_request(struct dv_nl *nl, const struct nlmsghdr *req, dv_nl_data_fn cb, void *data)
{
	int r = dv_nl_send(nl, req, req->nlmsg_len);

	if (r < 0)
		return r;
	return dv_nl_wait(nl, req->nlmsg_seq, 1, cb, data, NULL);
}
