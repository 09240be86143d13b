/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipa.conf parser and printer: every statement, the abbreviation rule,
 * every error message, the round trip and the queries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

/* Parse text as file "t.conf"; the error output is returned in *ret_errs. */
static int parse(const char *text, struct dv_conf **ret, char **ret_errs, unsigned *ret_nerr)
{
	char *errs = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&errs, &len);
	int r;

	assert_non_null(f);
	*ret = NULL;
	r = dv_conf_parse_string("t.conf", text, strlen(text), f, ret, ret_nerr);
	fclose(f);
	*ret_errs = errs;
	return r;
}

static struct dv_conf *parse_ok(const char *text)
{
	struct dv_conf *c;
	char *errs;
	unsigned n = 99;
	int r = parse(text, &c, &errs, &n);

	if (r != 0)
		fprintf(stderr, "unexpected errors:\n%s", errs);
	assert_int_equal(r, 0);
	assert_int_equal(n, 0);
	assert_string_equal(errs, "");
	free(errs);
	assert_non_null(c);
	return c;
}

/* The text must fail with exactly this error output. */
static void parse_err(const char *text, const char *want)
{
	struct dv_conf *c;
	char *errs;
	unsigned n = 0, lines = 0;
	int r = parse(text, &c, &errs, &n);

	assert_int_equal(r, -EINVAL);
	assert_null(c);
	assert_string_equal(errs, want);
	for (const char *s = errs; *s; s++)
		lines += *s == '\n';
	assert_int_equal(n, lines);
	free(errs);
}

/* A VIPADYNAMIC block around body, with the INTERFACE it needs. */
static char *block(const char *body)
{
	char *s;

	assert_true(asprintf(&s, "NODE n1\nINTERFACE eth0\nVIPADYNAMIC\n%s\nENDVIPADYNAMIC\n", body) > 0);
	return s;
}

static void block_err(const char *body, const char *msg)
{
	char *text = block(body), *want;

	/* The body starts on line 4. */
	assert_true(asprintf(&want, "t.conf:4: %s\n", msg) > 0);
	parse_err(text, want);
	free(text);
	free(want);
}

static struct dv_conf *block_ok(const char *body)
{
	char *text = block(body);
	struct dv_conf *c = parse_ok(text);

	free(text);
	return c;
}

static char *print(const struct dv_conf *c)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	dv_conf_print(c, f);
	fclose(f);
	return out;
}

static struct dv_addr A(const char *s) {
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

static const char *
fmt_range(const struct dv_conf_range *r)
{
	static char buf[DV_ADDR_STRLEN];

	return r ? dv_prefix_fmt(&r->prefix, buf) : "(none)";
}

/* ---- defaults and simple statements ----------------------------------------- */

/* ROUTED: IPv4 or IPv6, alone in its address space, no distributed VIPA in
 * it, not with SOURCEVIPA; printed back; listed by dv_conf_routed(). */
static void test_routed(void **state)
{
	struct dv_prefix *p;
	struct dv_conf *c;
	char *out;

	(void)state;
	c = block_ok("VIPARANGE 10.9.0.0/16 ROUTED BINDWATCH\nVIPARANGE 10.8.0.0/24\nVIPARANGE 10.7.0.0/16 ROUTED\n");
	assert_int_equal(dv_conf_routed(c, &p), 2);
	assert_int_equal(p[0].len, 16);
	assert_int_equal(p[0].addr.bytes[1], 7); /* the ranges' order: most specific, then by address */
	assert_int_equal(p[1].addr.bytes[1], 9);
	free(p);
	out = print(c);
	assert_non_null(strstr(out, "VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 10.9.0.0/16 BINDWATCH ROUTED\n"));
	assert_non_null(strstr(out, "VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 10.8.0.0/24\n"));
	free(out);
	dv_conf_free(c);

	c = block_ok("VIPARANGE 10.8.0.0/24\n");
	assert_int_equal(dv_conf_routed(c, &p), 0);
	assert_null(p);
	dv_conf_free(c);

	c = block_ok("VIPARANGE fd00:1::/64 ROUTED\n");
	assert_int_equal(dv_conf_routed(c, &p), 1);
	assert_int_equal(p[0].addr.family, AF_INET6);
	assert_int_equal(p[0].len, 64);
	free(p);
	dv_conf_free(c);
	parse_err("INTERFACE e\nVIPADYNAMIC\nVIPARANGE fd00:1::/64 ROUTED\nVIPARANGE fd00:1::/120\nENDVIPADYNAMIC\n",
		  "t.conf:3: ROUTED range fd00:1::/64 overlaps range fd00:1::/120 (line 4)\n");
	block_err("VIPARANGE 10.9.0.0/16 ROUTED ROUTED", "duplicate ROUTED");
	block_err("VIPARANGE 10.9.0.0/16 SOURCEVIPA ROUTED",
		  "ROUTED and SOURCEVIPA cannot go together (range 10.9.0.0/16)");
	parse_err("INTERFACE e\nVIPADYNAMIC\nVIPARANGE 10.9.0.0/16 ROUTED\nVIPARANGE 10.9.1.0/24\nENDVIPADYNAMIC\n",
		  "t.conf:3: ROUTED range 10.9.0.0/16 overlaps range 10.9.1.0/24 (line 4)\n");
	parse_err("INTERFACE e\nVIPADYNAMIC\nVIPARANGE 10.9.0.0/16 ROUTED\nVIPADEFINE 10.9.0.1\n"
		  "VIPADISTRIBUTE 10.9.0.1 PORT 80 DESTIP ALL\nENDVIPADYNAMIC\n",
		  "t.conf:3: ROUTED range 10.9.0.0/16 and VIPADISTRIBUTE (line 5) cannot go together\n");
	/* A deleted range is no longer in the way, nor routed. */
	c = block_ok("VIPARANGE 10.9.0.0/16 ROUTED\nVIPARANGE DELETE 10.9.0.0/16\nVIPARANGE 10.9.1.0/24\n");
	assert_int_equal(dv_conf_routed(c, &p), 0);
	dv_conf_free(c);
}

static void test_empty(void **state)
{
	struct dv_conf *c = parse_ok("");
	char host[256] = "";

	assert_string_equal(c->file, "t.conf");
	assert_true(c->node[0] != 0);
	gethostname(host, sizeof(host) - 1);
	if (strlen(host) < DV_NODE_NAME_MAX &&
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == strlen(host) &&
	    host[0])
		assert_string_equal(c->node, host);
	assert_string_equal(c->interface, "");
	assert_int_equal(c->cluster, DV_CLUSTER_NONE);
	assert_string_equal(c->group, "dvipa");
	assert_int_equal(c->announce_count, 3);
	assert_int_equal(c->announce_interval_ms, 500);
	assert_int_equal(c->probe_count, 2);
	assert_int_equal(c->probe_interval_ms, 100);
	assert_int_equal(c->lease_s, 30);
	assert_int_equal(c->n_ranges, 0);
	assert_int_equal(c->n_defines, 0);
	assert_int_equal(c->n_distribute, 0);
	dv_conf_free(c);

	/* Comments, blank lines, CRLF, tabs; an empty block needs no INTERFACE. */
	c = parse_ok("# a comment\n\n   \t\r\nNODE x # trailing\r\nVIPADYNAMIC\nENDVIPADYNAMIC");
	assert_string_equal(c->node, "x");
	dv_conf_free(c);
	assert_null(dv_conf_free(NULL));
}

static void test_top_statements(void **state)
{
	struct dv_conf *c = parse_ok("node n-1.a_b\ninterface vlan.100\ncluster corosync group grp\n"
				     "announce interval 10 count 100\nprobe count 0 interval 10000\nlease 86400\n");

	assert_string_equal(c->node, "n-1.a_b");
	assert_string_equal(c->interface, "vlan.100");
	assert_int_equal(c->cluster, DV_CLUSTER_COROSYNC);
	assert_string_equal(c->group, "grp");
	assert_int_equal(c->announce_count, 100);
	assert_int_equal(c->announce_interval_ms, 10);
	assert_int_equal(c->probe_count, 0);
	assert_int_equal(c->probe_interval_ms, 10000);
	assert_int_equal(c->lease_s, 86400);
	dv_conf_free(c);

	c = parse_ok("CLUSTER COROSYNC\nANNOUNCE\nPROBE COUNT 10\nLEASE 6\n");
	assert_int_equal(c->cluster, DV_CLUSTER_COROSYNC);
	assert_string_equal(c->group, "dvipa");
	assert_int_equal(c->announce_count, 3);
	assert_int_equal(c->probe_count, 10);
	assert_int_equal(c->probe_interval_ms, 100);
	assert_int_equal(c->lease_s, 6);
	assert_int_equal(c->nice, 0);
	dv_conf_free(c);

	c = parse_ok("nice -20\n");
	assert_int_equal(c->nice, -20);
	dv_conf_free(c);
	c = parse_ok("NICE 19\n");
	assert_int_equal(c->nice, 19);
	dv_conf_free(c);
	c = parse_ok("NICE 0\n");
	assert_int_equal(c->nice, 0);
	dv_conf_free(c);

	/* Names of maximal length. */
	c = parse_ok("NODE 123456789012345678901234567890123456789012345678901234567890123\n"
		     "INTERFACE 123456789012345\n");
	assert_int_equal(strlen(c->node), DV_NODE_NAME_MAX - 1);
	assert_int_equal(strlen(c->interface), IF_NAMESIZE - 1);
	dv_conf_free(c);
}

static void test_top_errors(void **state)
{
	parse_err("NODE\n", "t.conf:1: NODE needs a name\n");
	parse_err("NODE a b\n", "t.conf:1: unexpected \"b\"\n");
	parse_err("NODE 1234567890123456789012345678901234567890123456789012345678901234\n",
		  "t.conf:1: node name \"1234567890123456789012345678901234567890123456789012345678901234\" is "
		  "too long (at most 63 characters)\n");
	parse_err("NODE a@b\n", "t.conf:1: invalid node name \"a@b\" (letters, digits, '.', '-' and '_' only)\n");
	parse_err("NODE a\nNODE b\n", "t.conf:2: duplicate NODE statement (first at line 1)\n");
	parse_err("INTERFACE\n", "t.conf:1: INTERFACE needs a name\n");
	parse_err("INTERFACE 1234567890123456\n",
		  "t.conf:1: interface name \"1234567890123456\" is too long (at most 15 characters)\n");
	parse_err("INTERFACE a/b\n", "t.conf:1: invalid interface name \"a/b\"\n");
	parse_err("INTERFACE eth0:1\n", "t.conf:1: invalid interface name \"eth0:1\"\n");
	parse_err("INTERFACE ..\n", "t.conf:1: invalid interface name \"..\"\n");
	parse_err("INTERFACE a\nINTERFACE b\n", "t.conf:2: duplicate INTERFACE statement (first at line 1)\n");
	parse_err("CLUSTER\n", "t.conf:1: CLUSTER needs NONE or COROSYNC\n");
	parse_err("CLUSTER PACEMAKER\n", "t.conf:1: CLUSTER must be NONE or COROSYNC, not \"PACEMAKER\"\n");
	parse_err("CLUSTER NONE GROUP x\n", "t.conf:1: GROUP needs CLUSTER COROSYNC\n");
	parse_err("CLUSTER COROSYNC GROUP\n", "t.conf:1: GROUP needs a name\n");
	parse_err("CLUSTER COROSYNC GROUP a$b\n",
		  "t.conf:1: invalid group name \"a$b\" (letters, digits, '.', '-' and '_' only)\n");
	parse_err("CLUSTER COROSYNC x\n", "t.conf:1: unexpected \"x\"\n");
	parse_err("ANNOUNCE COUNT 0\n", "t.conf:1: ANNOUNCE COUNT \"0\" is out of range 1..100\n");
	parse_err("ANNOUNCE COUNT 101\n", "t.conf:1: ANNOUNCE COUNT \"101\" is out of range 1..100\n");
	parse_err("ANNOUNCE INTERVAL 9\n", "t.conf:1: ANNOUNCE INTERVAL \"9\" is out of range 10..60000\n");
	parse_err("ANNOUNCE INTERVAL 60001\n", "t.conf:1: ANNOUNCE INTERVAL \"60001\" is out of range 10..60000\n");
	parse_err("ANNOUNCE COUNT\n", "t.conf:1: ANNOUNCE COUNT needs a value\n");
	parse_err("ANNOUNCE COUNT -1\n", "t.conf:1: ANNOUNCE COUNT \"-1\" is not a number\n");
	parse_err("ANNOUNCE COUNT 99999999999999999999999\n",
		  "t.conf:1: ANNOUNCE COUNT \"99999999999999999999999\" is out of range 1..100\n");
	parse_err("ANNOUNCE COUNT 1 COUNT 2\n", "t.conf:1: duplicate ANNOUNCE COUNT\n");
	parse_err("ANNOUNCE TIMES 1\n", "t.conf:1: unexpected \"TIMES\"\n");
	parse_err("PROBE COUNT 11\n", "t.conf:1: PROBE COUNT \"11\" is out of range 0..10\n");
	parse_err("PROBE INTERVAL 10001\n", "t.conf:1: PROBE INTERVAL \"10001\" is out of range 10..10000\n");
	parse_err("PROBE\nPROBE\n", "t.conf:2: duplicate PROBE statement (first at line 1)\n");
	parse_err("LEASE 5\n", "t.conf:1: LEASE \"5\" is out of range 6..86400\n");
	parse_err("LEASE 86401\n", "t.conf:1: LEASE \"86401\" is out of range 6..86400\n");
	parse_err("LEASE\n", "t.conf:1: LEASE needs a value\n");
	parse_err("LEASE 1x\n", "t.conf:1: LEASE \"1x\" is not a number\n");
	parse_err("LEASE 10 20\n", "t.conf:1: unexpected \"20\"\n");
	parse_err("NICE -21\n", "t.conf:1: NICE \"-21\" is out of range -20..19\n");
	parse_err("NICE 20\n", "t.conf:1: NICE \"20\" is out of range -20..19\n");
	parse_err("NICE 99999999999999999999999\n",
		  "t.conf:1: NICE \"99999999999999999999999\" is out of range -20..19\n");
	parse_err("NICE\n", "t.conf:1: NICE needs a value\n");
	parse_err("NICE -\n", "t.conf:1: NICE \"-\" is not a number\n");
	parse_err("NICE +5\n", "t.conf:1: NICE \"+5\" is not a number\n");
	parse_err("NICE -1 2\n", "t.conf:1: unexpected \"2\"\n");
	parse_err("NICE 1\nNICE 2\n", "t.conf:2: duplicate NICE statement (first at line 1)\n");
	parse_err("VIPADYNAMIC\nNICE 1\nENDVIPADYNAMIC\n", "t.conf:2: NICE is not allowed inside VIPADYNAMIC\n");
}

static void test_lines(void **state)
{
	char *text = malloc(5000);

	/* 4096 characters are fine, 4097 are not; the comment counts. */
	memset(text, ' ', 4096);
	memcpy(text, "NODE a #", 8);
	strcpy(text + 4096, "\n");
	dv_conf_free(parse_ok(text));
	memset(text, ' ', 4097);
	memcpy(text, "NODE a #", 8);
	strcpy(text + 4097, "\nFOO\n");
	parse_err(text, "t.conf:1: line too long (more than 4096 characters)\nt.conf:2: unknown keyword \"FOO\"\n");
	free(text);

	parse_err("NODE a\x01\n", "t.conf:1: invalid character 0x01\n");
	parse_err("NODE \x7f\n", "t.conf:1: invalid character 0x7f\n");
	parse_err("NODE a\vb\n", "t.conf:1: invalid character 0x0b\n");

	/* A NUL byte inside the text is an invalid character, not its end. */
	{
		static const char t[] = "NODE a\nNODE\0b\nFOO";
		struct dv_conf *c = NULL;
		unsigned n;

		assert_int_equal(dv_conf_parse_string("x", t, sizeof(t) - 1, NULL, &c, &n), -EINVAL);
		assert_int_equal(n, 2);
		assert_null(c);
	}
	/* No newline at the end, and a name of NULL. */
	{
		struct dv_conf *c = NULL;

		assert_int_equal(dv_conf_parse_string(NULL, "NODE z", 6, NULL, &c, NULL), 0);
		assert_string_equal(c->node, "z");
		assert_string_equal(c->file, "(string)");
		dv_conf_free(c);
	}
}

/* ---- the block --------------------------------------------------------------- */

static void test_block_structure(void **state)
{
	struct dv_conf *c;

	parse_err("VIPARANGE 10.0.0.0/8\n", "t.conf:1: VIPARANGE outside VIPADYNAMIC\n");
	parse_err("VIPADEFINE 10.0.0.1\n", "t.conf:1: VIPADEFINE outside VIPADYNAMIC\n");
	parse_err("VIPABACKUP 10.0.0.1\n", "t.conf:1: VIPABACKUP outside VIPADYNAMIC\n");
	parse_err("VIPADELETE 10.0.0.1\n", "t.conf:1: VIPADELETE outside VIPADYNAMIC\n");
	parse_err("VIPADISTRIBUTE 10.0.0.1 PORT 1\n", "t.conf:1: VIPADISTRIBUTE outside VIPADYNAMIC\n");
	parse_err("ENDVIPADYNAMIC\n", "t.conf:1: ENDVIPADYNAMIC without VIPADYNAMIC\n");
	parse_err("VIPADYNAMIC\n", "t.conf:1: VIPADYNAMIC without ENDVIPADYNAMIC\n");
	parse_err("VIPADYNAMIC\nVIPADYNAMIC\nENDVIPADYNAMIC\n",
		  "t.conf:2: nested VIPADYNAMIC (block opened at line 1)\n");
	parse_err("VIPADYNAMIC x\nENDVIPADYNAMIC y\n", "t.conf:1: unexpected \"x\"\nt.conf:2: unexpected \"y\"\n");
	block_err("NODE x", "NODE is not allowed inside VIPADYNAMIC");
	block_err("INTERFACE x", "INTERFACE is not allowed inside VIPADYNAMIC");
	block_err("CLUSTER NONE", "CLUSTER is not allowed inside VIPADYNAMIC");
	block_err("ANNOUNCE", "ANNOUNCE is not allowed inside VIPADYNAMIC");
	block_err("PROBE", "PROBE is not allowed inside VIPADYNAMIC");
	block_err("LEASE 30", "LEASE is not allowed inside VIPADYNAMIC");
	block_err("BOGUS 1", "unknown keyword \"BOGUS\"");
	parse_err("NODE a\n\nVIPADYNAMIC\nVIPARANGE 10.0.0.0/8\nENDVIPADYNAMIC\n",
		  "t.conf:3: no INTERFACE statement\n");
	/* An INTERFACE with an error is not also missing. */
	parse_err("INTERFACE a/b\nVIPADYNAMIC\nVIPARANGE 10.0.0.0/8\nENDVIPADYNAMIC\n",
		  "t.conf:1: invalid interface name \"a/b\"\n");

	/* Several blocks are one configuration. */
	c = parse_ok("INTERFACE e\nVIPADYNAMIC\nVIPARANGE 10.0.0.0/8\nENDVIPADYNAMIC\nLEASE 60\n"
		     "VIPADYNAMIC\nVIPARANGE 11.0.0.0/8\nENDVIPADYNAMIC\n");
	assert_int_equal(c->n_ranges, 2);
	dv_conf_free(c);
}

/* The z/OS rule: a prefix of the keyword at least as long as its capitals. */
static void test_abbreviations(void **state)
{
	static const char *const ok[] = {
		"VIPARANGE 10.0.0.0/8",
		"VIPAR 10.0.0.0/8",
		"viparan 10.0.0.0/8",
		"VIPADEFINE 10.0.0.1",
		"VIPADEF 10.0.0.1",
		"VipaDefi 10.0.0.1",
		"VIPABACKUP 10.0.0.1",
		"VIPAB 10.0.0.1",
		"VIPABACK 10.0.0.1",
		"VIPADEFINE 10.0.0.1\nVIPADISTRIBUTE 10.0.0.1 PORT 1 DESTIP n1",
		"VIPADEFINE 10.0.0.1\nVIPADIST 10.0.0.1 PORT 1 DESTIP n1",
		"VIPAR MOVE NONDISRUPT 10.0.0.0/8",
		"VIPAR MOVEABLE NONDISRUPTIVE 10.0.0.0/8",
		"VIPAR MOVEA DISRUPT 10.0.0.0/8",
		"VIPAR MOVEABLE DISRUPTIVE 10.0.0.0/8",
		"VIPADEF MOVE IMMED 10.0.0.1",
		"VIPADEF MOVE IMMEDIATE 10.0.0.1",
		"VIPADEF MOVE WHENIDLE 10.0.0.1",
		"VIPAB MOVE IMMED 10.0.0.1",
		"VIPADEFINE 10.0.0.1\nVIPADIST DISTM ROUNDROBIN 10.0.0.1 PORT 1 DESTIP ALL",
		"VIPADEFINE 10.0.0.1\nVIPADIST DISTM WEIGHTEDA TIMEDAFF 5 SYSPLEXP 10.0.0.1 PORT 1 DESTIP ALL",
	};
	static const char *const bad[][2] = {
		{"VIPA 10.0.0.0/8", "ambiguous keyword \"VIPA\": VIPADYNAMIC, VIPARANGE, VIPADEFINE, VIPABACKUP, "
				    "VIPADELETE or VIPADISTRIBUTE?"},
		{"VIPADE 10.0.0.1", "ambiguous keyword \"VIPADE\": VIPADEFINE or VIPADELETE?"},
		{"vipade 10.0.0.1", "ambiguous keyword \"vipade\": VIPADEFINE or VIPADELETE?"},
		{"VIPADIS 10.0.0.1",
		 "keyword \"VIPADIS\" is abbreviated too far: VIPADISTRIBUTE takes at least VIPADIST"},
		{"VI 10.0.0.1", "unknown keyword \"VI\""},
		{"VIPARANGES 10.0.0.0/8", "unknown keyword \"VIPARANGES\""},
		{"VIPADEFINEX 10.0.0.1", "unknown keyword \"VIPADEFINEX\""},
		{"VIPAR MOV NONDISRUPTIVE 10.0.0.0/8", "invalid address \"MOV\""},
		{"VIPAR MOVE NONDISRUP 10.0.0.0/8",
		 "MOVEABLE must be followed by NONDISRUPTIVE or DISRUPTIVE, not \"NONDISRUP\""},
		{"VIPAR MOVE DISRUP 10.0.0.0/8",
		 "MOVEABLE must be followed by NONDISRUPTIVE or DISRUPTIVE, not \"DISRUP\""},
		{"VIPADEF MOVE IMME 10.0.0.1", "MOVEABLE must be followed by IMMEDIATE or WHENIDLE, not \"IMME\""},
		{"VIPADEF MOVE WHENIDL 10.0.0.1",
		 "MOVEABLE must be followed by IMMEDIATE or WHENIDLE, not \"WHENIDL\""},
		{"VIPAR DEF 10.0.0.0/8", "invalid address \"DEF\""},
		{"VIPAR DELE 10.0.0.0/8", "invalid address \"DELE\""},
		{"VIPAR UNIQ 10.0.0.0/8", "invalid address \"UNIQ\""},
		{"VIPAR 10.0.0.0/8 ALLO USER root", "unexpected \"ALLO\""},
		{"VIPAR 10.0.0.0/8 ALLOW USE root", "ALLOW needs USER or GROUP"},
		{"VIPADEF 10.0.0.1 TRACK 80", "invalid address \"TRACK\"\nt.conf:4: invalid address \"80\""},
	};
	struct dv_conf *c;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		dv_conf_free(block_ok(ok[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		block_err(bad[i][0], bad[i][1]);

	/* VIPAD is VIPADynamic, ENDVIPAD its end; shorter is nothing. */
	c = parse_ok("INTERFACE e\nvipad\nvipar 10.0.0.0/8\nendvipad\nVIPADY\nENDVIPADY\n");
	assert_int_equal(c->n_ranges, 1);
	dv_conf_free(c);
	parse_err("VIPADYNAMIC\nENDVIPA\nENDVIPADYNAMIC\n",
		  "t.conf:2: keyword \"ENDVIPA\" is abbreviated too far: ENDVIPADYNAMIC takes at least ENDVIPAD\n");
	/* Keywords other than those abbreviate not at all. */
	parse_err("NOD x\nINTERF e\nCLUST NONE\nANN\nPROB\nLEAS 30\n",
		  "t.conf:1: unknown keyword \"NOD\" (NODE cannot be abbreviated)\n"
		  "t.conf:2: unknown keyword \"INTERF\" (INTERFACE cannot be abbreviated)\n"
		  "t.conf:3: unknown keyword \"CLUST\" (CLUSTER cannot be abbreviated)\n"
		  "t.conf:4: unknown keyword \"ANN\" (ANNOUNCE cannot be abbreviated)\n"
		  "t.conf:5: unknown keyword \"PROB\" (PROBE cannot be abbreviated)\n"
		  "t.conf:6: unknown keyword \"LEAS\" (LEASE cannot be abbreviated)\n");
	parse_err("CLUSTER COROSYNC GRO x\nANNOUNCE COUN 1\n",
		  "t.conf:1: unexpected \"GRO\"\nt.conf:2: unexpected \"COUN\"\n");
}

/* ---- VIPARANGE ---------------------------------------------------------------- */

static void test_range_forms(void **state)
{
	struct dv_conf *c = block_ok("VIPARange DEFINE 255.255.255.0 10.1.1.0\n"
				     "VIPARANGE 10.2.0.0/16\n"
				     "VIPARANGE MOVEABLE DISRUPTIVE fd00:1::/64\n"
				     "VIPARANGE UNIQUE 255.0.0.0 10.0.0.0\n"
				     "VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 255.255.255.255 10.3.3.3\n"
				     "VIPARANGE ::ffff:10.4.0.0/112\n"
				     "VIPARANGE fd00:2::/64\n"
				     "VIPARANGE 10.5.0.0/24\n");
	static const char *const order[] = {"fd00:1::/64", "fd00:2::/64", "10.3.3.3/32", "10.1.1.0/24",
					    "10.5.0.0/24", "10.2.0.0/16", "10.4.0.0/16", "10.0.0.0/8"};
	char buf[DV_ADDR_STRLEN];

	assert_int_equal(c->n_ranges, 8);
	/* Most specific first, IPv4 before IPv6 at equal length, then by address. */
	for (size_t i = 0; i < c->n_ranges; i++)
		assert_string_equal(dv_prefix_fmt(&c->ranges[i].prefix, buf), order[i]);
	assert_int_equal(c->ranges[0].policy, DV_POLICY_DISRUPTIVE);
	assert_int_equal(c->ranges[0].line, 6);
	assert_int_equal(c->ranges[2].policy, DV_POLICY_NONDISRUPTIVE);
	assert_int_equal(c->ranges[2].line, 8);
	assert_int_equal(c->ranges[7].policy, DV_POLICY_UNIQUE);
	assert_int_equal(c->ranges[3].line, 4);
	assert_false(c->ranges[3].deleted);
	assert_int_equal(c->ranges[3].n_users, 0);
	dv_conf_free(c);
}

static void test_range_errors(void **state)
{
	block_err("VIPARANGE", "VIPARANGE needs a range");
	block_err("VIPARANGE DEFINE", "VIPARANGE needs a range");
	block_err("VIPARANGE 10.1.1.0", "range \"10.1.1.0\" needs a mask (address_mask address or address/length)");
	block_err("VIPARANGE fd00::", "range \"fd00::\" needs a mask (address_mask address or address/length)");
	block_err("VIPARANGE 10.1.1.0 ALLOW USER root",
		  "range \"10.1.1.0\" needs a mask (address_mask address or address/length)");
	block_err("VIPARANGE 255.0.255.0 10.1.1.0", "non-contiguous mask \"255.0.255.0\"");
	block_err("VIPARANGE 10.1.1.5/24", "range \"10.1.1.5/24\" has host bits set (10.1.1.0/24?)");
	block_err("VIPARANGE 255.255.255.0 10.1.1.5",
		  "range \"255.255.255.0 10.1.1.5\" has host bits set (10.1.1.0/24?)");
	block_err("VIPARANGE fd00:1::1/64", "range \"fd00:1::1/64\" has host bits set (fd00:1::/64?)");
	block_err("VIPARANGE 255.255.255.0 fd00::", "mask \"255.255.255.0\" does not apply to IPv6 address \"fd00::\"");
	block_err("VIPARANGE 10.1.1.0/33", "invalid prefix length in \"10.1.1.0/33\"");
	block_err("VIPARANGE 10.1.1.0/", "invalid prefix length in \"10.1.1.0/\"");
	block_err("VIPARANGE 10.1.1.0/-1", "invalid prefix length in \"10.1.1.0/-1\"");
	block_err("VIPARANGE fd00::/129", "invalid prefix length in \"fd00::/129\"");
	block_err("VIPARANGE 10.1.1/24", "invalid address \"10.1.1/24\"");
	block_err("VIPARANGE /24", "invalid address \"/24\"");
	block_err("VIPARANGE foo", "invalid address \"foo\"");
	block_err("VIPARANGE 10.1.1.0/24 10.1.2.0/24", "unexpected \"10.1.2.0/24\"");
	block_err("VIPARANGE 10.1.1.0/24 SAF dvipa-no-such-group",
		  "SAF \"dvipa-no-such-group\": no Unix group \"dvipa-no-such-group\"");
	block_err("VIPARANGE 10.1.1.0/24 SAF DVIPA-NO-SUCH",
		  "SAF \"DVIPA-NO-SUCH\": no Unix group \"DVIPA-NO-SUCH\" or \"dvipa-no-such\"");
	block_err("VIPARANGE 10.1.1.0/24 SAF", "SAF needs a resource name (the Unix group it admits)");
	block_err("VIPARANGE 10.1.1.0/24 SAF root SAF daemon", "duplicate SAF");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER root ALLOW GROUP daemon", "duplicate ALLOW");
	block_err("VIPARANGE MOVEABLE 10.1.1.0/24",
		  "MOVEABLE must be followed by NONDISRUPTIVE or DISRUPTIVE, not \"10.1.1.0/24\"");
	block_err("VIPARANGE MOVEABLE", "MOVEABLE must be followed by NONDISRUPTIVE or DISRUPTIVE");
	parse_err("INTERFACE e\nVIPADYNAMIC\nVIPARANGE 10.1.1.0/24\nVIPARANGE 255.255.255.0 10.1.1.0\nENDVIPADYNAMIC\n",
		  "t.conf:4: duplicate range 10.1.1.0/24 (first at line 3)\n");
	block_err("VIPARANGE DELETE 10.1.1.0/24", "VIPARANGE DELETE of range 10.1.1.0/24, which is not defined");
	parse_err(
		"INTERFACE e\nVIPADYNAMIC\nVIPARANGE 10.1.1.0/24\nVIPARANGE DELETE UNIQUE 10.1.1.0/24\n"
		"VIPARANGE DELETE 10.1.1.0/24 ALLOW USER root\nENDVIPADYNAMIC\n",
		"t.conf:4: VIPARANGE DELETE takes no MOVEABLE, UNIQUE, BINDWATCH, SOURCEVIPA, SAF, ALLOW or ROUTED\n"
		"t.conf:5: VIPARANGE DELETE takes no MOVEABLE, UNIQUE, BINDWATCH, SOURCEVIPA, SAF, ALLOW or ROUTED\n");
	parse_err("INTERFACE e\nVIPADYNAMIC\nVIPARANGE 10.1.1.0/24\nVIPARANGE DELETE 10.1.1.0/24\n"
		  "VIPARANGE DELETE 10.1.1.0/24\nENDVIPADYNAMIC\n",
		  "t.conf:5: VIPARANGE DELETE of range 10.1.1.0/24, which is not defined\n");
}

static void test_range_nesting_delete(void **state)
{
	/* Nesting is allowed: the most specific range wins. */
	struct dv_conf *c = block_ok("VIPARANGE 10.0.0.0/8\n"
				     "VIPARANGE UNIQUE 10.1.0.0/16 ALLOW USER daemon\n"
				     "VIPARANGE 10.1.1.0/24\n"
				     "VIPARANGE DELETE 10.1.1.0/24\n"
				     "VIPARANGE fd00::/16\n");
	struct dv_addr a;
	const struct dv_conf_range *r;

	assert_int_equal(c->n_ranges, 4);
	assert_true(c->ranges[0].deleted); /* 10.1.1.0/24 stays, deleted */
	a = A("10.1.1.7");
	r = dv_conf_find_range(c, &a);
	assert_string_equal(fmt_range(r), "10.1.0.0/16");
	assert_int_equal(r->policy, DV_POLICY_UNIQUE);
	a = A("10.2.0.1");
	assert_string_equal(fmt_range(dv_conf_find_range(c, &a)), "10.0.0.0/8");
	a = A("11.0.0.1");
	assert_null(dv_conf_find_range(c, &a));
	a = A("fd00:1::5");
	assert_string_equal(fmt_range(dv_conf_find_range(c, &a)), "fd00::/16");
	a = A("fd01::5");
	assert_null(dv_conf_find_range(c, &a));
	dv_conf_free(c);

	/* DEFINE after DELETE revives the range with the new policy and ALLOW. */
	c = block_ok("VIPARANGE UNIQUE 10.1.1.0/24 ALLOW USER root\n"
		     "VIPARANGE DELETE 10.1.1.0/24\n"
		     "VIPARANGE MOVEABLE DISRUPTIVE 10.1.1.0/24 ALLOW GROUP daemon\n");
	assert_int_equal(c->n_ranges, 1);
	assert_false(c->ranges[0].deleted);
	assert_int_equal(c->ranges[0].policy, DV_POLICY_DISRUPTIVE);
	assert_int_equal(c->ranges[0].line, 6);
	assert_int_equal(c->ranges[0].n_users, 0);
	assert_int_equal(c->ranges[0].n_groups, 1);
	assert_string_equal(c->ranges[0].groups[0], "daemon");
	assert_int_equal(c->ranges[0].gids[0], 1);
	a = A("10.1.1.1");
	assert_ptr_equal(dv_conf_find_range(c, &a), &c->ranges[0]);
	dv_conf_free(c);
}

/* ---- ALLOW ---------------------------------------------------------------------- */

static void test_allow(void **state)
{
	struct dv_conf *c = block_ok("VIPARANGE 10.1.1.0/24 ALLOW USER root,daemon,1234 GROUP nogroup,0\n"
				     "VIPARANGE 10.1.2.0/24 ALLOW GROUP daemon USER 0\n"
				     "VIPARANGE 10.1.3.0/24 ALLOW USER root , daemon ,1234, 5\n"
				     "VIPARANGE 10.1.4.0/24\n");
	const struct dv_conf_range *r = &c->ranges[0];
	gid_t g_nogroup[] = {65534}, g_other[] = {7, 8}, g_daemon[] = {9, 1};

	assert_int_equal(r->n_users, 3);
	assert_string_equal(r->users[0], "root");
	assert_string_equal(r->users[1], "daemon");
	assert_string_equal(r->users[2], "1234");
	assert_int_equal(r->uids[0], 0);
	assert_int_equal(r->uids[1], 1);
	assert_int_equal(r->uids[2], 1234);
	assert_int_equal(r->n_groups, 2);
	assert_string_equal(r->groups[0], "nogroup");
	assert_int_equal(r->gids[0], 65534);
	assert_int_equal(r->gids[1], 0);

	assert_true(dv_conf_range_allows(r, 0, NULL, 0));
	assert_true(dv_conf_range_allows(r, 1, NULL, 0));
	assert_true(dv_conf_range_allows(r, 1234, NULL, 0));
	assert_false(dv_conf_range_allows(r, 1000, NULL, 0));
	assert_false(dv_conf_range_allows(r, 1000, g_other, 2));
	assert_true(dv_conf_range_allows(r, 1000, g_nogroup, 1));

	r = &c->ranges[1];
	assert_int_equal(r->n_users, 1);
	assert_int_equal(r->n_groups, 1);
	assert_true(dv_conf_range_allows(r, 1000, g_daemon, 2));
	assert_false(dv_conf_range_allows(r, 1000, g_other, 2));

	r = &c->ranges[2];
	assert_int_equal(r->n_users, 4);
	assert_string_equal(r->users[3], "5");

	/* No ALLOW: root only. */
	r = &c->ranges[3];
	assert_true(dv_conf_range_allows(r, 0, NULL, 0));
	assert_false(dv_conf_range_allows(r, 1, g_daemon, 2));
	assert_true(dv_conf_range_allows(NULL, 0, NULL, 0));
	assert_false(dv_conf_range_allows(NULL, 1, NULL, 0));
	dv_conf_free(c);
}

static void test_allow_errors(void **state)
{
	char *many, *s;

	block_err("VIPARANGE 10.1.1.0/24 ALLOW", "ALLOW needs USER or GROUP");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER", "USER needs a list of names");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER GROUP daemon", "USER needs a list of names");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER root USER daemon", "duplicate USER in ALLOW");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW GROUP root GROUP daemon", "duplicate GROUP in ALLOW");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER root,", "empty name in USER list");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW GROUP ,root", "empty name in GROUP list");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER root,,daemon", "empty name in USER list");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER dvipa-no-such-user", "unknown user \"dvipa-no-such-user\"");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW GROUP dvipa-no-such-group", "unknown group \"dvipa-no-such-group\"");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER 4294967295", "user id \"4294967295\" is out of range");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW GROUP 99999999999999999999",
		  "group id \"99999999999999999999\" is out of range");
	block_err("VIPARANGE 10.1.1.0/24 ALLOW USER root x", "unexpected \"x\"");
	/* Every unknown name is reported, on the statement's line. */
	parse_err("INTERFACE e\nVIPADYNAMIC\n"
		  "VIPARANGE 10.1.1.0/24 ALLOW USER nosuch1,root,nosuch2 GROUP nosuch3\nENDVIPADYNAMIC\n",
		  "t.conf:3: unknown user \"nosuch1\"\nt.conf:3: unknown user \"nosuch2\"\n"
		  "t.conf:3: unknown group \"nosuch3\"\n");

	/* DV_CONF_MAX_ALLOW names in all. */
	many = malloc(4096);
	s = stpcpy(many, "VIPARANGE 10.1.1.0/24 ALLOW USER 0");
	for (int i = 1; i < DV_CONF_MAX_ALLOW - 1; i++)
		s += sprintf(s, ",%d", i);
	strcpy(s, " GROUP 0");
	dv_conf_free(block_ok(many));
	strcpy(s, " GROUP 0,1");
	block_err(many, "too many names in ALLOW (at most 64)");
	free(many);
}

/* ---- VIPADEFINE, VIPABACKUP, VIPADELETE ---------------------------------------------- */

static void test_defines(void **state)
{
	struct dv_conf *c = block_ok("VIPADEFine 255.255.255.0 10.1.1.5 10.1.1.6\n"
				     "VIPADEFINE MOVEABLE WHENIDLE 10.1.2.5/24 fd00::5/64 TRACKPORT 443\n"
				     "VIPADEFINE 10.1.3.5 fd00::6\n"
				     "VIPABackup 200 MOVEable IMMEDiate 255.255.0.0 10.2.0.1\n"
				     "VIPABACKUP 10.3.0.1/20\n"
				     "VIPABACKUP 254 10.3.0.2 10.3.0.3\n"
				     "VIPADELete 10.3.0.3 10.1.1.6\n"
				     "VIPADEFINE 10.1.1.6/28\n");
	static const struct {
		const char *addr;
		unsigned plen, rank;
		enum dv_moveable move;
		unsigned port, line;
	} want[] = {
		{"10.1.1.5", 24, 255, DV_MOVE_IMMEDIATE, 0, 4},	 {"10.1.1.6", 28, 255, DV_MOVE_IMMEDIATE, 0, 11},
		{"10.1.2.5", 24, 255, DV_MOVE_WHENIDLE, 443, 5}, {"10.1.3.5", 32, 255, DV_MOVE_IMMEDIATE, 0, 6},
		{"10.2.0.1", 16, 200, DV_MOVE_IMMEDIATE, 0, 7},	 {"10.3.0.1", 20, 1, DV_MOVE_NONE, 0, 8},
		{"10.3.0.2", 32, 254, DV_MOVE_NONE, 0, 9},	 {"fd00::5", 64, 255, DV_MOVE_WHENIDLE, 443, 5},
		{"fd00::6", 128, 255, DV_MOVE_IMMEDIATE, 0, 6},
	};
	char buf[DV_ADDR_STRLEN];
	struct dv_addr a;

	assert_int_equal(c->n_defines, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < c->n_defines; i++) {
		const struct dv_conf_define *d = &c->defines[i];

		assert_string_equal(dv_addr_fmt(&d->addr, buf), want[i].addr);
		assert_int_equal(d->plen, want[i].plen);
		assert_int_equal(d->rank, want[i].rank);
		assert_int_equal(d->moveable, want[i].move);
		assert_int_equal(d->trackport, want[i].port);
		assert_int_equal(d->line, want[i].line);
		assert_ptr_equal(dv_conf_find_define(c, &d->addr), d);
	}
	a = A("10.3.0.3");
	assert_null(dv_conf_find_define(c, &a));
	a = A("::1");
	assert_null(dv_conf_find_define(c, &a));
	dv_conf_free(c);

	c = parse_ok("");
	assert_null(dv_conf_find_define(c, &a));
	assert_null(dv_conf_find_range(c, &a));
	dv_conf_free(c);
}

static void test_define_errors(void **state)
{
	block_err("VIPADEFINE", "VIPADEFINE needs an address");
	block_err("VIPADEFINE TRACKPORT 80", "VIPADEFINE needs an address");
	block_err("VIPADEFINE MOVEABLE IMMEDIATE", "VIPADEFINE needs an address");
	block_err("VIPABACKUP 100", "VIPABACKUP needs an address");
	block_err("VIPADELETE", "VIPADELETE needs an address");
	block_err("VIPADEFINE MOVEABLE", "MOVEABLE must be followed by IMMEDIATE or WHENIDLE");
	block_err("VIPADEFINE MOVEABLE NONDISRUPTIVE 10.1.1.1",
		  "MOVEABLE must be followed by IMMEDIATE or WHENIDLE, not \"NONDISRUPTIVE\"");
	block_err("VIPABACKUP 100 MOVEABLE WHENIDLE 10.1.1.1",
		  "VIPABACKUP: MOVEABLE must be followed by IMMEDIATE, not \"WHENIDLE\"");
	block_err("VIPABACKUP 100 MOVEABLE", "VIPABACKUP: MOVEABLE must be followed by IMMEDIATE");
	block_err("VIPABACKUP 0 10.1.1.1", "VIPABACKUP rank \"0\" is out of range 1..254");
	block_err("VIPABACKUP 255 10.1.1.1", "VIPABACKUP rank \"255\" is out of range 1..254");
	block_err("VIPABACKUP 100 TRACKPORT 80 10.1.1.1",
		  "invalid address \"TRACKPORT\"\nt.conf:4: invalid address \"80\"");
	block_err("VIPADEFINE 10.1.1.1 TRACKPORT", "TRACKPORT needs a value");
	block_err("VIPADEFINE 10.1.1.1 TRACKPORT 0", "TRACKPORT \"0\" is out of range 1..65535");
	block_err("VIPADEFINE 10.1.1.1 TRACKPORT 65536", "TRACKPORT \"65536\" is out of range 1..65535");
	block_err("VIPADEFINE 10.1.1.1 TRACKPORT 80 81", "unexpected \"81\"");
	block_err("VIPADEFINE 255.0.255.0 10.1.1.1", "non-contiguous mask \"255.0.255.0\"");
	block_err("VIPADEFINE 255.255.255.0 10.1.1.1/24", "\"10.1.1.1/24\" has both a mask and a prefix length");
	block_err("VIPADEFINE 255.255.255.0 fd00::1",
		  "mask \"255.255.255.0\" does not apply to IPv6 address \"fd00::1\"");
	block_err("VIPADEFINE 10.1.1.1/33", "invalid prefix length in \"10.1.1.1/33\"");
	block_err("VIPADEFINE 10.1.1", "invalid address \"10.1.1\"");
	block_err("VIPADEFINE 0.0.0.1", "\"0.0.0.1\" cannot be a VIPA (\"this network\" address)");
	block_err("VIPADEFINE 127.0.0.5", "\"127.0.0.5\" cannot be a VIPA (loopback address)");
	block_err("VIPADEFINE 239.1.1.1", "\"239.1.1.1\" cannot be a VIPA (multicast address)");
	block_err("VIPADEFINE 255.255.255.255", "\"255.255.255.255\" cannot be a VIPA (limited broadcast address)");
	block_err("VIPADEFINE ff02::1", "\"ff02::1\" cannot be a VIPA (multicast address)");
	block_err("VIPADEFINE ::", "\"::\" cannot be a VIPA (unspecified address)");
	block_err("VIPADEFINE ::1/128", "\"::1/128\" cannot be a VIPA (loopback address)");
	parse_err("INTERFACE e\nVIPADYNAMIC\nVIPADEFINE 10.1.1.1\nVIPABACKUP 10.1.1.1\nENDVIPADYNAMIC\n",
		  "t.conf:4: duplicate address \"10.1.1.1\" (first at line 3)\n");
	block_err("VIPADEFINE 10.1.1.1 10.1.1.1", "duplicate address \"10.1.1.1\" (first at line 4)");
	block_err("VIPADELETE 10.1.1.1", "no VIPADEFINE or VIPABACKUP for \"10.1.1.1\"");
	/* Every bad address of a statement is reported. */
	block_err("VIPADEFINE 10.1.1.1 foo 10.1.1.2 224.0.0.1",
		  "invalid address \"foo\"\nt.conf:4: \"224.0.0.1\" cannot be a VIPA (multicast address)");

	/* VIPADELETE then VIPADEFINE again is fine; a second VIPADELETE is not. */
	dv_conf_free(block_ok("VIPADEFINE 10.1.1.1\nVIPADELETE 10.1.1.1\nVIPABACKUP 9 10.1.1.1"));
	parse_err("INTERFACE e\nVIPADYNAMIC\nVIPADEFINE 10.1.1.1\nVIPADELETE 10.1.1.1\nVIPADELETE 10.1.1.1 10.1.1.2\n"
		  "ENDVIPADYNAMIC\n",
		  "t.conf:5: no VIPADEFINE or VIPABACKUP for \"10.1.1.1\"\n"
		  "t.conf:5: no VIPADEFINE or VIPABACKUP for \"10.1.1.2\"\n");
}

static void test_distribute(void **state)
{
	struct dv_conf *c =
		parse_ok("NODE n1\nINTERFACE eth0\nCLUSTER COROSYNC\nVIPADYNAMIC\n"
			 "VIPADEFINE 10.1.1.9\nVIPABACKUP 9 fd00::9\n"
			 "VIPADIST define distm roundrobin timedaff 30 sysplexp 10.1.1.9 port 80 443 destip all\n"
			 "VIPADISTRIBUTE DISTM WEIGHTEDA fd00::9 PORT 22 DESTIP n1 WEIGHT 3 n2\n"
			 "VIPADISTRIBUTE DISTM HOTSTANDBY 10.1.1.9 PORT 25 DESTIP n2 BACKUP 7 n1 preferred\n"
			 "VIPADISTRIBUTE DELETE 10.1.1.9 PORT 443\nENDVIPADYNAMIC\n");
	const struct dv_conf_distribute *d = c->distribute;

	assert_int_equal(c->n_distribute, 3);
	assert_int_equal(d[0].method, DV_DIST_ROUNDROBIN);
	assert_int_equal(d[0].affinity_s, 30);
	assert_true(d[0].sysplexports);
	assert_int_equal(d[0].n_ports, 1);
	assert_int_equal(d[0].ports[0], 80);
	assert_true(d[0].dest_all);
	assert_int_equal(d[0].n_dests, 0);
	assert_int_equal(d[0].line, 7);
	assert_int_equal(d[1].method, DV_DIST_WEIGHTEDACTIVE);
	assert_int_equal(d[1].addr.family, AF_INET6);
	assert_int_equal(d[1].n_dests, 2);
	assert_string_equal(d[1].dests[0].node, "n1");
	assert_int_equal(d[1].dests[0].weight, 3);
	assert_int_equal(d[1].dests[1].weight, DV_DIST_DEFAULT_WEIGHT);
	assert_int_equal(d[2].method, DV_DIST_HOTSTANDBY);
	assert_int_equal(d[2].dests[0].rank, 7);
	assert_int_equal(d[2].dests[1].rank, DV_DIST_PREFERRED_RANK);
	dv_conf_free(c);

	/* The rest of the errors are golden tests (tests/config/err-distribute*). */
	block_err("VIPADISTRIBUTE", "VIPADISTRIBUTE needs an address");
	block_err("VIPADISTRIBUTE 10.1.1.9", "VIPADISTRIBUTE needs PORT");
	block_err("VIPADISTRIBUTE PORT 80", "VIPADISTRIBUTE needs an address");
	block_err("VIPADISTRIBUTE 10.1.1.9 PORT", "PORT needs a port number");
	block_err("VIPADISTRIBUTE 10.1.1.9 PORT DESTIP ALL", "PORT needs a port number");
	block_err("VIPADISTRIBUTE 10.1.1.9 PORT 80 70000", "PORT \"70000\" is out of range 1..65535");
	block_err("VIPADISTRIBUTE 10.1.1.9 PORT 80", "VIPADISTRIBUTE needs DESTIP");
	block_err("VIPADISTRIBUTE 10.1.1.9 PORT 80 DESTIP ALL",
		  "VIPADISTRIBUTE address 10.1.1.9 is not a VIPADEFINE or VIPABACKUP address");
}

/* ---- limits and many errors ------------------------------------------------------- */

static void test_limits(void **state)
{
	size_t cap = 64 * (DV_CONF_MAX_STATEMENTS + 10);
	char *text = malloc(cap), *s, *want;
	struct dv_conf *c;

	s = stpcpy(text, "INTERFACE e\nVIPADYNAMIC\n");
	for (unsigned i = 0; i < DV_CONF_MAX_STATEMENTS; i++)
		s += sprintf(s, "VIPARANGE 10.%u.%u.0/24\nVIPADEFINE 11.%u.%u.1\n", i / 256, i % 256, i / 256, i % 256);
	strcpy(s, "ENDVIPADYNAMIC\n");
	c = parse_ok(text);
	assert_int_equal(c->n_ranges, DV_CONF_MAX_STATEMENTS);
	assert_int_equal(c->n_defines, DV_CONF_MAX_STATEMENTS);
	dv_conf_free(c);

	/* One more of each: reported once per kind. */
	s += sprintf(s, "VIPARANGE 12.0.0.0/24\nVIPADEFINE 12.0.0.1 12.0.0.2\nVIPARANGE 12.0.1.0/24\n");
	strcpy(s, "ENDVIPADYNAMIC\n");
	assert_true(asprintf(&want,
			     "t.conf:%u: too many VIPARANGE statements (at most 4096)\n"
			     "t.conf:%u: too many VIPADEFINE and VIPABACKUP addresses (at most 4096)\n",
			     2 * DV_CONF_MAX_STATEMENTS + 3, 2 * DV_CONF_MAX_STATEMENTS + 4) > 0);
	parse_err(text, want);
	free(want);
	free(text);
}

static void test_many_errors(void **state)
{
	static const char text[] = "NODE n1\n"
				   "NODE n2\n"
				   "FOO bar\n"
				   "LEASE 1\n"
				   "VIPADYNAMIC\n"
				   "  VIPARANGE 255.0.255.0 10.1.1.0\n"
				   "  VIPARANGE 10.1.1.5/24\n"
				   "  VIPABACKUP 0 10.1.1.7\n"
				   "  VIPADEF 10.1.1.8 TRACKPORT 80\n"
				   "  VIPADEF 10.1.1.8\n"
				   "  NODE x\n";
	struct dv_conf *c;
	char *errs;
	unsigned n;

	assert_int_equal(parse(text, &c, &errs, &n), -EINVAL);
	assert_int_equal(n, 10);
	assert_string_equal(errs, "t.conf:2: duplicate NODE statement (first at line 1)\n"
				  "t.conf:3: unknown keyword \"FOO\"\n"
				  "t.conf:4: LEASE \"1\" is out of range 6..86400\n"
				  "t.conf:6: non-contiguous mask \"255.0.255.0\"\n"
				  "t.conf:7: range \"10.1.1.5/24\" has host bits set (10.1.1.0/24?)\n"
				  "t.conf:8: VIPABACKUP rank \"0\" is out of range 1..254\n"
				  "t.conf:10: duplicate address \"10.1.1.8\" (first at line 9)\n"
				  "t.conf:11: NODE is not allowed inside VIPADYNAMIC\n"
				  "t.conf:5: VIPADYNAMIC without ENDVIPADYNAMIC\n"
				  "t.conf:5: no INTERFACE statement\n");
	free(errs);
}

/* ---- z/OS profile fidelity ------------------------------------------------------ */

static void test_zos_profile(void **state)
{
	gid_t g_daemon[] = {1}, g_other[] = {7};
	struct dv_conf *c;
	char *out;

	/* ';' comments; an indented line that starts with no statement
	 * keyword continues the statement, also across comment lines. */
	c = parse_ok("INTERFACE eth0 ; the VIPA interface\n"
		     "VIPADYNAMIC ; z/OS comment\n"
		     "  VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE\n"
		     "      255.255.255.0 10.1.1.0   ; continued\n"
		     "; a comment line inside the statement\n"
		     "\n"
		     "      SAF daemon\n"
		     "  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0\n"
		     "\t10.1.2.1 10.1.2.2\n"
		     "\tTRACKPORT 80\n"
		     "  VIPADISTRIBUTE DEFINE 10.1.2.1\n"
		     "     PORT 80 DESTIP ALL\n"
		     "ENDVIPADYNAMIC\n");
	assert_int_equal(c->n_ranges, 1);
	assert_int_equal(c->ranges[0].line, 3);
	assert_int_equal(c->n_defines, 2);
	assert_int_equal(c->defines[1].trackport, 80);
	assert_int_equal(c->defines[1].line, 8);
	assert_int_equal(c->n_distribute, 1);
	assert_true(c->distribute[0].dest_all);

	/* SAF admits the group's members: it is an ALLOW GROUP entry. */
	assert_int_equal(c->ranges[0].n_groups, 1);
	assert_string_equal(c->ranges[0].groups[0], "daemon");
	assert_true(dv_conf_range_allows(&c->ranges[0], 1000, g_daemon, 1));
	assert_false(dv_conf_range_allows(&c->ranges[0], 1000, g_other, 1));
	assert_true(dv_conf_range_allows(&c->ranges[0], 0, NULL, 0));
	out = print(c);
	assert_non_null(strstr(out, "VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 10.1.1.0/24 ALLOW GROUP daemon\n"));
	free(out);
	dv_conf_free(c);

	/* SAF in upper case finds the lower-case group; with ALLOW, in any
	 * order, and a group named twice is listed once. */
	c = block_ok("VIPARANGE 10.1.1.0/24 SAF DAEMON ALLOW USER root GROUP daemon,nogroup BINDWATCH\n");
	assert_int_equal(c->ranges[0].n_groups, 2);
	assert_string_equal(c->ranges[0].groups[0], "daemon");
	assert_string_equal(c->ranges[0].groups[1], "nogroup");
	assert_int_equal(c->ranges[0].n_users, 1);
	assert_true(c->ranges[0].bindwatch);
	dv_conf_free(c);

	/* Errors name the line of the offending word. */
	parse_err("INTERFACE e\nVIPADYNAMIC\n"
		  "  VIPARANGE DEFINE\n"
		  "     255.0.255.0 10.1.1.0\n"
		  "  VIPADEFINE 10.1.1.1\n"
		  "     10.1.1.2 TRACKPORT 80\n"
		  "  VIPADEFINE 10.1.1.3\n"
		  "     10.1.1.1\n"
		  "  VIPARANGE 10.1.2.0/24 ALLOW USER root,\n"
		  "     dvipa-no-such-user\n"
		  "  VIPARANGE 10.1.3.0/24\n"
		  "     VIPARANEG 10.1.4.0/24\n"
		  "  VIPADE 10.1.1.9\n"
		  "     10.1.1.10\n"
		  "  VIPADISTRIBUTE 10.1.1.11 PORT\n"
		  "     0\n"
		  "ENDVIPADYNAMIC\n",
		  "t.conf:4: non-contiguous mask \"255.0.255.0\"\n"
		  "t.conf:8: duplicate address \"10.1.1.1\" (first at line 5)\n"
		  "t.conf:10: unknown user \"dvipa-no-such-user\"\n"
		  "t.conf:12: unexpected \"VIPARANEG\" (an indented line continues the statement of line 11)\n"
		  "t.conf:13: ambiguous keyword \"VIPADE\": VIPADEFINE or VIPADELETE?\n"
		  "t.conf:16: PORT \"0\" is out of range 1..65535\n");

	/* A line with an error drops its statement, continuation lines
	 * included; an unindented line starts a statement. */
	parse_err("INTERFACE e\nVIPADYNAMIC\n"
		  "  VIPARANGE 10.1.1.0/24\n"
		  "     ALLOW\x01 USER root\n"
		  "     BINDWATCH\n"
		  "  VIPARANGE\n"
		  "10.1.2.0/24\n"
		  "ENDVIPADYNAMIC\n",
		  "t.conf:4: invalid character 0x01\n"
		  "t.conf:6: VIPARANGE needs a range\n"
		  "t.conf:7: unknown keyword \"10.1.2.0/24\"\n");
	/* An indented first line is a statement of its own. */
	parse_err("   10.1.1.1\n", "t.conf:1: unknown keyword \"10.1.1.1\"\n");
}

static void test_statement_length(void **state)
{
	char *text = malloc(8 * 4096), *s = text;
	struct dv_conf *c;

	/* Continuation lines add up to at most 16384 characters. */
	s = stpcpy(s, "INTERFACE e\nVIPADYNAMIC\nVIPADEFINE");
	for (int i = 0; i < 4; i++) {
		s += sprintf(s, "\n ");
		for (int j = 0; j < 250; j++)
			s += sprintf(s, " 10.%d.%d.1", i, j);
	}
	strcpy(s, "\nENDVIPADYNAMIC\n");
	c = parse_ok(text);
	assert_int_equal(c->n_defines, 1000);
	dv_conf_free(c);
	s = text + strlen(text) - strlen("\nENDVIPADYNAMIC\n");
	for (int i = 4; i < 8; i++) {
		s += sprintf(s, "\n ");
		for (int j = 0; j < 250; j++)
			s += sprintf(s, " 10.%d.%d.1", i, j);
	}
	strcpy(s, "\nENDVIPADYNAMIC\n");
	parse_err(text, "t.conf:10: statement too long (more than 16384 characters with its continuation lines)\n");
	free(text);
}

/* Addresses no range and no VIPA may be in. */
static void test_unusable_addresses(void **state)
{
	static const char *const bad[][2] = {
		{"VIPARANGE 127.0.0.0/8", "range 127.0.0.0/8 cannot hold VIPAs (loopback address)"},
		{"VIPARANGE 255.255.0.0 127.1.0.0",
		 "range 127.1.0.0/16 is in 127.0.0.0/8, which cannot hold VIPAs (loopback address)"},
		{"VIPARANGE 0.0.0.0/0",
		 "range 0.0.0.0/0 overlaps 0.0.0.0/8, which cannot hold VIPAs (\"this network\" address)"},
		{"VIPARANGE 224.0.0.0/3",
		 "range 224.0.0.0/3 overlaps 224.0.0.0/4, which cannot hold VIPAs (multicast address)"},
		{"VIPARANGE 169.254.1.0/24",
		 "range 169.254.1.0/24 is in 169.254.0.0/16, which cannot hold VIPAs (link-local address)"},
		{"VIPARANGE 255.255.255.255/32",
		 "range 255.255.255.255/32 cannot hold VIPAs (limited broadcast address)"},
		{"VIPARANGE ::/0",
		 "range ::/0 overlaps ::ffff:0.0.0.0/96, which cannot hold VIPAs (IPv4-mapped address)"},
		{"VIPARANGE fe80::/64",
		 "range fe80::/64 is in fe80::/10, which cannot hold VIPAs (link-local address)"},
		{"VIPARANGE ff00::/8", "range ff00::/8 cannot hold VIPAs (multicast address)"},
		{"VIPARANGE ::ffff:127.0.0.0/104", "range 127.0.0.0/8 cannot hold VIPAs (loopback address)"},
		{"VIPADEFINE 169.254.0.5", "\"169.254.0.5\" cannot be a VIPA (link-local address)"},
		{"VIPABACKUP 10 fe80::5", "\"fe80::5\" cannot be a VIPA (link-local address)"},
		{"VIPADEFINE 0.0.0.0", "\"0.0.0.0\" cannot be a VIPA (unspecified address)"},
		{"VIPADEFINE ::ffff:224.1.2.3", "\"::ffff:224.1.2.3\" cannot be a VIPA (multicast address)"},
		{"VIPADISTRIBUTE DEFINE 127.0.0.1 PORT 80 DESTIP ALL",
		 "\"127.0.0.1\" cannot be a VIPA (loopback address)"},
		{"VIPADELETE ff02::1", "\"ff02::1\" cannot be a VIPA (multicast address)"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		block_err(bad[i][0], bad[i][1]);
	/* Their neighbours are fine, and DELETE of such a range is only "not
	 * defined". */
	dv_conf_free(block_ok("VIPARANGE 126.0.0.0/8\nVIPARANGE 128.0.0.0/3\nVIPARANGE fec0::/10\n"
			      "VIPADEFINE 169.253.0.1 223.255.255.255\n"));
	block_err("VIPARANGE DELETE 127.0.0.0/8", "VIPARANGE DELETE of range 127.0.0.0/8, which is not defined");
}

/* ---- printing -------------------------------------------------------------------- */

static const char rich[] = "node n1\n"
			   "interface eth0\n"
			   "cluster corosync group g1\n"
			   "probe count 0\n"
			   "vipad\n"
			   "  vipar define 255.255.255.0 10.1.1.0 allow user root, daemon group nogroup\n"
			   "  vipar moveable disruptive 10.2.0.0/16 allow group 0\n"
			   "  vipar unique fd00:1::/64\n"
			   "  vipar 10.9.0.0/16\n"
			   "  vipar delete 255.255.0.0 10.9.0.0\n"
			   "  vipadef 255.255.255.0 10.1.1.5 10.1.1.6 trackport 8080\n"
			   "  vipadef move whenidle fd00:1::5\n"
			   "  vipab 200 move immed 255.255.255.0 10.1.1.7\n"
			   "  vipab 10.1.1.8\n"
			   "  vipab 100 10.1.1.9/26\n"
			   "  vipadist 10.1.1.6 port 80 destip all\n"
			   "endvipad\n";

static const char rich_printed[] =
	"NODE n1\n"
	"INTERFACE eth0\n"
	"CLUSTER COROSYNC GROUP g1\n"
	"ANNOUNCE COUNT 3 INTERVAL 500\n"
	"PROBE COUNT 0 INTERVAL 100\n"
	"LEASE 30\n"
	"MAXUSERVIPAS 1024\n"
	"NICE 0\n"
	"VIPADYNAMIC\n"
	"  VIPARANGE DEFINE UNIQUE fd00:1::/64\n"
	"  VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 10.1.1.0/24 ALLOW USER root,daemon GROUP nogroup\n"
	"  VIPARANGE DEFINE MOVEABLE DISRUPTIVE 10.2.0.0/16 ALLOW GROUP 0\n"
	"  VIPADEFINE MOVEABLE IMMEDIATE 10.1.1.5/24 TRACKPORT 8080\n"
	"  VIPADEFINE MOVEABLE IMMEDIATE 10.1.1.6/24 TRACKPORT 8080\n"
	"  VIPABACKUP 200 MOVEABLE IMMEDIATE 10.1.1.7/24\n"
	"  VIPABACKUP 1 10.1.1.8/32\n"
	"  VIPABACKUP 100 10.1.1.9/26\n"
	"  VIPADEFINE MOVEABLE WHENIDLE fd00:1::5/128\n"
	"  VIPADISTRIBUTE DEFINE DISTMETHOD BASEWLM TIMEDAFFINITY 0 10.1.1.6 PORT 80 DESTIP ALL\n"
	"ENDVIPADYNAMIC\n";

static void test_print(void **state)
{
	struct dv_conf *c = parse_ok(rich), *c2;
	char *out = print(c), *out2;

	assert_string_equal(out, rich_printed);
	c2 = parse_ok(out);
	out2 = print(c2);
	assert_string_equal(out2, out);
	dv_conf_free(c);
	dv_conf_free(c2);
	free(out);
	free(out2);

	/* No block when nothing is in it, not even deleted ranges; no
	 * INTERFACE when none was given. */
	c = parse_ok("NODE a\nINTERFACE e\nVIPADYNAMIC\nVIPARANGE 10.0.0.0/8\nVIPARANGE DELETE 10.0.0.0/8\n"
		     "ENDVIPADYNAMIC\n");
	out = print(c);
	assert_string_equal(out, "NODE a\nINTERFACE e\nCLUSTER NONE\nANNOUNCE COUNT 3 INTERVAL 500\n"
				 "PROBE COUNT 2 INTERVAL 100\nLEASE 30\nMAXUSERVIPAS 1024\nNICE 0\n");
	free(out);
	dv_conf_free(c);
	c = parse_ok("NODE a\n");
	out = print(c);
	assert_string_equal(out, "NODE a\nCLUSTER NONE\nANNOUNCE COUNT 3 INTERVAL 500\n"
				 "PROBE COUNT 2 INTERVAL 100\nLEASE 30\nMAXUSERVIPAS 1024\nNICE 0\n");
	free(out);
	dv_conf_free(c);
}

/* ---- check_local ------------------------------------------------------------------ */

static void test_check_local(void **state)
{
	struct dv_conf *c = block_ok("VIPARANGE 10.1.1.0/24\n"
				     "VIPARANGE 10.2.0.0/16\n"
				     "VIPARANGE DELETE 10.2.0.0/16\n"
				     "VIPARANGE fd00::/64\n"
				     "VIPADEFINE 10.3.0.1\n"
				     "VIPABACKUP 7 10.3.0.2\n");
	struct dv_addr local[] = {A("10.1.1.7"),  A("10.2.0.1"), A("10.3.0.2"),
				  A("192.0.2.1"), A("fd00::2"),	 A("10.3.0.1")};
	char *errs = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&errs, &len);

	assert_int_equal(dv_conf_check_local(c, local, 4, NULL), 2);
	assert_int_equal(dv_conf_check_local(c, local + 3, 1, NULL), 0);
	assert_int_equal(dv_conf_check_local(c, NULL, 0, NULL), 0);
	assert_int_equal(dv_conf_check_local(c, local, 6, f), 4);
	fclose(f);
	assert_string_equal(
		errs, "t.conf:7: range fd00::/64 covers address fd00::2 of interface eth0, which is not a VIPA\n"
		      "t.conf:4: range 10.1.1.0/24 covers address 10.1.1.7 of interface eth0, which is not a VIPA\n"
		      "t.conf:8: VIPADEFINE address 10.3.0.1 is an address of interface eth0, which is not a VIPA\n"
		      "t.conf:9: VIPABACKUP address 10.3.0.2 is an address of interface eth0, which is not a VIPA\n");
	free(errs);
	dv_conf_free(c);
}

/* ---- files -------------------------------------------------------------------------- */

static void test_file(void **state)
{
	char path[] = "/tmp/test_conf.XXXXXX";
	int fd = mkstemp(path);
	struct dv_conf *c = NULL;
	char *errs = NULL;
	size_t len = 0;
	unsigned n = 7;
	FILE *f;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, rich, sizeof(rich) - 1), (ssize_t)(sizeof(rich) - 1));
	close(fd);
	assert_int_equal(dv_conf_parse_file(path, NULL, &c, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(c->file, path);
	assert_int_equal(c->n_ranges, 4);
	dv_conf_free(c);
	unlink(path);

	f = open_memstream(&errs, &len);
	c = NULL;
	assert_int_equal(dv_conf_parse_file("/nonexistent/dvipa.conf", f, &c, &n), -ENOENT);
	fclose(f);
	assert_null(c);
	assert_string_equal(errs, "/nonexistent/dvipa.conf: No such file or directory\n");
	free(errs);
}

/* Each name has one home; the config spelling parses back to the policy. */
static void test_names(void **state)
{
	(void)state;
	assert_string_equal(dv_policy_keyword(DV_POLICY_NONDISRUPTIVE), "MOVEABLE NONDISRUPTIVE");
	assert_string_equal(dv_policy_keyword(DV_POLICY_DISRUPTIVE), "MOVEABLE DISRUPTIVE");
	assert_string_equal(dv_policy_keyword(DV_POLICY_UNIQUE), "UNIQUE");
	assert_string_equal(dv_policy_name(DV_POLICY_NONDISRUPTIVE), "nondisruptive");
	assert_string_equal(dv_policy_name(DV_POLICY_DISRUPTIVE), "disruptive");
	assert_string_equal(dv_policy_name(DV_POLICY_UNIQUE), "unique");
	assert_string_equal(dv_origin_name(0), "none");
	assert_string_equal(dv_origin_name(1), "bind");
	assert_string_equal(dv_origin_name(5), "backup");
	assert_string_equal(dv_state_name(1), "active");
	assert_string_equal(dv_state_name(2), "waiting");
	assert_string_equal(dv_state_name(3), "inactive");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_routed),
		cmocka_unit_test(test_top_statements),
		cmocka_unit_test(test_top_errors),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_block_structure),
		cmocka_unit_test(test_abbreviations),
		cmocka_unit_test(test_range_forms),
		cmocka_unit_test(test_range_errors),
		cmocka_unit_test(test_range_nesting_delete),
		cmocka_unit_test(test_allow),
		cmocka_unit_test(test_allow_errors),
		cmocka_unit_test(test_defines),
		cmocka_unit_test(test_define_errors),
		cmocka_unit_test(test_distribute),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_check_local),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_zos_profile),
		cmocka_unit_test(test_statement_length),
		cmocka_unit_test(test_unusable_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
