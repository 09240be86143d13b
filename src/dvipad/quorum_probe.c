/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bounded quorum question (quorum_probe.h). The daemon and the thread
 * talk over a socketpair: the daemon writes a question's number, the
 * thread answers with the number and the result. An answer that comes
 * after the daemon gave up is read and dropped at the next question.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <corosync/quorum.h>

#include "clock.h"
#include "quorum_probe.h"

struct dv_qprobe {
	int fd;	      /* the daemon's end */
	uint32_t seq; /* the latest question */
	bool owed;    /* its answer has not come yet */
};

struct answer {
	uint32_t seq;
	int32_t result;
};

/* The thread owns its end of the socketpair and its quorum connection. */
static void *probe_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	quorum_handle_t h = 0;
	bool has = false;
	uint32_t seq;

	while (read(fd, &seq, sizeof(seq)) == (ssize_t)sizeof(seq)) {
		quorum_callbacks_t cb = {0};
		struct answer a = {.seq = seq, .result = -EIO};
		uint32_t type = 0;
		int q = 0;

		if (!has && quorum_initialize(&h, &cb, &type) == CS_OK)
			has = true;
		if (has && quorum_getquorate(h, &q) == CS_OK)
			a.result = !!q;
		else if (has) {
			/* Corosync went or restarted: connect afresh next time. */
			quorum_finalize(h);
			has = false;
		}
		if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
			break;
	}
	if (has)
		quorum_finalize(h);
	close(fd);
	return NULL;
}

struct dv_qprobe *dv_qprobe_new(void)
{
	struct dv_qprobe *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	pthread_t t;
	int sv[2], r;

	if (!p)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(p);
		return NULL;
	}
	p->fd = sv[0];
	/* Detached: a thread stuck in Corosync must not hold up a teardown. */
	r = pthread_attr_init(&attr);
	if (r == 0) {
		(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		r = pthread_create(&t, &attr, probe_thread, (void *)(intptr_t)sv[1]);
		pthread_attr_destroy(&attr);
	}
	if (r != 0) {
		close(sv[0]);
		close(sv[1]);
		free(p);
		errno = r;
		return NULL;
	}
	return p;
}

/* Reads answers until the one to the latest question; 1 when it came. */
static int take_answers(struct dv_qprobe *p, int *ret)
{
	struct answer a;
	ssize_t n;

	while ((n = recv(p->fd, &a, sizeof(a), MSG_DONTWAIT)) == (ssize_t)sizeof(a))
		if (a.seq == p->seq) {
			p->owed = false;
			*ret = a.result;
			return 1;
		}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		*ret = -EIO;
		return 1;
	}
	return 0;
}

int dv_qprobe_ask(struct dv_qprobe *p, uint64_t timeout_us)
{
	uint64_t deadline = dv_mono_us() + timeout_us;
	int result = -ETIMEDOUT;

	if (p->owed && !take_answers(p, &result))
		return -ETIMEDOUT; /* the thread is still stuck on the last one */
	p->seq++;
	if (send(p->fd, &p->seq, sizeof(p->seq), MSG_NOSIGNAL) != (ssize_t)sizeof(p->seq))
		return -EIO;
	p->owed = true;
	for (;;) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		uint64_t now = dv_mono_us();
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
		if (r < 0 && errno != EINTR)
			return -EIO;
		if (r > 0 && take_answers(p, &result))
			return result;
	}
}

int dv_qprobe_fd(const struct dv_qprobe *p)
{
	return p->fd;
}

int dv_qprobe_late(struct dv_qprobe *p)
{
	int result;

	if (!p->owed) {
		/* Nothing is owed: whatever is there is an old answer. */
		(void)take_answers(p, &result);
		return -EAGAIN;
	}
	return take_answers(p, &result) ? result : -EAGAIN;
}

struct dv_qprobe *dv_qprobe_free(struct dv_qprobe *p)
{
	if (p) {
		close(p->fd);
		free(p);
	}
	return NULL;
}
