/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The gate (gate.c), driven by scripted Corosync reports and a real engine
 * (policy_fixture.h: self n1, peer n2, range 10.1.1.0/24).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gate.h"
#include "policy_fixture.h"

static void test_solo_is_open(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr mine = fx_addr("10.1.1.5"), theirs = fx_addr("10.1.1.6");
	struct dv_gate g;

	dv_gate_init(&g, true);
	assert_true(dv_gate_is_open(&g));
	fx_claim(f, 1, 7, "10.1.1.5", DV_KIND_API);
	fx_claim(f, 2, 7, "10.1.1.6", DV_KIND_API);
	assert_true(dv_gate_wants(&g, f->e, &mine));
	assert_false(dv_gate_wants(&g, f->e, &theirs));
	/* the stream says not quorate: nothing is wanted even though open */
	fx_quorum(f, false);
	assert_false(dv_gate_wants(&g, f->e, &mine));
	dv_gate_clear(&g);
	fx_free(f);
}

/* tests/sim seed 801: a "not quorate" and a "quorate" the stream applies
 * after a loss were both sent before it (in earlier rings): neither says
 * anything of the partition since, and the heal opens nothing. */
static void test_quorum_sent_before_loss_is_stale(void **state)
{
	struct dv_gate g;

	dv_gate_init(&g, false);
	assert_int_equal(dv_gate_connected(&g, true), DV_GATE_KEEP);
	assert_int_equal(dv_gate_quorum(&g, true, 20), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, false, 20), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 20), DV_GATE_OPEN);
	assert_int_equal(dv_gate_quorum(&g, false, 24), DV_GATE_CLOSE); /* cut off in ring 24 */
	assert_int_equal(dv_gate_stream_quorum(&g, false, 21), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 22), DV_GATE_KEEP);
	assert_int_equal(dv_gate_quorum(&g, true, 28), DV_GATE_KEEP); /* the heal */
	assert_false(dv_gate_is_open(&g));
	assert_true(dv_gate_should_ask(&g));
	/* the lowest member's word of the ring of the loss, or a later one */
	assert_int_equal(dv_gate_stream_quorum(&g, false, 24), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 28), DV_GATE_OPEN);
	/* a loss said without its ring (an older one) keeps the later mark */
	assert_int_equal(dv_gate_quorum(&g, false, 30), DV_GATE_CLOSE);
	assert_int_equal(dv_gate_quorum(&g, true, 32), DV_GATE_KEEP);
	assert_int_equal(dv_gate_quorum(&g, false, 20), DV_GATE_CLOSE);
	assert_int_equal(dv_gate_quorum(&g, true, 32), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, false, 29), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 29), DV_GATE_KEEP);
	assert_false(dv_gate_is_open(&g));
}

static void test_quorum_and_connection(void **state)
{
	struct dv_gate g;

	dv_gate_init(&g, false);
	assert_false(dv_gate_is_open(&g));
	/* in sync, but Corosync has not said quorate yet */
	assert_int_equal(dv_gate_connected(&g, true), DV_GATE_KEEP);
	assert_int_equal(dv_gate_quorum(&g, true, 0), DV_GATE_KEEP);
	/* ... nor the stream, on this connection */
	assert_false(dv_gate_is_open(&g));
	/* a QUORUM sent before the loss: not the stream's answer to it */
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, false, 0), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	assert_true(dv_gate_is_open(&g));
	assert_int_equal(dv_gate_quorum(&g, true, 0), DV_GATE_KEEP);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_KEEP);
	/* quorum lost: every address goes at once, and only once */
	assert_int_equal(dv_gate_quorum(&g, false, 0), DV_GATE_CLOSE);
	assert_int_equal(dv_gate_quorum(&g, false, 0), DV_GATE_KEEP);
	/* Corosync says quorate again (a heal) before the stream has the
	 * new view: the state from before the cut installs nothing */
	assert_int_equal(dv_gate_quorum(&g, true, 0), DV_GATE_KEEP);
	assert_false(dv_gate_is_open(&g));
	assert_true(dv_gate_should_ask(&g)); /* the stream may never show it */
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_KEEP);
	dv_gate_stream_asked(&g, true);
	assert_false(dv_gate_should_ask(&g));
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	/* an exchange: nothing new, what is installed stays */
	assert_int_equal(dv_gate_exchanging(&g, true), DV_GATE_KEEP);
	assert_false(dv_gate_is_open(&g));
	assert_int_equal(dv_gate_exchanging(&g, false), DV_GATE_OPEN);
	/* the connection is lost: close, whatever quorum said */
	assert_int_equal(dv_gate_connected(&g, false), DV_GATE_CLOSE);
	assert_false(dv_gate_is_open(&g));
	/* quorum while disconnected opens nothing */
	assert_int_equal(dv_gate_quorum(&g, false, 0), DV_GATE_KEEP);
	assert_int_equal(dv_gate_quorum(&g, true, 0), DV_GATE_KEEP);
	assert_int_equal(dv_gate_connected(&g, true), DV_GATE_KEEP);
	dv_gate_stream_asked(&g, true);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	dv_gate_clear(&g);
}

/* tests/sim seed 1530: a question sent while the gate waited, delivered
 * after a new loss, does not make what follows it "sent after the loss" (a
 * QUORUM(quorate) sent before the loss came right after it, then Corosync
 * said quorate in a merge and the stale state installed an address the
 * other side had). */
static void test_question_sent_before_loss_is_stale(void **state)
{
	struct dv_gate g;

	dv_gate_init(&g, false);
	(void)dv_gate_connected(&g, true);
	(void)dv_gate_quorum(&g, true, 0);
	assert_true(dv_gate_should_ask(&g));
	dv_gate_ask_sent(&g);
	/* cut off before the question comes back */
	assert_int_equal(dv_gate_quorum(&g, false, 0), DV_GATE_CLOSE);
	dv_gate_stream_asked(&g, true); /* sent before the loss */
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_KEEP);
	/* a merge: Corosync says quorate, the stream has not confirmed it */
	assert_int_equal(dv_gate_quorum(&g, true, 0), DV_GATE_KEEP);
	assert_false(dv_gate_is_open(&g));
	assert_true(dv_gate_should_ask(&g));
	dv_gate_ask_sent(&g);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_KEEP);
	dv_gate_stream_asked(&g, true); /* this one counts */
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	dv_gate_clear(&g);
}

/* tests/sim seed 3275: a question that comes back in a later view than it
 * was sent in is answered by nobody; the gate keeps waiting and wants to
 * ask again, or it waited in "seen" for a QUORUM that never came. */
static void test_unanswered_question_asks_again(void **state)
{
	struct dv_gate g;

	dv_gate_init(&g, false);
	(void)dv_gate_connected(&g, true);
	(void)dv_gate_quorum(&g, true, 0);
	dv_gate_ask_sent(&g);
	dv_gate_stream_asked(&g, false); /* the view changed on its way */
	assert_true(dv_gate_should_ask(&g));
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_KEEP);
	dv_gate_ask_sent(&g);
	dv_gate_stream_asked(&g, true);
	assert_false(dv_gate_should_ask(&g));
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	dv_gate_clear(&g);
}

static void test_grants_held_while_closed(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5"), b = fx_addr("10.1.1.6"), c = fx_addr("10.1.1.7");
	struct dv_gate_grant *gr;
	struct dv_gate g;

	dv_gate_init(&g, false);
	(void)dv_gate_connected(&g, true);
	(void)dv_gate_quorum(&g, true, 0);
	dv_gate_stream_asked(&g, true);
	(void)dv_gate_stream_quorum(&g, true, 0);
	/* open: passed on at once */
	assert_false(dv_gate_hold_grant(&g, f->e, 7, &a, "granted"));
	assert_int_equal(dv_gate_quorum(&g, false, 0), DV_GATE_CLOSE);
	assert_true(dv_gate_hold_grant(&g, f->e, 7, &a, "first"));
	assert_true(dv_gate_hold_grant(&g, f->e, 7, &b, "second"));
	assert_true(dv_gate_hold_grant(&g, f->e, 8, &c, "gone"));
	assert_true(dv_gate_hold_grant(&g, f->e, 9, &c, "lost"));
	assert_int_equal(g.n_grants, 4);
	dv_gate_drop_grants(&g, 8, NULL); /* client 8 went away */
	dv_gate_drop_grants(&g, 9, &c);	  /* client 9 lost c */
	assert_int_equal(g.n_grants, 2);
	/* nothing comes out while closed */
	assert_null(dv_gate_pop_grant(&g, f->e));
	/* client 7 holds a and b on self; b's hold ends before the gate opens */
	fx_claim(f, 1, 7, "10.1.1.5", DV_KIND_API);
	assert_int_equal(dv_gate_quorum(&g, true, 0), DV_GATE_KEEP);
	dv_gate_stream_asked(&g, true);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	gr = dv_gate_pop_grant(&g, f->e);
	assert_non_null(gr);
	assert_int_equal(gr->client, 7);
	assert_true(dv_addr_eq(&gr->addr, &a));
	assert_string_equal(gr->reason, "first");
	free(gr);
	/* b is not held by client 7 in the engine: dropped, not told */
	assert_null(dv_gate_pop_grant(&g, f->e));
	assert_int_equal(g.n_grants, 0);
	dv_gate_clear(&g);
	fx_free(f);
}

/* n1's client 5 waits as a standby for 10.1.1.7, held by n2. */
static struct fixture *with_standby(void)
{
	struct fixture *f = fx_new();

	fx_claim(f, 2, 1, "10.1.1.7", DV_KIND_API);
	fx_standby(f, 1, 5, "10.1.1.7", 100);
	fx_claim(f, 1, 6, "10.1.1.8", DV_KIND_API);
	return f;
}

static void test_refs_and_lost(void **state)
{
	struct fixture *f = with_standby(), *group = fx_new();
	struct dv_gate_refs refs = {0};

	assert_int_equal(dv_gate_refs_collect(f->e, &refs), 0);
	assert_int_equal(refs.n, 2); /* the hold of 6 and the standby of 5; n2's hold is not ours */
	for (size_t i = 0; i < refs.n; i++) {
		assert_true(dv_gate_ref_present(f->e, &refs.v[i]));
		assert_false(dv_gate_ref_lost(f->e, &refs.v[i]));
		/* the group's state has neither */
		assert_true(dv_gate_ref_lost(group->e, &refs.v[i]));
		/* the state was dropped */
		assert_true(dv_gate_ref_lost(NULL, &refs.v[i]));
	}
	/* a standby granted meanwhile is present as a hold */
	fx_client_gone(f, 2, 1);
	for (size_t i = 0; i < refs.n; i++)
		assert_true(dv_gate_ref_present(f->e, &refs.v[i]));
	dv_gate_refs_clear(&refs);
	fx_free(group);
	fx_free(f);
}

static void test_standby_registered_again(void **state)
{
	struct fixture *f = with_standby(), *group = fx_new();
	struct dv_gate_refs refs = {0};
	struct dv_addr a = fx_addr("10.1.1.7");
	struct dv_gate_answer ans;
	struct dv_event ev;
	bool alive[2];
	struct dv_gate g;

	dv_gate_init(&g, false);
	assert_int_equal(dv_gate_refs_collect(f->e, &refs), 0);
	for (size_t i = 0; i < refs.n; i++)
		alive[i] = true;
	/* the state is replaced by the group's, which lacks both */
	dv_gate_note_restandbys(&g, group->e, &refs, alive);
	for (size_t i = 0; i < refs.n; i++) {
		/* the standby is kept for its program; the hold is lost */
		assert_int_equal(refs.v[i].again, refs.v[i].standby);
		assert_int_equal(dv_gate_ref_lost(group->e, &refs.v[i]), !refs.v[i].standby);
	}
	/* sent once this node's configuration is published and the stream
	 * has confirmed quorum, not before */
	fx_quorum(group, false);
	assert_false(dv_gate_next_restandby(&g, group->e, &ev));
	fx_quorum(group, true);
	assert_true(dv_gate_next_restandby(&g, group->e, &ev));
	assert_int_equal(ev.type, DV_EV_STANDBY);
	assert_int_equal(ev.standby.client, 5);
	assert_int_equal(ev.standby.seq, 0);
	assert_int_equal(ev.standby.rank, 100);
	assert_int_equal(ev.standby.kind, DV_KIND_API);
	assert_true(dv_addr_eq(&ev.standby.addr, &a));
	assert_false(dv_gate_next_restandby(&g, group->e, &ev));
	/* registered: the program hears nothing; then it is an ordinary standby */
	ans = dv_gate_reply(&g, group->e, 5, 0, &a, DV_R_PENDING, false);
	assert_int_equal(ans.say, DV_GATE_SAY_NOTHING);
	ans = dv_gate_reply(&g, group->e, 5, 0, &a, DV_R_PENDING, false);
	assert_int_equal(ans.say, DV_GATE_SAY_REPLY);
	dv_gate_clear(&g);
	dv_gate_refs_clear(&refs);
	fx_free(group);
	fx_free(f);
}

static void test_restandby_answers(void **state)
{
	struct fixture *f = with_standby(), *group = fx_new();
	struct dv_gate_refs refs = {0};
	struct dv_addr a = fx_addr("10.1.1.7");
	bool alive[2] = {true, true};
	struct dv_event ev;
	struct dv_gate g;

	dv_gate_init(&g, false);
	assert_int_equal(dv_gate_refs_collect(f->e, &refs), 0);
	/* granted at once when it is registered again: GRANTED news */
	dv_gate_note_restandbys(&g, group->e, &refs, alive);
	/* not sent yet: a reply is not taken for it */
	assert_int_equal(dv_gate_reply(&g, group->e, 5, 0, &a, DV_R_OK, true).say, DV_GATE_SAY_REPLY);
	assert_true(dv_gate_next_restandby(&g, group->e, &ev));
	assert_int_equal(dv_gate_reply(&g, group->e, 5, 0, &a, DV_R_OK, true).say, DV_GATE_SAY_GRANTED);
	/* refused: LOST news */
	for (size_t i = 0; i < refs.n; i++)
		refs.v[i].again = false;
	dv_gate_note_restandbys(&g, group->e, &refs, alive);
	assert_true(dv_gate_next_restandby(&g, group->e, &ev));
	assert_int_equal(dv_gate_reply(&g, group->e, 5, 0, &a, DV_R_NOQUORUM, false).say, DV_GATE_SAY_LOST);
	/* a client that is gone is not registered again */
	for (size_t i = 0; i < refs.n; i++)
		refs.v[i].again = false;
	alive[0] = alive[1] = false;
	dv_gate_note_restandbys(&g, group->e, &refs, alive);
	assert_false(dv_gate_next_restandby(&g, group->e, &ev));
	/* dropped with its client, and with the connection */
	alive[0] = alive[1] = true;
	dv_gate_note_restandbys(&g, group->e, &refs, alive);
	dv_gate_drop_restandbys(&g, 5);
	assert_false(dv_gate_next_restandby(&g, group->e, &ev));
	for (size_t i = 0; i < refs.n; i++)
		refs.v[i].again = false;
	dv_gate_note_restandbys(&g, group->e, &refs, alive);
	assert_int_equal(dv_gate_connected(&g, false), DV_GATE_CLOSE);
	assert_false(dv_gate_next_restandby(&g, group->e, &ev));
	/* a standby the group's state still has is not sent again */
	for (size_t i = 0; i < refs.n; i++)
		refs.v[i].again = false;
	dv_gate_note_restandbys(&g, f->e, &refs, alive);
	assert_false(dv_gate_next_restandby(&g, group->e, &ev));
	dv_gate_clear(&g);
	dv_gate_refs_clear(&refs);
	fx_free(group);
	fx_free(f);
}

static void test_reply_kernel_refused(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_gate_answer ans;
	struct dv_gate g;

	dv_gate_init(&g, true);
	fx_claim(f, 1, 7, "10.1.1.5", DV_KIND_API);
	ans = dv_gate_reply(&g, f->e, 7, 1, &a, DV_R_OK, false);
	assert_int_equal(ans.say, DV_GATE_SAY_REPLY);
	assert_true(ans.refused);
	ans = dv_gate_reply(&g, f->e, 7, 1, &a, DV_R_OK, true);
	assert_int_equal(ans.say, DV_GATE_SAY_REPLY);
	assert_false(ans.refused);
	/* refusals and node requests pass as they are */
	assert_false(dv_gate_reply(&g, f->e, 7, 1, &a, DV_R_INUSE, false).refused);
	assert_false(dv_gate_reply(&g, f->e, 7, 1, NULL, DV_R_OK, false).refused);
	/* closed: the address is not wanted here now, so not refused */
	(void)dv_gate_connected(&g, false);
	assert_false(dv_gate_reply(&g, f->e, 7, 1, &a, DV_R_OK, false).refused);
	dv_gate_clear(&g);
	fx_free(f);
}

/* Requests in flight when the cluster connection goes are handed back to
 * be answered; answered ones and those of a client gone are not. */
static void test_requests_in_flight(void **state)
{
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_gate_request *q;
	struct dv_gate g;
	bool seen[4] = {false};

	dv_gate_init(&g, false);
	assert_int_equal(dv_gate_sent(&g, 7, 1, &a), 0);
	assert_int_equal(dv_gate_sent(&g, 7, 2, &a), 0);
	assert_int_equal(dv_gate_sent(&g, 8, 1, NULL), 0); /* a node request */
	assert_int_equal(dv_gate_sent(&g, 9, 3, &a), 0);
	assert_int_equal(dv_gate_sent(&g, 9, 3, &a), 0); /* the same one: noted once */
	dv_gate_answered(&g, 7, 1);
	dv_gate_answered(&g, 7, 99); /* never sent: nothing */
	dv_gate_drop_requests(&g, 9);
	assert_int_equal(dv_gate_connected(&g, false), DV_GATE_CLOSE);
	while ((q = dv_gate_pop_unanswered(&g))) {
		if (q->client == 7) {
			assert_int_equal(q->seq, 2);
			assert_true(dv_addr_eq(&q->addr, &a));
			assert_false(seen[0]);
			seen[0] = true;
		} else {
			assert_int_equal(q->client, 8);
			assert_int_equal(q->addr.family, 0);
			assert_false(seen[1]);
			seen[1] = true;
		}
		free(q);
	}
	assert_true(seen[0] && seen[1]);
	/* The cap: beyond it a request is not noted. */
	for (uint32_t i = 1; i <= DV_GATE_MAX_REQUESTS; i++)
		assert_int_equal(dv_gate_sent(&g, 1, i, &a), 0);
	assert_int_equal(dv_gate_sent(&g, 2, 1, &a), -ENOSPC);
	dv_gate_clear(&g); /* frees what is left */
}

/* An address handed over to this node (the previous owner, a member, has
 * not taken it off yet): the grant and the activation's OK reply wait for
 * it; an operator's reply about it does not. */
static void test_handover_holds_answers(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_event ev = {.type = DV_EV_ADDR_STATE, .node = 2};
	struct dv_gate_grant *gr;
	struct dv_gate g;

	dv_gate_init(&g, false);
	(void)dv_gate_connected(&g, true);
	(void)dv_gate_quorum(&g, true, 0);
	dv_gate_stream_asked(&g, true);
	(void)dv_gate_stream_quorum(&g, true, 0);
	fx_claim(f, 2, 3, "10.1.1.5", DV_KIND_API); /* n2 has it */
	assert_false(dv_gate_handing_over(f->e, &a));
	fx_claim(f, 1, 7, "10.1.1.5", DV_KIND_API); /* moves to n1 (nondisruptive) */
	assert_true(dv_gate_handing_over(f->e, &a));
	assert_false(dv_gate_wants(&g, f->e, &a));
	assert_true(dv_gate_hold_reply(&g, f->e, 7, 11, &a, "activated"));
	assert_false(dv_gate_hold_reply(&g, f->e, 9, 12, &a, "deactivated")); /* not a holder */
	assert_null(dv_gate_pop_grant(&g, f->e));
	/* n2 reports it removed: n1 puts it on, the reply goes */
	ev.addr_state.addr = a;
	ev.addr_state.flags = DV_AS_REMOVED;
	fx_apply(f, &ev);
	assert_false(dv_gate_handing_over(f->e, &a));
	assert_true(dv_gate_wants(&g, f->e, &a));
	gr = dv_gate_pop_grant(&g, f->e);
	assert_non_null(gr);
	assert_true(gr->reply);
	assert_int_equal(gr->client, 7);
	assert_int_equal(gr->seq, 11);
	free(gr);
	assert_null(dv_gate_pop_grant(&g, f->e));
	dv_gate_clear(&g);
	fx_free(f);
}

static void test_ring_lease(void **state)
{
	struct dv_gate g;

	dv_gate_init(&g, false);
	assert_int_equal(dv_gate_connected(&g, true), DV_GATE_KEEP);
	assert_int_equal(dv_gate_quorum(&g, true, 0), DV_GATE_KEEP);
	dv_gate_stream_asked(&g, true);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	/* the lease runs out: every address goes, once */
	assert_int_equal(dv_gate_lease(&g, false), DV_GATE_CLOSE);
	assert_int_equal(dv_gate_lease(&g, false), DV_GATE_KEEP);
	assert_false(dv_gate_is_open(&g));
	/* the stream's quorum while lapsed opens nothing */
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_KEEP);
	/* held again: the stream must confirm the quorum first */
	assert_int_equal(dv_gate_lease(&g, true), DV_GATE_KEEP);
	assert_false(dv_gate_is_open(&g));
	assert_true(dv_gate_should_ask(&g));
	dv_gate_stream_asked(&g, true);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	/* during an exchange, a lapse still removes what is installed */
	assert_int_equal(dv_gate_exchanging(&g, true), DV_GATE_KEEP);
	assert_int_equal(dv_gate_lease(&g, false), DV_GATE_CLOSE);
	assert_int_equal(dv_gate_exchanging(&g, false), DV_GATE_KEEP);
	assert_int_equal(dv_gate_lease(&g, true), DV_GATE_KEEP);
	dv_gate_stream_asked(&g, true);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	/* a lapse after quorum was lost: the addresses went already */
	assert_int_equal(dv_gate_quorum(&g, false, 0), DV_GATE_CLOSE);
	assert_int_equal(dv_gate_lease(&g, false), DV_GATE_KEEP);
	/* a lost connection forgets the lapse (a new one starts afresh) */
	assert_int_equal(dv_gate_connected(&g, false), DV_GATE_CLOSE);
	assert_false(g.lapsed);
	dv_gate_clear(&g);
}

static void test_takeover_wait(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_gate g;

	dv_gate_init(&g, false);
	(void)dv_gate_connected(&g, true);
	(void)dv_gate_quorum(&g, true, 0);
	dv_gate_stream_asked(&g, true);
	assert_int_equal(dv_gate_stream_quorum(&g, true, 0), DV_GATE_OPEN);
	/* a member vanished: nothing new goes up, a grant is held back */
	assert_int_equal(dv_gate_takeover_wait(&g, true), DV_GATE_KEEP);
	fx_claim(f, 1, 7, "10.1.1.5", DV_KIND_API);
	assert_false(dv_gate_wants(&g, f->e, &a));
	assert_true(dv_gate_hold_grant(&g, f->e, 7, &a, "granted"));
	assert_null(dv_gate_pop_grant(&g, f->e));
	/* its lease surely ran out: up it goes, the grant is passed on */
	assert_int_equal(dv_gate_takeover_wait(&g, false), DV_GATE_OPEN);
	assert_true(dv_gate_wants(&g, f->e, &a));
	dv_gate_clear(&g);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_solo_is_open),
		cmocka_unit_test(test_quorum_and_connection),
		cmocka_unit_test(test_quorum_sent_before_loss_is_stale),
		cmocka_unit_test(test_question_sent_before_loss_is_stale),
		cmocka_unit_test(test_unanswered_question_asks_again),
		cmocka_unit_test(test_grants_held_while_closed),
		cmocka_unit_test(test_handover_holds_answers),
		cmocka_unit_test(test_refs_and_lost),
		cmocka_unit_test(test_standby_registered_again),
		cmocka_unit_test(test_restandby_answers),
		cmocka_unit_test(test_reply_kernel_refused),
		cmocka_unit_test(test_requests_in_flight),
		cmocka_unit_test(test_ring_lease),
		cmocka_unit_test(test_takeover_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
