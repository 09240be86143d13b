/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdvipa against a fake dvipad:
 *
 *   test thread                      fake thread
 *   dvipa_open(path) ---- connect --> accept
 *   dvipa_activate() ---- ACTIVATE -> script: EVENTs, stale RESULTs, RESULT
 *   dvipa_fd()/dispatch <-- EVENT --
 *
 * Each test gives the fake a script; the fake speaks the protocol through
 * proto.h, the library under test through <dvipa.h> only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dvipa.h"
#include "ctlsock.h"
#include "proto.h"

struct fake;
typedef void (*script_fn)(struct fake *f);

struct fake {
	char dir[64];
	char path[108];
	int lfd, cfd;
	pthread_t th;
	script_fn script;
	int handled; /* requests seen */
};

/* ---- the fake daemon's side ---- */

static int fake_recv(struct fake *f, struct dv_request *req)
{
	static _Thread_local uint8_t buf[DV_MSG_MAX];
	struct dv_msg m;
	const char *why;
	ssize_t n;

	n = recv(f->cfd, buf, sizeof(buf), 0);
	if (n <= 0)
		return -1;
	if (dv_msg_parse(buf, (size_t)n, &m) < 0 || dv_request_decode(&m, req, &why) < 0)
		return -1;
	f->handled++;
	return 0;
}

static void fake_send(struct fake *f, struct dv_msgb *b)
{
	if (dv_msgb_finish(b) == 0)
		(void)!send(f->cfd, b->buf, b->len, MSG_NOSIGNAL);
}

static void fake_result(struct fake *f, uint32_t seq, uint32_t result, const char *reason)
{
	static _Thread_local struct dv_msgb b;

	dv_msgb_init(&b, DV_MSG_RESULT, seq);
	dv_msgb_put_u32(&b, DV_A_RESULT, result);
	if (reason)
		dv_msgb_put_str(&b, DV_A_REASON, reason);
	fake_send(f, &b);
}

static void fake_event(struct fake *f, uint32_t ev, const char *addr, const char *reason)
{
	static _Thread_local struct dv_msgb b;
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(addr, &a), 0);
	dv_msgb_init(&b, DV_MSG_EVENT, 0);
	dv_msgb_put_u32(&b, DV_A_EVENT, ev);
	dv_msgb_put_addr(&b, &a);
	dv_msgb_put_str(&b, DV_A_REASON, reason);
	fake_send(f, &b);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	f->cfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (f->cfd >= 0 && f->script)
		f->script(f);
	return NULL;
}

static struct fake *fake_start(script_fn script)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_libdvipa.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	strcpy(sa.sun_path, f->path);
	f->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	f->cfd = -1;
	f->script = script;
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

/* Wait for the script to end, then hang up. Returns the requests seen. */
static int fake_stop(struct fake *f)
{
	int handled;

	pthread_join(f->th, NULL);
	handled = f->handled;
	if (f->cfd >= 0)
		close(f->cfd);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return handled;
}

/* ---- the application's side ---- */

struct seen {
	int n;
	int type[8];
	char addr[8][64];
	char reason[8][DV_REASON_MAX];
	dvipa_t *release_from_cb; /* call back into the library */
	int cb_release_result;
};

static void on_event(dvipa_t *h, const struct dvipa_event *ev, void *userdata)
{
	struct seen *s = userdata;

	if (s->n < 8) {
		s->type[s->n] = ev->type;
		snprintf(s->addr[s->n], sizeof(s->addr[0]), "%s", ev->addr);
		snprintf(s->reason[s->n], sizeof(s->reason[0]), "%s", ev->reason);
	}
	s->n++;
	if (s->release_from_cb)
		s->cb_release_result = dvipa_release(s->release_from_cb, ev->addr);
}

static bool fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, timeout_ms) == 1;
}

static dvipa_t *open_fake(struct fake *f)
{
	dvipa_t *h = NULL;

	assert_int_equal(dvipa_open(&h, f->path), 0);
	assert_non_null(h);
	return h;
}

/* The next request is an ACTIVATE of addr, hold kind. */
static void fake_expect_activate(struct fake *f, uint32_t kind, const char *addr, struct dv_request *req)
{
	char a[DV_ADDR_STRLEN];

	assert_int_equal(fake_recv(f, req), 0);
	assert_int_equal(req->type, DV_MSG_ACTIVATE);
	assert_int_equal(req->kind, kind);
	assert_string_equal(dv_addr_fmt(&req->addr, a), addr);
}

/* ACTIVATE: an unrelated EVENT and a stale RESULT arrive before ours. */
static void script_activate(struct fake *f)
{
	struct dv_request req;

	fake_expect_activate(f, 1, "10.1.1.5", &req);
	usleep(50 * 1000); /* the client is in poll() now */
	fake_event(f, DVIPA_EVENT_LOST, "10.1.1.77", "moved to n2");
	fake_result(f, req.seq + 1000, DV_R_HELD, "not yours");
	fake_result(f, req.seq, DV_R_OK, "activated on n1");
}

static void test_activate(void **state)
{
	struct fake *f = fake_start(script_activate);
	dvipa_t *h = open_fake(f);
	struct seen s = {0};

	assert_false(fd_readable(dvipa_fd(h), 0));
	assert_int_equal(dvipa_activate(h, "10.1.1.5"), 0);
	assert_string_equal(dvipa_reason(h), "activated on n1");
	/* the event that came during the request waits for dispatch */
	assert_true(fd_readable(dvipa_fd(h), 0));
	assert_int_equal(dvipa_dispatch(h, on_event, &s), 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.type[0], DVIPA_EVENT_LOST);
	assert_string_equal(s.addr[0], "10.1.1.77");
	assert_string_equal(s.reason[0], "moved to n2");
	assert_false(fd_readable(dvipa_fd(h), 0));
	assert_int_equal(dvipa_dispatch(h, on_event, &s), 0);
	fake_stop(f);
	dvipa_close(h);
}

static void script_standby(struct fake *f)
{
	struct dv_request req;

	assert_int_equal(fake_recv(f, &req), 0);
	assert_int_equal(req.type, DV_MSG_STANDBY);
	assert_int_equal(req.rank, 254);
	assert_int_equal(req.kind, 1);
	fake_result(f, req.seq, DV_R_PENDING, "standby rank 254");
	usleep(100 * 1000);
	fake_event(f, DVIPA_EVENT_GRANTED, "fd00:1::5", "primary ended");
	fake_event(f, 77, "fd00:1::5", "an event type from the future");
	fake_event(f, DVIPA_EVENT_LOST, "fd00:1::5", "quorum lost");
	/* then a RELEASE from the callback */
	assert_int_equal(fake_recv(f, &req), 0);
	assert_int_equal(req.type, DV_MSG_RELEASE);
	fake_result(f, req.seq, DV_R_NOTHELD, "not held");
	assert_int_equal(fake_recv(f, &req), 0);
	fake_result(f, req.seq, DV_R_NOTHELD, "not held");
}

static void test_standby_granted(void **state)
{
	struct fake *f = fake_start(script_standby);
	dvipa_t *h = open_fake(f);
	struct seen s = {0};
	int n = 0;

	assert_int_equal(dvipa_standby(h, "fd00:1::5", 254), DVIPA_PENDING);
	assert_string_equal(dvipa_reason(h), "standby rank 254");
	while (n < 2) {
		int r;

		assert_true(fd_readable(dvipa_fd(h), 5000));
		s.release_from_cb = h;
		r = dvipa_dispatch(h, on_event, &s);
		assert_true(r >= 0);
		n += r;
	}
	assert_int_equal(s.n, 2); /* the unknown event type is skipped */
	assert_int_equal(s.type[0], DVIPA_EVENT_GRANTED);
	assert_string_equal(s.addr[0], "fd00:1::5");
	assert_string_equal(s.reason[0], "primary ended");
	assert_int_equal(s.type[1], DVIPA_EVENT_LOST);
	assert_int_equal(s.cb_release_result, -DVIPA_E_NOTHELD);
	fake_stop(f);
	dvipa_close(h);
}

static void script_errors(struct fake *f)
{
	static const uint32_t results[] = {DV_R_NORANGE, DV_R_PERM, DV_R_INUSE, DV_R_INTERNAL, 99, 100000};
	struct dv_request req;

	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		if (fake_recv(f, &req) < 0)
			return;
		fake_result(f, req.seq, results[i], i == 0 ? "10.9.9.9 is in no range" : NULL);
	}
}

static void test_error_mapping(void **state)
{
	struct fake *f = fake_start(script_errors);
	dvipa_t *h = open_fake(f);

	assert_int_equal(dvipa_activate(h, "10.9.9.9"), -DVIPA_E_NORANGE);
	assert_string_equal(dvipa_reason(h), "10.9.9.9 is in no range");
	assert_int_equal(dvipa_activate(h, "10.9.9.9"), -DVIPA_E_PERM);
	assert_string_equal(dvipa_reason(h), ""); /* no REASON: empty */
	assert_int_equal(dvipa_release(h, "10.9.9.9"), -DVIPA_E_INUSE);
	assert_int_equal(dvipa_activate(h, "10.9.9.9"), -DVIPA_E_INTERNAL);
	assert_int_equal(dvipa_activate(h, "10.9.9.9"), -99);
	assert_int_equal(dvipa_activate(h, "10.9.9.9"), -DVIPA_E_INTERNAL);
	fake_stop(f);
	dvipa_close(h);
}

static void script_count(struct fake *f)
{
	struct dv_request req;

	/* Anything that arrives is counted; the test closes the handle. */
	while (fake_recv(f, &req) == 0)
		fake_result(f, req.seq, DV_R_OK, NULL);
}

static void test_bad_arguments(void **state)
{
	struct fake *f = fake_start(script_count);
	dvipa_t *h = open_fake(f);

	assert_int_equal(dvipa_activate(h, "10.1.1"), -DVIPA_E_INVAL);
	assert_non_null(strstr(dvipa_reason(h), "10.1.1"));
	assert_int_equal(dvipa_activate(h, NULL), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_release(h, "host.example"), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_standby(h, "10.1.1.5", 0), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_standby(h, "10.1.1.5", 255), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_activate(NULL, "10.1.1.5"), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_dispatch(NULL, on_event, NULL), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_fd(NULL), -DVIPA_E_INVAL);
	assert_string_equal(dvipa_reason(NULL), "");
	/* one good request so the fake has something to count */
	assert_int_equal(dvipa_activate(h, "::ffff:10.1.1.5"), 0);
	dvipa_close(h);
	/* none of the bad ones reached the daemon */
	assert_int_equal(fake_stop(f), 1);
}

static void script_hangup(struct fake *f)
{
	struct dv_request req;

	assert_int_equal(fake_recv(f, &req), 0);
	close(f->cfd); /* dvipad dies mid-request */
	f->cfd = -1;
}

static void test_daemon_gone(void **state)
{
	struct fake *f = fake_start(script_hangup);
	dvipa_t *h = open_fake(f);

	assert_int_equal(dvipa_activate(h, "10.1.1.5"), -DVIPA_E_UNREACH);
	assert_true(fd_readable(dvipa_fd(h), 0));
	assert_int_equal(dvipa_dispatch(h, on_event, NULL), -DVIPA_E_UNREACH);
	assert_int_equal(dvipa_activate(h, "10.1.1.5"), -DVIPA_E_UNREACH);
	fake_stop(f);
	dvipa_close(h);
}

static void script_hangup_idle(struct fake *f)
{
	fake_event(f, DVIPA_EVENT_LOST, "10.1.1.5", "dvipad stopping");
	close(f->cfd);
	f->cfd = -1;
}

static void test_daemon_gone_idle(void **state)
{
	struct fake *f = fake_start(script_hangup_idle);
	dvipa_t *h = open_fake(f);
	struct seen s = {0};

	fake_stop(f);
	assert_true(fd_readable(dvipa_fd(h), 5000));
	/* the last event is still delivered, then the loss is reported */
	assert_int_equal(dvipa_dispatch(h, on_event, &s), 1);
	assert_int_equal(s.type[0], DVIPA_EVENT_LOST);
	assert_true(fd_readable(dvipa_fd(h), 0));
	assert_int_equal(dvipa_dispatch(h, on_event, &s), -DVIPA_E_UNREACH);
	dvipa_close(h);
}

static void script_garbage(struct fake *f)
{
	struct dv_request req;
	uint8_t junk[32] = "this is not a dvipa message....";

	assert_int_equal(fake_recv(f, &req), 0);
	(void)!send(f->cfd, junk, sizeof(junk), 0);
	/* wait for the client to give up on us */
	recv(f->cfd, junk, sizeof(junk), 0);
}

static void test_malformed_reply(void **state)
{
	struct fake *f = fake_start(script_garbage);
	dvipa_t *h = open_fake(f);

	assert_int_equal(dvipa_activate(h, "10.1.1.5"), -DVIPA_E_UNREACH);
	assert_non_null(strstr(dvipa_reason(h), "malformed"));
	dvipa_close(h);
	fake_stop(f);
}

/* More events during one request than the queue holds. */
static void script_flood(struct fake *f)
{
	struct dv_request req;

	assert_int_equal(fake_recv(f, &req), 0);
	for (int i = 0; i < 1100; i++)
		fake_event(f, DVIPA_EVENT_GRANTED, "10.1.1.5", "again");
	fake_result(f, req.seq, DV_R_OK, NULL);
}

static void test_queue_cap(void **state)
{
	struct fake *f = fake_start(script_flood);
	dvipa_t *h = open_fake(f);
	struct seen s = {0};
	int r, total = 0;

	assert_int_equal(dvipa_activate(h, "10.1.1.5"), -DVIPA_E_UNREACH);
	assert_non_null(strstr(dvipa_reason(h), "undispatched"));
	/* the 1024 queued events are still delivered, then the loss */
	while ((r = dvipa_dispatch(h, on_event, &s)) > 0)
		total += r;
	assert_int_equal(total, 1024);
	assert_int_equal(r, -DVIPA_E_UNREACH);
	fake_stop(f);
	dvipa_close(h);
}

/* Events outside a request are read by dispatch, in order. */
static void script_events(struct fake *f)
{
	fake_event(f, DVIPA_EVENT_GRANTED, "10.1.1.1", "one");
	fake_event(f, DVIPA_EVENT_LOST, "10.1.1.2", "two");
	fake_event(f, DVIPA_EVENT_GRANTED, "10.1.1.3", "three");
}

static void test_dispatch_reads(void **state)
{
	struct fake *f = fake_start(script_events);
	dvipa_t *h = open_fake(f);
	struct seen s = {0};

	fake_stop(f); /* all sent, then closed */
	assert_true(fd_readable(dvipa_fd(h), 5000));
	assert_int_equal(dvipa_dispatch(h, on_event, &s), 3);
	assert_string_equal(s.reason[0], "one");
	assert_string_equal(s.reason[1], "two");
	assert_string_equal(s.reason[2], "three");
	assert_int_equal(dvipa_dispatch(h, on_event, &s), -DVIPA_E_UNREACH);
	dvipa_close(h);
}

static void test_open(void **state)
{
	struct fake *f = fake_start(NULL);
	dvipa_t *h = NULL;
	char longpath[200];
	int fl;

	assert_int_equal(dvipa_open(&h, "/nonexistent/dvipad.sock"), -DVIPA_E_UNREACH);
	assert_int_equal(errno, ENOENT);
	assert_null(h);

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(dvipa_open(&h, longpath), -DVIPA_E_INVAL);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(dvipa_open(NULL, f->path), -DVIPA_E_INVAL);

	/* $DVIPA_SOCKET when no path is given */
	setenv("DVIPA_SOCKET", f->path, 1);
	assert_int_equal(dvipa_open(&h, NULL), 0);
	unsetenv("DVIPA_SOCKET");
	fl = fcntl(dvipa_fd(h), F_GETFD);
	assert_true(fl >= 0 && (fl & FD_CLOEXEC));
	dvipa_close(h);
	dvipa_close(NULL);
	fake_stop(f);
}

static void test_strerror(void **state)
{
	for (int i = 0; i <= DVIPA_E_LEFT; i++) {
		assert_string_not_equal(dvipa_strerror(i), "Unknown error");
		assert_string_equal(dvipa_strerror(i), dvipa_strerror(-i));
	}
	assert_string_equal(dvipa_strerror(14), "Unknown error");
	assert_string_equal(dvipa_strerror(-1000), "Unknown error");
	assert_string_equal(dvipa_strerror(INT32_MIN), "Unknown error");
}

/* The reason is per thread: another thread's request does not change it. */
static void script_two(struct fake *f)
{
	struct dv_request req;

	assert_int_equal(fake_recv(f, &req), 0);
	fake_result(f, req.seq, DV_R_HELD, "first");
	assert_int_equal(fake_recv(f, &req), 0);
	fake_result(f, req.seq, DV_R_OK, "second");
}

static void *other_thread(void *arg)
{
	dvipa_t *h = arg;
	int r = dvipa_activate(h, "10.1.1.6");

	assert_int_equal(r, 0);
	assert_string_equal(dvipa_reason(h), "second");
	return NULL;
}

static void test_reason_per_thread(void **state)
{
	struct fake *f = fake_start(script_two);
	dvipa_t *h = open_fake(f);
	pthread_t th;

	assert_int_equal(dvipa_activate(h, "10.1.1.5"), -DVIPA_E_HELD);
	assert_int_equal(pthread_create(&th, NULL, other_thread, h), 0);
	pthread_join(th, NULL);
	assert_string_equal(dvipa_reason(h), "first");
	fake_stop(f);
	dvipa_close(h);
}

/* One thread polls dvipa_fd() and dispatches while another makes a
 * request: the events read by the requester reach the dispatcher through
 * the queue, and the dispatcher never steals the requester's RESULT. */
static void script_concurrent(struct fake *f)
{
	struct dv_request req;

	for (int round = 0; round < 20; round++) {
		assert_int_equal(fake_recv(f, &req), 0);
		fake_event(f, DVIPA_EVENT_GRANTED, "10.1.1.5", "during");
		usleep(2000);
		fake_result(f, req.seq, DV_R_OK, NULL);
		fake_event(f, DVIPA_EVENT_LOST, "10.1.1.5", "after");
	}
}

struct dispatcher {
	dvipa_t *h;
	struct seen s;
};

static void *dispatch_thread(void *arg)
{
	struct dispatcher *d = arg;

	while (d->s.n < 40) {
		if (!fd_readable(dvipa_fd(d->h), 5000))
			break;
		if (dvipa_dispatch(d->h, on_event, &d->s) < 0)
			break;
	}
	return NULL;
}

static void test_concurrent_dispatch(void **state)
{
	struct fake *f = fake_start(script_concurrent);
	struct dispatcher d = {.h = open_fake(f)};
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, dispatch_thread, &d), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(dvipa_activate(d.h, "10.1.1.5"), 0);
	pthread_join(th, NULL);
	assert_int_equal(d.s.n, 40);
	assert_int_equal(fake_stop(f), 20);
	dvipa_close(d.h);
}

/* SOURCE_PORTS answers: any port, a slice of 40000-40063, a refusal. */
static void script_source(struct fake *f, uint32_t result, uint32_t range)
{
	static _Thread_local struct dv_msgb b;
	struct dv_request req;

	if (fake_recv(f, &req) < 0)
		return;
	assert_int_equal(req.type, DV_MSG_SOURCE_PORTS);
	dv_msgb_init(&b, DV_MSG_RESULT, req.seq);
	dv_msgb_put_u32(&b, DV_A_RESULT, result);
	dv_msgb_put_str(&b, DV_A_REASON, "the fake's answer");
	if (range)
		dv_msgb_put_u32(&b, DV_A_PORT_RANGE, range);
	fake_send(f, &b);
}

static void script_source_any(struct fake *f)
{
	script_source(f, DV_R_OK, 0);
}

static void script_source_slice(struct fake *f)
{
	script_source(f, DV_R_OK, 40000u << 16 | 40063);
}

static void script_source_refused(struct fake *f)
{
	script_source(f, DV_R_NOTHELD, 0);
}

/* dvipa_bind_source on fd with a fake dvipad running script: its result. */
static int bind_source_with(script_fn script, int fd, const char *addr)
{
	struct fake *f = fake_start(script);
	int r;

	assert_int_equal(setenv("DVIPA_SOCKET", f->path, 1), 0);
	r = dvipa_bind_source(fd, addr);
	assert_int_equal(fake_stop(f), 1);
	return r;
}

/* dvipa_bind_source: the source of outbound traffic, before connect(). */
static void test_bind_source(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET}, me;
	struct sockaddr_in6 s6;
	socklen_t len = sizeof(sa);
	uint32_t range = 0;
	int lfd, fd;

	/* A listener on loopback to connect to. */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind_source_with(script_source_any, fd, "127.0.0.1"), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	/* SYSPLEXPORTS: the node's slice of the ports. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind_source_with(script_source_slice, fd, "127.0.0.1"), 0);
	len = sizeof(range);
	assert_int_equal(getsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, &len), 0);
	assert_int_equal(range, 40063u << 16 | 40000);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	len = sizeof(me);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &len), 0);
	assert_in_range(ntohs(me.sin_port), 40000, 40063);
	close(fd);

	/* dvipad refuses, or cannot be asked: no port that may be another
	 * node's. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind_source_with(script_source_refused, fd, "127.0.0.1"), -DVIPA_E_NOTHELD);
	assert_int_equal(setenv("DVIPA_SOCKET", "/nonexistent/dvipad.sock", 1), 0);
	assert_int_equal(dvipa_bind_source(fd, "127.0.0.1"), -DVIPA_E_UNREACH);
	close(fd);

	/* An address this host does not have: dvipad is not asked. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(dvipa_bind_source(fd, "192.0.2.77"), -DVIPA_E_NOTHELD);
	assert_int_equal(dvipa_bind_source(fd, "not-an-address"), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_bind_source(fd, "::1"), -DVIPA_E_INVAL); /* IPv6 on an IPv4 socket */
	close(fd);
	assert_int_equal(dvipa_bind_source(-1, "127.0.0.1"), -DVIPA_E_INVAL);

	/* IPv4 on a dual-stack IPv6 socket: v4-mapped. */
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind_source_with(script_source_any, fd, "127.0.0.1"), 0);
	len = sizeof(s6);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&s6, &len), 0);
	assert_true(IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr));
	close(fd);
	close(lfd);
	unsetenv("DVIPA_SOCKET");
}

/* ---- dvipa_listen ---- */

/* A TCP port of the host that nothing uses now. */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Whether a socket without SO_REUSEPORT can listen on 0.0.0.0:port:
 * not while a socket of a failed dvipa_listen() was left bound. */
static bool port_free(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0;

	close(fd);
	return ok;
}

static void script_listen_refused(struct fake *f)
{
	struct dv_request req;

	fake_expect_activate(f, 3, "10.1.1.5", &req); /* a socket hold, as the shim's */
	fake_result(f, req.seq, DV_R_HELD, "10.1.1.5 is held by n2 (UNIQUE)");
}

/* Failures leave nothing open; the system test has the successes. */
static void test_listen_failures(void **state)
{
	uint16_t port = free_port();
	char vipa[32], any[32];
	const char *set[] = {vipa, any}, *backwards[] = {any, vipa};
	int fds[2] = {-1, -1}, one = 1, other;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct fake *f;

	snprintf(vipa, sizeof(vipa), "10.1.1.5:%u", port);
	snprintf(any, sizeof(any), "ANYADDR:%u", port);

	/* Bad sets: dvipad is not asked (there is none to ask). */
	assert_int_equal(setenv("DVIPA_SOCKET", "/nonexistent/dvipad.sock", 1), 0);
	assert_int_equal(dvipa_listen(set, 0, 16, fds), -DVIPA_E_INVAL);
	assert_int_equal(dvipa_listen(set, DVIPA_LISTEN_MAX + 1, 16, fds), -DVIPA_E_INVAL);
	assert_non_null(strstr(dvipa_reason(NULL), "1 to 8 pairs"));
	assert_int_equal(dvipa_listen(backwards, 2, 16, fds), -DVIPA_E_INVAL);
	assert_non_null(strstr(dvipa_reason(NULL), "pair 1 'ANYADDR:"));
	assert_non_null(strstr(dvipa_reason(NULL), "the first pair is the VIPA"));
	assert_int_equal(fds[0], -1);

	/* No dvipad: the wildcard bound before the claim is closed again. */
	assert_int_equal(dvipa_listen(set, 2, 16, fds), -DVIPA_E_UNREACH);
	assert_non_null(strstr(dvipa_reason(NULL), "cannot reach dvipad at /nonexistent/dvipad.sock"));
	assert_true(port_free(port));

	/* Another program's listener with SO_REUSEPORT on a pair: a socket
	 * with it would share that listener's connections. Refused before
	 * dvipad is asked (else this would be DVIPA_E_UNREACH). */
	other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	assert_int_equal(bind(other, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(other, 1), 0);
	assert_int_equal(dvipa_listen(set, 2, 16, fds), -DVIPA_E_HELD);
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(dvipa_reason(NULL), "listens there already"));
	close(other);

	/* dvipad refuses the VIPA: its reason, nothing left bound. */
	f = fake_start(script_listen_refused);
	assert_int_equal(setenv("DVIPA_SOCKET", f->path, 1), 0);
	assert_int_equal(dvipa_listen(set, 2, 16, fds), -DVIPA_E_HELD);
	assert_int_equal(fake_stop(f), 1);
	assert_non_null(strstr(dvipa_reason(NULL), "held by n2"));
	assert_int_equal(fds[0], -1);
	assert_int_equal(fds[1], -1);
	assert_true(port_free(port));
	unsetenv("DVIPA_SOCKET");
}

int main(void)
{
	/* clang-format off: one test per line */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_activate),
		cmocka_unit_test(test_standby_granted),
		cmocka_unit_test(test_error_mapping),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_daemon_gone),
		cmocka_unit_test(test_daemon_gone_idle),
		cmocka_unit_test(test_malformed_reply),
		cmocka_unit_test(test_queue_cap),
		cmocka_unit_test(test_dispatch_reads),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_reason_per_thread),
		cmocka_unit_test(test_concurrent_dispatch),
		cmocka_unit_test(test_bind_source),
		cmocka_unit_test(test_listen_failures),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, NULL, NULL);
}
