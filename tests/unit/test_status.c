/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The records of STATUS and CONFIG answers (status.c), built from a small
 * engine state and decoded back as dvipactl would:
 *
 *   n1 (self, id 1) ── n2 (id 2)        quorate
 *
 *   n1: VIPARANGE 10.1.1.0/24 NONDISRUPTIVE, VIPARANGE 10.3.0.0/16 UNIQUE,
 *       VIPADEFINE 10.1.1.5
 *   n2: VIPARANGE 10.1.1.0/24 DISRUPTIVE (disagrees with n1)
 *   10.1.1.20: an API hold of n1's client 7 (uid 1000), a standby of n2's
 *              client 9 (rank 10)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

#define MAX_RECS 64
#define MAX_FIELDS 16

static const char n1_conf[] = "NODE n1\n"
			      "INTERFACE eth0\n"
			      "VIPADYNAMIC\n"
			      "  VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 10.1.1.0/24\n"
			      "  VIPARANGE DEFINE UNIQUE 10.3.0.0/16\n"
			      "  VIPADEFINE MOVEABLE IMMEDIATE 10.1.1.5/24\n"
			      "ENDVIPADYNAMIC\n";

struct field {
	char key[32];
	uint8_t type;
	char str[DV_REASON_MAX];
	uint64_t u64;
	bool b;
};

struct rec {
	uint32_t type;
	size_t n;
	struct field f[MAX_FIELDS];
};

struct state {
	struct dv_conf *conf;
	struct dv_engine *e;
	struct dv_conf_range n2_range;
	struct dv_msgb b;
	size_t n;
	struct rec recs[MAX_RECS];
	int emit_ret; /* what emit answers: 0, or -EPIPE (the reader is gone) */
};

/* ---- the engine: the only place this test drives its API ---- */

/* An engine of node self that has applied the events in order. */
static struct dv_engine *engine_run(dv_nodeid_t self, struct dv_event *evs, size_t n)
{
	struct dv_engine *e = dv_engine_new(self);

	assert_non_null(e);
	for (size_t i = 0; i < n; i++) {
		evs[i].time_ms = 1000 + i;
		assert_int_equal(dv_engine_apply(e, &evs[i], NULL), 0);
	}
	return e;
}

/* ---- the state of the sketch ---- */

static struct dv_addr A(const char *s) {
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

static int
setup(void **ud)
{
	static const dv_nodeid_t both[] = {1, 2};
	struct state *st = calloc(1, sizeof(*st));
	unsigned nerr = 0;

	assert_non_null(st);
	assert_int_equal(dv_conf_parse_string("n1.conf", n1_conf, strlen(n1_conf), stderr, &st->conf, &nerr), 0);
	assert_int_equal(dv_prefix_parse("10.1.1.0/24", &st->n2_range.prefix), 0);
	st->n2_range.policy = DV_POLICY_DISRUPTIVE;

	struct dv_event evs[] = {
		{.type = DV_EV_MEMBERSHIP, .node = 1, .membership = {.n = 2, .nodes = both}},
		{.type = DV_EV_QUORUM, .node = 1, .quorum.quorate = true},
		{.type = DV_EV_NODE_CONFIG,
		 .node = 1,
		 .node_config = {.name = "n1",
				 .n_ranges = st->conf->n_ranges,
				 .ranges = st->conf->ranges,
				 .n_defines = st->conf->n_defines,
				 .defines = st->conf->defines}},
		{.type = DV_EV_NODE_CONFIG,
		 .node = 2,
		 .node_config = {.name = "n2", .n_ranges = 1, .ranges = &st->n2_range}},
		{.type = DV_EV_CLAIM,
		 .node = 1,
		 .claim = {.client = 7, .seq = 1, .addr = A("10.1.1.20"), .kind = DV_KIND_API, .uid = 1000}},
		{.type = DV_EV_STANDBY,
		 .node = 2,
		 .standby = {.client = 9, .seq = 1, .addr = A("10.1.1.20"), .rank = 10, .kind = DV_KIND_API, .uid = 0}},
	};
	st->e = engine_run(1, evs, sizeof(evs) / sizeof(evs[0]));
	*ud = st;
	return 0;
}

static int teardown(void **ud)
{
	struct state *st = *ud;

	dv_engine_free(st->e);
	dv_conf_free(st->conf);
	free(st);
	return 0;
}

/* ---- the records, decoded ---- */

static int emit(void *ud, struct dv_msgb *b)
{
	struct state *st = ud;
	struct rec *r = &st->recs[st->n];
	struct dv_attr_iter it;
	struct dv_msg m;
	const void *v;
	uint16_t type;
	size_t len;

	assert_true(st->n < MAX_RECS);
	assert_int_equal(dv_msgb_finish(b), 0);
	assert_int_equal(dv_msg_parse(b->buf, b->len, &m), 0);
	assert_int_equal(m.type, DV_MSG_RECORD);
	assert_int_equal(m.seq, 42);
	memset(r, 0, sizeof(*r));
	dv_attr_iter_init(&it, &m);
	while (dv_attr_next(&it, &type, &v, &len)) {
		if (type == DV_A_RECTYPE) {
			assert_int_equal(dv_val_u32(v, len, &r->type), 0);
		} else if (type == DV_A_FIELD) {
			struct field *f = &r->f[r->n++];
			const char *key, *str = NULL;

			assert_true(r->n <= MAX_FIELDS);
			assert_int_equal(dv_val_field(v, len, &f->type, &key, &str, &f->u64, &f->b), 0);
			snprintf(f->key, sizeof(f->key), "%s", key);
			snprintf(f->str, sizeof(f->str), "%s", str ? str : "");
		}
	}
	st->n++;
	return st->emit_ret;
}

static struct dv_records records_of(struct state *st)
{
	st->n = 0;
	return (struct dv_records){.b = &st->b, .seq = 42, .emit = emit, .ud = st};
}

static const struct field *field(const struct rec *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].key, key) == 0)
			return &r->f[i];
	fail_msg("record of type %u has no field '%s'", r->type, key);
	return NULL;
}

static const char *fstr(const struct rec *r, const char *key)
{
	const struct field *f = field(r, key);

	assert_int_equal(f->type, DV_F_STR);
	return f->str;
}

static uint64_t fu64(const struct rec *r, const char *key)
{
	const struct field *f = field(r, key);

	assert_int_equal(f->type, DV_F_U64);
	return f->u64;
}

static bool fbool(const struct rec *r, const char *key)
{
	const struct field *f = field(r, key);

	assert_int_equal(f->type, DV_F_BOOL);
	return f->b;
}

/* The first record of type t about addr (or any, if addr is NULL). */
static const struct rec *find(const struct state *st, uint32_t t, const char *addr)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->recs[i].type == t && (!addr || strcmp(fstr(&st->recs[i], "addr"), addr) == 0))
			return &st->recs[i];
	return NULL;
}

/* The kernel has 10.1.1.20 only. */
static bool installed(void *ud, const struct dv_addr *a)
{
	struct dv_addr have = A("10.1.1.20");

	return dv_addr_eq(a, &have);
}

static pid_t client_pid(void *ud, uint64_t client)
{
	return (pid_t)(5000 + client);
}

static enum dv_result status(struct state *st, const char *addr, char *reason, size_t size)
{
	const struct dv_status_input in = {
		.engine = st->e,
		.conf = st->conf,
		.conf_path = "/etc/dvipa/n1.conf",
		.started_ms = 1234,
		.pid = 4242,
		.n_clients = 3,
		.installed = installed,
		.client_pid = client_pid,
		.ud = st,
	};
	struct dv_records out = records_of(st);
	struct dv_addr a;

	if (addr)
		a = A(addr);
	return dv_status_records(&in, addr ? &a : NULL, &out, reason, size);
}

/* ---- tests ---- */

static void test_daemon_and_members(void **ud)
{
	struct state *st = *ud;
	char reason[DV_REASON_MAX] = "";
	const struct rec *r;

	assert_int_equal(status(st, NULL, reason, sizeof(reason)), DV_R_OK);
	r = &st->recs[0];
	assert_int_equal(r->type, DV_REC_DAEMON);
	assert_string_equal(fstr(r, "node"), "n1");
	assert_int_equal(fu64(r, "nodeid"), 1);
	assert_string_equal(fstr(r, "cluster"), "none");
	assert_true(fbool(r, "quorate"));
	assert_string_equal(fstr(r, "interface"), "eth0");
	assert_string_equal(fstr(r, "config"), "/etc/dvipa/n1.conf");
	assert_int_equal(fu64(r, "pid"), 4242);
	assert_int_equal(fu64(r, "started"), 1234);
	assert_int_equal(fu64(r, "vipas"), 2); /* the define and 10.1.1.20 */
	assert_int_equal(fu64(r, "clients"), 3);

	r = &st->recs[1];
	assert_int_equal(r->type, DV_REC_MEMBER);
	assert_int_equal(fu64(r, "nodeid"), 1);
	assert_string_equal(fstr(r, "name"), "n1");
	assert_true(fbool(r, "self"));
	assert_string_equal(fstr(r, "config_differs"), "");
	assert_false(fbool(r, "left"));
	r = &st->recs[2];
	assert_int_equal(r->type, DV_REC_MEMBER);
	assert_string_equal(fstr(r, "name"), "n2");
	assert_false(fbool(r, "self"));
	assert_string_equal(fstr(r, "config_differs"), "range 10.1.1.0/24: nondisruptive on n1, disruptive on n2");

	/* Then the VIPAs by address, each followed by its holds and standbys. */
	assert_int_equal(st->recs[3].type, DV_REC_VIPA);
	assert_string_equal(fstr(&st->recs[3], "addr"), "10.1.1.5");
	assert_string_equal(fstr(&st->recs[3], "origin"), "define");
	assert_false(fbool(&st->recs[3], "installed"));
	assert_non_null(find(st, DV_REC_VIPA, "10.1.1.20"));
	assert_int_equal(st->recs[st->n - 1].type, DV_REC_STANDBY);
}

static void test_vipa_hold_standby(void **ud)
{
	struct state *st = *ud;
	char reason[DV_REASON_MAX] = "";
	const struct rec *r;

	assert_int_equal(status(st, "10.1.1.20", reason, sizeof(reason)), DV_R_OK);
	assert_int_equal(st->n, 6); /* daemon, 2 members, vipa, hold, standby */
	assert_null(find(st, DV_REC_VIPA, "10.1.1.5"));

	r = find(st, DV_REC_VIPA, "10.1.1.20");
	assert_non_null(r);
	assert_string_equal(fstr(r, "state"), "active");
	assert_int_equal(fu64(r, "owner"), 1);
	assert_string_equal(fstr(r, "owner_name"), "n1");
	assert_string_equal(fstr(r, "origin"), "api");
	assert_true(fbool(r, "installed"));
	assert_string_equal(fstr(r, "range"), "10.1.1.0/24");
	assert_string_equal(fstr(r, "policy"), "nondisruptive");
	assert_string_equal(fstr(r, "deactivated_on"), "");

	r = find(st, DV_REC_HOLD, "10.1.1.20");
	assert_non_null(r);
	assert_string_equal(fstr(r, "kind"), "api");
	assert_int_equal(fu64(r, "node"), 1);
	assert_string_equal(fstr(r, "node_name"), "n1");
	assert_int_equal(fu64(r, "client"), 7);
	assert_int_equal(fu64(r, "uid"), 1000);
	assert_int_equal(fu64(r, "pid"), 5007); /* a client of this node */

	r = find(st, DV_REC_STANDBY, "10.1.1.20");
	assert_non_null(r);
	assert_int_equal(fu64(r, "node"), 2);
	assert_string_equal(fstr(r, "node_name"), "n2");
	assert_int_equal(fu64(r, "client"), 9);
	assert_int_equal(fu64(r, "rank"), 10);
	assert_int_equal(fu64(r, "pid"), 0); /* another node's client */
}

static void test_unknown_vipa(void **ud)
{
	struct state *st = *ud;
	char reason[DV_REASON_MAX] = "";

	assert_int_equal(status(st, "10.1.1.99", reason, sizeof(reason)), DV_R_NOTHELD);
	assert_string_equal(reason, "address 10.1.1.99 is not a known VIPA");
	assert_int_equal(st->n, 3); /* daemon and members only */
	assert_null(find(st, DV_REC_VIPA, NULL));
}

/* A reader that is gone: no VIPA after the one whose records failed. */
static void test_reader_gone(void **ud)
{
	struct state *st = *ud;
	char reason[DV_REASON_MAX] = "";

	st->emit_ret = -EPIPE;
	assert_int_equal(status(st, NULL, reason, sizeof(reason)), DV_R_OK);
	st->emit_ret = 0;
	assert_non_null(find(st, DV_REC_VIPA, "10.1.1.5"));
	assert_null(find(st, DV_REC_VIPA, "10.1.1.20"));
}

static void test_config(void **ud)
{
	struct state *st = *ud;
	struct dv_records out = records_of(st);
	const struct rec *r;

	dv_status_config(st->conf, &out);
	r = &st->recs[0];
	assert_int_equal(r->type, DV_REC_RANGE);
	assert_string_equal(fstr(r, "range"), "10.1.1.0/24");
	assert_string_equal(fstr(r, "policy"), "nondisruptive");
	assert_false(fbool(r, "deleted"));
	assert_string_equal(fstr(r, "users"), "");
	assert_int_equal(fu64(r, "line"), 4);
	r = &st->recs[1];
	assert_int_equal(r->type, DV_REC_RANGE);
	assert_string_equal(fstr(r, "range"), "10.3.0.0/16");
	assert_string_equal(fstr(r, "policy"), "unique");

	r = find(st, DV_REC_DEFINE, "10.1.1.5");
	assert_non_null(r);
	assert_int_equal(fu64(r, "rank"), DV_RANK_DEFINE);
	assert_string_equal(fstr(r, "moveable"), "immediate");
	assert_int_equal(fu64(r, "trackport"), 0);
	assert_string_equal(fstr(r, "type"), "define");

	/* The normalized configuration follows, a line a record. */
	r = find(st, DV_REC_TEXT, NULL);
	assert_non_null(r);
	assert_string_equal(fstr(r, "text"), "NODE n1");
	assert_int_equal(st->recs[st->n - 1].type, DV_REC_TEXT);
	assert_string_equal(fstr(&st->recs[st->n - 1], "text"), "ENDVIPADYNAMIC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_daemon_and_members, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vipa_hold_standby, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_vipa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
