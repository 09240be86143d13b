/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipa-holder: the smallest useful libdvipa application, and the program
 * the system tests and the demo run.
 *
 *   dvipa-holder [-S SOCK] [--standby RANK] [--name NAME] ADDR PORT
 *   dvipa-holder --help | --version
 *
 * It activates ADDR (or waits as a standby until it is granted), listens on
 * ADDR:PORT and answers every connection with its name. It exits 3 when the
 * address is lost, 0 on SIGTERM or SIGINT, and with the DVIPA_E_* code when
 * the activation fails.
 *
 * One thread, one poll loop over the listening socket and dvipa_fd(): the
 * library never calls us except from dvipa_dispatch().
 *
 * Build: cc -o dvipa-holder dvipa-holder.c $(pkg-config --cflags --libs libdvipa)
 */
#ifndef _GNU_SOURCE /* ppoll(), accept4(); dvipa's build defines it already */
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dvipa.h>

/* The build defines it from the project's version; a copy built on its own
 * has none. */
#ifndef DVIPA_VERSION
#define DVIPA_VERSION "(built outside dvipa)"
#endif

static const char *vipa; /* ADDR as given */
static bool granted, lost;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

/* dvipad writes addresses in canonical form; compare them as addresses. */
static bool same_addr(const char *a, const char *b)
{
	unsigned char x[16] = {0}, y[16] = {0};
	int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(b, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
		return strcmp(a, b) == 0;
	return fa == fb && memcmp(x, y, sizeof(x)) == 0;
}

static void on_event(dvipa_t *h, const struct dvipa_event *ev, void *userdata)
{
	if (!same_addr(ev->addr, vipa))
		return;
	if (ev->type == DVIPA_EVENT_GRANTED) {
		granted = true;
	} else if (ev->type == DVIPA_EVENT_LOST) {
		printf("lost %s: %s\n", vipa, ev->reason);
		lost = true;
	}
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void usage(FILE *f, int status)
{
	fprintf(f, "usage: dvipa-holder [-S SOCK] [--standby RANK] [--name NAME] ADDR PORT\n"
		   "       dvipa-holder -h|--help | --version\n"
		   "  -S SOCK          dvipad's control socket (default $DVIPA_SOCKET, then /run/dvipa/dvipad.sock)\n"
		   "  --standby RANK   wait as a standby of rank 1..254 until granted\n"
		   "  --name NAME      what to answer connections with (default holder-PID)\n"
		   "Activates ADDR, listens on ADDR:PORT, answers every connection with NAME.\n"
		   "Exits 0 on SIGTERM/SIGINT, 3 when the address is lost, else the DVIPA_E_* code.\n");
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"standby", required_argument, NULL, 's'},
		{"name", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *sock = NULL, *name = NULL;
	char namebuf[64];
	int rank = 0, port, lfd, o, r;
	struct sigaction sa = {.sa_handler = on_signal};
	sigset_t block, empty;
	dvipa_t *h;

	while ((o = getopt_long(argc, argv, "hS:", opts, NULL)) != -1) {
		switch (o) {
		case 'S':
			sock = optarg;
			break;
		case 's':
			rank = atoi(optarg);
			if (rank < 1 || rank > 254)
				usage(stderr, DVIPA_E_INVAL);
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		case 'V':
			printf("dvipa-holder %s\n", DVIPA_VERSION);
			return 0;
		default:
			usage(stderr, DVIPA_E_INVAL);
		}
	}
	if (argc - optind != 2)
		usage(stderr, DVIPA_E_INVAL);
	vipa = argv[optind];
	port = atoi(argv[optind + 1]);
	if (port < 1 || port > 65535)
		usage(stderr, DVIPA_E_INVAL);
	if (!name) {
		snprintf(namebuf, sizeof(namebuf), "holder-%d", (int)getpid());
		name = namebuf;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* SIGTERM and SIGINT are only delivered inside ppoll(), so a signal
	 * can never slip in between checking "stop" and going to sleep. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&empty);
	signal(SIGPIPE, SIG_IGN); /* a client that hangs up early */

	r = dvipa_open(&h, sock);
	if (r < 0) {
		const char *path = sock ? sock : getenv("DVIPA_SOCKET");

		fprintf(stderr, "dvipa-holder: cannot connect to dvipad at '%s': %s\n",
			path && *path ? path : "/run/dvipa/dvipad.sock", strerror(errno));
		return -r;
	}

	r = rank ? dvipa_standby(h, vipa, (unsigned)rank) : dvipa_activate(h, vipa);
	if (r < 0) {
		fprintf(stderr, "dvipa-holder: %s %s: %s: %s\n", rank ? "standby" : "activate", vipa, dvipa_strerror(r),
			dvipa_reason(h));
		dvipa_close(h);
		return -r;
	}
	granted = r == 0;

	/* A standby waits here until dvipad grants the address. */
	while (!granted && !lost && !stop) {
		struct pollfd p = {.fd = dvipa_fd(h), .events = POLLIN};

		if (ppoll(&p, 1, NULL, &empty) > 0 && dvipa_dispatch(h, on_event, NULL) == -DVIPA_E_UNREACH) {
			fprintf(stderr, "dvipa-holder: dvipad went away\n");
			dvipa_close(h);
			return DVIPA_E_UNREACH;
		}
	}
	if (stop || lost) {
		dvipa_close(h);
		return stop ? 0 : 3;
	}
	printf("granted %s\n", vipa);

	/* Only now: a socket bound to the address (IP_FREEBIND would allow it
	 * before the grant) is, to dvipad, a program using it, whose hold it
	 * takes back after a restart or a heal: a standby would pull the
	 * address to its node before it serves. */
	lfd = listen_on(vipa, port);
	if (lfd < 0) {
		fprintf(stderr, "dvipa-holder: listen on %s port %d: %s\n", vipa, port, strerror(errno));
		dvipa_close(h);
		return 1;
	}
	printf("listening %s %d\n", vipa, port);

	while (!stop && !lost) {
		struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = dvipa_fd(h), .events = POLLIN}};

		if (ppoll(p, 2, NULL, &empty) < 0)
			continue; /* EINTR: a signal set "stop" */
		if (p[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0) {
				dprintf(c, "%s\n", name);
				close(c);
			}
		}
		if (p[1].revents && dvipa_dispatch(h, on_event, NULL) == -DVIPA_E_UNREACH) {
			/* Without dvipad nothing keeps the address up. */
			printf("lost %s: dvipad went away\n", vipa);
			lost = true;
		}
	}

	close(lfd);
	dvipa_close(h);
	return lost ? 3 : 0;
}
