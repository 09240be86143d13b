/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Listen sets: their text, their rules, and what the kernel says of their
 * ports (listen.h). */
#include "listen.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlsock.h"

/* ---- text ---- */

static bool all_zero(const struct dv_addr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->bytes, zero, dv_addr_size(a)) == 0;
}

/* s[0..len) as a port in 1..65535, or -1. */
static int parse_port(const char *s, size_t len)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* ASCII only, no locale: strncasecmp() may consult one. */
static bool word_is(const char *s, size_t len, const char *word)
{
	if (len != strlen(word))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];

		if (c != word[i])
			return false;
	}
	return true;
}

int dv_listen_pair_parse(const char *s, size_t len, struct dv_listen_pair *ret, const char **ret_why)
{
	char host[DV_ADDR_STRLEN];
	const char *colon, *h = s;
	size_t hlen;
	int port;

	*ret_why = NULL;
	memset(ret, 0, sizeof(*ret));
	if (len == 0) {
		*ret_why = "empty; a pair is ADDR:PORT";
		return -EINVAL;
	}
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || close + 1 == s + len || close[1] != ':') {
			*ret_why = "an IPv6 pair is [ADDR]:PORT";
			return -EINVAL;
		}
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = NULL;
		for (const char *p = s; p < s + len; p++)
			if (*p == ':') {
				if (colon) {
					*ret_why = "an IPv6 address goes in brackets: [ADDR]:PORT";
					return -EINVAL;
				}
				colon = p;
			}
		if (!colon) {
			*ret_why = "no port; a pair is ADDR:PORT";
			return -EINVAL;
		}
		hlen = (size_t)(colon - s);
	}
	port = parse_port(colon + 1, (size_t)(s + len - colon - 1));
	if (port < 0) {
		*ret_why = "the port is not a number in 1..65535";
		return -EINVAL;
	}
	ret->port = (uint16_t)port;
	if (s[0] != '[' && word_is(h, hlen, "ANYADDR")) {
		ret->addr.family = AF_INET;
		return 0;
	}
	if (s[0] != '[' && word_is(h, hlen, "ANYADDR6")) {
		ret->addr.family = AF_INET6;
		return 0;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		*ret_why = "not a numeric IPv4 or IPv6 address, ANYADDR or ANYADDR6";
		return -EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = 0;
	if (dv_addr_parse(host, &ret->addr) < 0 || (s[0] == '[') != (strchr(host, ':') != NULL)) {
		*ret_why = "not a numeric IPv4 or IPv6 address, ANYADDR or ANYADDR6";
		return -EINVAL;
	}
	return 0;
}

int dv_listen_set_add(struct dv_listen_set *set, const struct dv_listen_pair *p, const char **ret_why)
{
	const struct dv_addr_block *b;

	*ret_why = NULL;
	if (set->n == DV_LISTEN_MAX) {
		*ret_why = "a listen set has at most 8 pairs";
		return -EINVAL;
	}
	if (set->n == 0) {
		if (all_zero(&p->addr)) {
			*ret_why = "the first pair is the VIPA, a specific address; ANYADDR and ANYADDR6 come after it";
			return -EINVAL;
		}
		b = dv_addr_unusable(&p->addr);
		if (b) {
			*ret_why = "the first pair's address cannot be a VIPA (loopback, link-local, multicast or "
				   "reserved)";
			return -EINVAL;
		}
	} else {
		if (!all_zero(&p->addr)) {
			*ret_why = "only the first pair names an address (the VIPA); the pairs after it are ANYADDR "
				   "or ANYADDR6";
			return -EINVAL;
		}
		if (p->addr.family != set->pair[0].addr.family) {
			*ret_why = p->addr.family == AF_INET6 ? "ANYADDR6 does not go with an IPv4 VIPA (ANYADDR does)"
							      : "ANYADDR does not go with an IPv6 VIPA (ANYADDR6 does)";
			return -EINVAL;
		}
		if (dv_listen_set_find(set, &p->addr, p->port) >= 0) {
			*ret_why = "given twice";
			return -EINVAL;
		}
	}
	set->pair[set->n++] = *p;
	return 0;
}

/* strlcat without stdio: the shim may parse where snprintf is not safe. */
static void put(char *buf, size_t size, const char *s, size_t n)
{
	size_t at = strnlen(buf, size);

	while (n-- && *s && at + 1 < size)
		buf[at++] = *s++;
	if (at < size)
		buf[at] = 0;
}

int dv_listen_set_parse(const char *list, struct dv_listen_set *ret, char *err, size_t errlen)
{
	const char *p = list, *why;
	unsigned idx = 0;

	memset(ret, 0, sizeof(*ret));
	if (errlen)
		err[0] = 0;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		struct dv_listen_pair pair;
		/* A set fails at its ninth pair at the latest. */
		char num[2] = {(char)('1' + idx), 0};

		idx++;
		if (dv_listen_pair_parse(p, n, &pair, &why) < 0 || dv_listen_set_add(ret, &pair, &why) < 0) {
			put(err, errlen, "pair ", 5);
			put(err, errlen, num, 1);
			put(err, errlen, " '", 2);
			put(err, errlen, p, n > DV_LISTEN_PAIR_STRLEN ? DV_LISTEN_PAIR_STRLEN : n);
			put(err, errlen, "': ", 3);
			put(err, errlen, why, strlen(why));
			return -EINVAL;
		}
		if (!end)
			return 0;
		p = end + 1;
	}
}

int dv_listen_set_find(const struct dv_listen_set *set, const struct dv_addr *a, uint16_t port)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->pair[i].port == port && set->pair[i].addr.family == a->family &&
		    memcmp(set->pair[i].addr.bytes, a->bytes, dv_addr_size(a)) == 0)
			return (int)i;
	return -1;
}

const char *dv_listen_pair_fmt(const struct dv_listen_pair *p, char buf[static DV_LISTEN_PAIR_STRLEN])
{
	char a[DV_ADDR_STRLEN], port[6];
	unsigned v = p->port;
	size_t n = sizeof(port) - 1;

	port[n] = 0;
	do {
		port[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n);
	dv_addr_fmt(&p->addr, a);
	buf[0] = 0;
	if (p->addr.family == AF_INET6)
		put(buf, DV_LISTEN_PAIR_STRLEN, "[", 1);
	put(buf, DV_LISTEN_PAIR_STRLEN, a, sizeof(a));
	put(buf, DV_LISTEN_PAIR_STRLEN, p->addr.family == AF_INET6 ? "]:" : ":", 2);
	put(buf, DV_LISTEN_PAIR_STRLEN, port + n, sizeof(port));
	return buf;
}

/* ---- the kernel's view of a pair ---- */

int dv_listen_taken(const struct dv_listen_pair *p)
{
	/* One S_COND: local address p->addr/32 (or /128), local port
	 * p->port. yes jumps to the end (match), no past it (no match). */
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 req;
		struct nlattr bc_attr;
		struct inet_diag_bc_op op;
		struct inet_diag_hostcond cond;
		uint32_t addr[4];
	} __attribute__((packed)) q;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	size_t alen = dv_addr_size(&p->addr), bc_len = sizeof(q.op) + sizeof(q.cond) + alen;
	/* Only whether one answer comes matters: an answer truncated to this
	 * buffer still says so. */
	uint8_t buf[1024];
	int fd, r = -ETIMEDOUT;

	memset(&q, 0, sizeof(q));
	q.nh.nlmsg_len = (uint32_t)(sizeof(q.nh) + sizeof(q.req) + sizeof(q.bc_attr) + bc_len);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.nh.nlmsg_seq = 1;
	q.req.sdiag_family = p->addr.family;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = 1u << TCP_LISTEN;
	q.bc_attr.nla_len = (uint16_t)(sizeof(q.bc_attr) + bc_len);
	q.bc_attr.nla_type = INET_DIAG_REQ_BYTECODE;
	q.op.code = INET_DIAG_BC_S_COND;
	q.op.yes = (uint8_t)bc_len;
	q.op.no = (uint16_t)(bc_len + 4);
	q.cond.family = p->addr.family;
	q.cond.prefix_len = (uint8_t)(alen * 8);
	q.cond.port = p->port;
	memcpy(q.addr, p->addr.bytes, alen);

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &q, q.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		r = -errno;
		goto out;
	}
	/* The kernel answers a dump at once; the limit is for a kernel
	 * that never does. */
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		const struct nlmsghdr *nh = (const struct nlmsghdr *)buf;
		ssize_t n;

		if (poll(&pfd, 1, 5000) <= 0)
			goto out;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < (ssize_t)sizeof(*nh)) {
			r = n < 0 ? -errno : -EBADMSG;
			goto out;
		}
		if (nh->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
			r = 1;
			goto out;
		}
		if (nh->nlmsg_type == NLMSG_DONE) {
			r = 0;
			goto out;
		}
		if (nh->nlmsg_type == NLMSG_ERROR && (size_t)n >= sizeof(*nh) + sizeof(struct nlmsgerr)) {
			const struct nlmsgerr *e = (const struct nlmsgerr *)NLMSG_DATA(nh);

			r = e->error < 0 ? e->error : -EBADMSG;
			goto out;
		}
	}
out:
	close(fd);
	return r;
}

/* ---- the claim ---- */

int dv_listen_claim(const struct sockaddr_un *sa, socklen_t len, const struct dv_addr *a, int64_t deadline_ms,
		    int *ret_conn, struct dv_reply *ret_reply)
{
	/* header, ADDR (family byte and 4 or 16 bytes, padded to 4), KIND */
	uint8_t q[sizeof(struct dv_msg_hdr) + sizeof(struct dv_attr) + 20 + sizeof(struct dv_attr) + 4] = {0};
	size_t n_addr = dv_addr_size(a), addr_len = sizeof(struct dv_attr) + 1 + n_addr;
	size_t kind_at = sizeof(struct dv_msg_hdr) + ((addr_len + 3) & ~(size_t)3);
	struct dv_msg_hdr h = {.magic = DV_PROTO_MAGIC,
			       .version = DV_PROTO_VERSION,
			       .type = DV_MSG_ACTIVATE,
			       .len = (uint32_t)(kind_at + sizeof(struct dv_attr) + 4),
			       .seq = 1};
	struct dv_attr at = {.type = DV_A_ADDR, .len = (uint16_t)addr_len};
	uint32_t kind = DV_KIND_SOCKET;
	int r;

	memcpy(q, &h, sizeof(h));
	memcpy(q + sizeof(h), &at, sizeof(at));
	q[sizeof(h) + sizeof(at)] = (uint8_t)a->family;
	memcpy(q + sizeof(h) + sizeof(at) + 1, a->bytes, n_addr);
	at = (struct dv_attr){.type = DV_A_KIND, .len = sizeof(at) + sizeof(kind)};
	memcpy(q + kind_at, &at, sizeof(at));
	memcpy(q + kind_at + sizeof(at), &kind, sizeof(kind));

	r = dv_ctl_ask(sa, len, q, h.len, deadline_ms, connect, ret_conn, ret_reply);
	if (r < 0)
		return r;
	if (ret_reply->result != DV_R_OK) {
		if (*ret_conn >= 0)
			close(*ret_conn);
		*ret_conn = -1;
		return (int)ret_reply->result;
	}
	return 0;
}
