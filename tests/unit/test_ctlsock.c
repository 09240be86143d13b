/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Connecting to the control socket with a deadline (ctlsock.c): a listener
 * whose queue is full, as when dvipad is stopped, must not keep a client
 * past its deadline, and room that appears in time must be taken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctlsock.h"

struct fixture {
	char dir[64];
	struct sockaddr_un sa;
	int listener;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_ctlsock.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->sa.sun_family = AF_UNIX;
	snprintf(f->sa.sun_path, sizeof(f->sa.sun_path), "%s/sock", f->dir);
	f->listener = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->listener >= 0)
		close(f->listener);
	unlink(f->sa.sun_path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A listener that queues one connection at most (backlog 0 admits one). */
static void listen_on(struct fixture *f)
{
	f->listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(f->listener >= 0);
	assert_int_equal(bind(f->listener, (struct sockaddr *)&f->sa, sizeof(f->sa)), 0);
	assert_int_equal(listen(f->listener, 0), 0);
}

static void test_connects(void **state)
{
	struct fixture *f = *state;
	int fd;

	listen_on(f);
	fd = dv_ctl_connect(&f->sa, sizeof(f->sa), dv_now_ms() + 1000, connect);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static void test_errors_at_once(void **state)
{
	struct fixture *f = *state;
	int64_t t0 = dv_now_ms();

	/* Nothing there; a directory; a socket nobody listens on. */
	assert_int_equal(dv_ctl_connect(&f->sa, sizeof(f->sa), t0 + 5000, connect), -ENOENT);
	assert_int_equal(mkdir(f->sa.sun_path, 0700), 0);
	assert_int_equal(dv_ctl_connect(&f->sa, sizeof(f->sa), t0 + 5000, connect), -ECONNREFUSED);
	assert_int_equal(rmdir(f->sa.sun_path), 0);
	listen_on(f);
	close(f->listener);
	f->listener = -1;
	assert_int_equal(dv_ctl_connect(&f->sa, sizeof(f->sa), t0 + 5000, connect), -ECONNREFUSED);
	assert_true(dv_now_ms() - t0 < 2000);
}

static void test_full_queue_times_out(void **state)
{
	struct fixture *f = *state;
	int64_t t0;
	int first;

	listen_on(f);
	first = dv_ctl_connect(&f->sa, sizeof(f->sa), dv_now_ms() + 1000, connect);
	assert_true(first >= 0);
	/* Nobody accepts: a blocking connect() would wait for ever. */
	t0 = dv_now_ms();
	assert_int_equal(dv_ctl_connect(&f->sa, sizeof(f->sa), t0 + 300, connect), -ETIMEDOUT);
	assert_true(dv_now_ms() - t0 >= 300);
	assert_true(dv_now_ms() - t0 < 3000);
	close(first);
}

static void *accept_later(void *arg)
{
	struct fixture *f = arg;

	usleep(200 * 1000);
	return (void *)(intptr_t)accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
}

static void test_full_queue_then_room(void **state)
{
	struct fixture *f = *state;
	pthread_t t;
	void *accepted;
	int64_t t0;
	int first, second;

	listen_on(f);
	first = dv_ctl_connect(&f->sa, sizeof(f->sa), dv_now_ms() + 1000, connect);
	assert_true(first >= 0);
	assert_int_equal(pthread_create(&t, NULL, accept_later, f), 0);
	t0 = dv_now_ms();
	second = dv_ctl_connect(&f->sa, sizeof(f->sa), t0 + 10000, connect);
	assert_true(second >= 0);
	/* Taken soon after the accept made room, not at the deadline. */
	assert_true(dv_now_ms() - t0 < 5000);
	assert_int_equal(pthread_join(t, &accepted), 0);
	assert_true((intptr_t)accepted >= 0);
	close((int)(intptr_t)accepted);
	close(first);
	close(second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_queue_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_queue_then_room, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
