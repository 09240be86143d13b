/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Listen sets (src/libdvipa/listen.c): the pairs' text, the set's rules
 * and their errors as dvipactl, the shim and libdvipa say them, and the
 * kernel's answer to "does a socket listen on exactly this pair?" (on
 * loopback of the test's own namespace).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

static void pair_ok(const char *text, const char *addr, uint16_t port, const char *fmt)
{
	struct dv_listen_pair p;
	char ab[DV_ADDR_STRLEN], pb[DV_LISTEN_PAIR_STRLEN];
	const char *why = "unset";

	assert_int_equal(dv_listen_pair_parse(text, strlen(text), &p, &why), 0);
	assert_null(why);
	assert_string_equal(dv_addr_fmt(&p.addr, ab), addr);
	assert_int_equal(p.port, port);
	assert_string_equal(dv_listen_pair_fmt(&p, pb), fmt);
}

static void pair_bad(const char *text, const char *want)
{
	struct dv_listen_pair p;
	const char *why = NULL;

	assert_int_equal(dv_listen_pair_parse(text, strlen(text), &p, &why), -EINVAL);
	assert_non_null(why);
	if (!strstr(why, want))
		fail_msg("'%s': '%s' does not say '%s'", text, why, want);
}

static void test_pair_text(void **state)
{
	pair_ok("10.1.0.5:8080", "10.1.0.5", 8080, "10.1.0.5:8080");
	pair_ok("[fd00:1::5]:1363", "fd00:1::5", 1363, "[fd00:1::5]:1363");
	pair_ok("ANYADDR:1363", "0.0.0.0", 1363, "0.0.0.0:1363");
	pair_ok("anyaddr6:1", "::", 1, "[::]:1");
	pair_ok("0.0.0.0:65535", "0.0.0.0", 65535, "0.0.0.0:65535");
	pair_ok("[::]:80", "::", 80, "[::]:80");
	/* v4-mapped is IPv4, as everywhere in dvipa */
	pair_ok("[::ffff:10.1.0.5]:80", "10.1.0.5", 80, "10.1.0.5:80");

	pair_bad("", "empty");
	pair_bad("10.1.0.5", "no port");
	pair_bad("10.1.0.5:", "port");
	pair_bad("10.1.0.5:0", "1..65535");
	pair_bad("10.1.0.5:65536", "1..65535");
	pair_bad("10.1.0.5:123456", "1..65535");
	pair_bad("10.1.0.5:8o", "1..65535");
	pair_bad("10.1.0.5:-1", "1..65535");
	pair_bad("fd00::5:80", "brackets");
	pair_bad("[fd00::5]80", "[ADDR]:PORT");
	pair_bad("[fd00::5", "[ADDR]:PORT");
	pair_bad("[10.1.0.5]:80", "not a numeric");
	pair_bad("host.example:80", "not a numeric");
	pair_bad(":80", "not a numeric");
	pair_bad("[ANYADDR6]:80", "not a numeric");
	pair_bad("ANYADDRX:80", "not a numeric");
	pair_bad("10.1.0.300:80", "not a numeric");

	/* only len bytes count: the shim parses a list in place */
	{
		struct dv_listen_pair p;
		const char *why;

		assert_int_equal(dv_listen_pair_parse("10.1.0.5:80,0.0.0.0:80", 11, &p, &why), 0);
		assert_int_equal(p.port, 80);
	}
}

static void set_bad(const char *list, const char *want)
{
	struct dv_listen_set set;
	char err[DV_LISTEN_ERR_MAX];

	assert_int_equal(dv_listen_set_parse(list, &set, err, sizeof(err)), -EINVAL);
	if (strcmp(err, want) != 0)
		fail_msg("'%s': '%s', not '%s'", list, err, want);
}

static void test_set_rules(void **state)
{
	struct dv_listen_set set;
	char err[DV_LISTEN_ERR_MAX] = "x";

	assert_int_equal(dv_listen_set_parse("10.1.0.5:1363,ANYADDR:1363", &set, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(set.n, 2);
	/* other ports of the wildcard, too */
	assert_int_equal(dv_listen_set_parse("[fd00::5]:80,[::]:80,ANYADDR6:81", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 3);
	/* the VIPA alone is a set */
	assert_int_equal(dv_listen_set_parse("10.1.0.5:80", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 1);
	assert_int_equal(dv_listen_set_parse("10.1.0.5:80,0.0.0.0:81,0.0.0.0:82,0.0.0.0:83,0.0.0.0:84,0.0.0.0:85,"
					     "0.0.0.0:86,0.0.0.0:87",
					     &set, err, sizeof(err)),
			 0);
	assert_int_equal(set.n, DV_LISTEN_MAX);

	set_bad("0.0.0.0:80,10.1.0.5:80", "pair 1 '0.0.0.0:80': the first pair is the VIPA, a specific address; "
					  "ANYADDR and ANYADDR6 come after it");
	set_bad("10.1.0.5:80,10.1.0.6:80", "pair 2 '10.1.0.6:80': only the first pair names an address (the VIPA); "
					   "the pairs after it are ANYADDR or ANYADDR6");
	set_bad("10.1.0.5:80,[::]:80", "pair 2 '[::]:80': ANYADDR6 does not go with an IPv4 VIPA (ANYADDR does)");
	set_bad("[fd00::5]:80,ANYADDR:80",
		"pair 2 'ANYADDR:80': ANYADDR does not go with an IPv6 VIPA (ANYADDR6 does)");
	set_bad("10.1.0.5:80,ANYADDR:80,0.0.0.0:80", "pair 3 '0.0.0.0:80': given twice");
	set_bad("127.0.0.1:80", "pair 1 '127.0.0.1:80': the first pair's address cannot be a VIPA (loopback, "
				"link-local, multicast or reserved)");
	set_bad("224.0.0.1:80,ANYADDR:80", "pair 1 '224.0.0.1:80': the first pair's address cannot be a VIPA "
					   "(loopback, link-local, multicast or reserved)");
	set_bad("10.1.0.5:80,,ANYADDR:80", "pair 2 '': empty; a pair is ADDR:PORT");
	set_bad("10.1.0.5:80,", "pair 2 '': empty; a pair is ADDR:PORT");
	set_bad("10.1.0.5:80, ANYADDR:80", "pair 2 ' ANYADDR:80': not a numeric IPv4 or IPv6 address, ANYADDR or "
					   "ANYADDR6");
	set_bad("10.1.0.5:80,0.0.0.0:81,0.0.0.0:82,0.0.0.0:83,0.0.0.0:84,0.0.0.0:85,0.0.0.0:86,0.0.0.0:87,0.0.0.0:88",
		"pair 9 '0.0.0.0:88': a listen set has at most 8 pairs");

	/* A short error buffer is cut, never overrun. */
	{
		char small[12];

		assert_int_equal(dv_listen_set_parse("0.0.0.0:80", &set, small, sizeof(small)), -EINVAL);
		assert_string_equal(small, "pair 1 '0.0");
	}
}

static void test_set_find(void **state)
{
	struct dv_listen_set set;
	struct dv_addr a;
	char err[DV_LISTEN_ERR_MAX];

	assert_int_equal(dv_listen_set_parse("10.1.0.5:8080,ANYADDR:8080,ANYADDR:8081", &set, err, sizeof(err)), 0);
	assert_int_equal(dv_addr_parse("10.1.0.5", &a), 0);
	assert_int_equal(dv_listen_set_find(&set, &a, 8080), 0);
	assert_int_equal(dv_listen_set_find(&set, &a, 8081), -1);
	assert_int_equal(dv_addr_parse("0.0.0.0", &a), 0);
	assert_int_equal(dv_listen_set_find(&set, &a, 8080), 1);
	assert_int_equal(dv_listen_set_find(&set, &a, 8081), 2);
	/* :: is not 0.0.0.0 */
	assert_int_equal(dv_addr_parse("::", &a), 0);
	assert_int_equal(dv_listen_set_find(&set, &a, 8080), -1);
	assert_int_equal(dv_addr_parse("10.1.0.6", &a), 0);
	assert_int_equal(dv_listen_set_find(&set, &a, 8080), -1);
}

/* A TCP listener on addr, port 0 (any): its port. */
static int listener(int family, const char *addr, bool reuseport, uint16_t *ret_port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int one = 1, fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		assert_int_equal(inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr), 1);
	else
		assert_int_equal(inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
	if (reuseport)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1) < 0) {
		close(fd);
		return -1;
	}
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*ret_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static int taken(const char *addr, uint16_t port)
{
	struct dv_listen_pair p = {.port = port};

	assert_int_equal(dv_addr_parse(addr, &p.addr), 0);
	return dv_listen_taken(&p);
}

/* The kernel filter matches the exact pair: address and port. */
static void test_taken(void **state)
{
	uint16_t port, port6 = 0;
	int fd = listener(AF_INET, "127.0.0.1", false, &port), fd6;

	assert_true(fd >= 0);
	assert_int_equal(taken("127.0.0.1", port), 1);
	assert_int_equal(taken("127.0.0.2", port), 0);
	assert_int_equal(taken("0.0.0.0", port), 0);
	assert_int_equal(taken("127.0.0.1", port == 65535 ? 1 : port + 1), 0);
	close(fd);
	assert_int_equal(taken("127.0.0.1", port), 0);

	fd = listener(AF_INET, "0.0.0.0", true, &port);
	assert_true(fd >= 0);
	assert_int_equal(taken("0.0.0.0", port), 1);
	assert_int_equal(taken("127.0.0.1", port), 0);
	close(fd);

	/* IPv6, where the host has it */
	fd6 = listener(AF_INET6, "::1", false, &port6);
	if (fd6 >= 0) {
		assert_int_equal(taken("::1", port6), 1);
		assert_int_equal(taken("::", port6), 0);
		close(fd6);
	}
}

int main(void)
{
	/* clang-format off: one test per line */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pair_text),
		cmocka_unit_test(test_set_rules),
		cmocka_unit_test(test_set_find),
		cmocka_unit_test(test_taken),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, NULL, NULL);
}
