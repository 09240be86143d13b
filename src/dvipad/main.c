/* SPDX-License-Identifier: GPL-2.0-or-later */
/* dvipad: the dvipa node daemon. See dvipad(8). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "cleanup.h"
#include "conf.h"
#include "daemon.h"
#include "dist.h"
#include "log.h"
#include "proto.h"

/* DVIPA_CONF, the default configuration file, comes from meson: the build's
 * sysconfdir. */

static void usage(FILE *f)
{
	fprintf(f, "usage: dvipad [-dnv] [-f FILE] [-S PATH]\n"
		   "       dvipad -h|--help | --version\n"
		   "  -f FILE  configuration file (default " DVIPA_CONF ")\n"
		   "  -n       check the configuration only; print every error; exit 1 on error\n"
		   "  -v       with -n, print the normalized configuration; otherwise log debug messages\n"
		   "  -d       stay in the foreground and log to stderr\n"
		   "  -S PATH  control socket (default " DV_DEFAULT_SOCKET ")\n");
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct dv_daemon *d = ud;
	char *errors = NULL;

	log_notice("SIGHUP: reloading %s", dv_daemon_conf_path(d));
	sd_notify(0, "RELOADING=1");
	if (dv_daemon_reload(d, &errors) == 0) {
		log_notice("configuration reloaded");
	} else {
		char *save = NULL;

		for (char *l = errors ? strtok_r(errors, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
			log_err("%s", l);
		log_err("the new configuration has errors; nothing changed");
	}
	free(errors);
	sd_notify(0, "READY=1");
	return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	log_notice("signal %d: shutting down", (int)si->ssi_signo);
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

struct options {
	const char *conf_path, *sock_path;
	bool check, verbose, foreground;
};

/* Returns the exit status when dvipad is done (-h, a bad option), else -1. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "df:hnS:v", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->foreground = true;
			break;
		case 'f':
			o->conf_path = optarg;
			break;
		case 'n':
			o->check = true;
			break;
		case 'S':
			o->sock_path = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("dvipad %s\n", DVIPA_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "dvipad: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

/*
 * Parse path, its errors on stderr. A file that cannot be read is one line
 * naming the OS error: the parser says only "path: error" and counts no
 * configuration error, which used to end in "0 error(s); not starting".
 * The parser's lines go through a buffer so that this one replaces them.
 */
static int parse_conf(const char *path, struct dv_conf **ret_conf, unsigned *ret_nerr)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	f = open_memstream(&text, &len);
	if (!f) {
		r = -errno;
		fprintf(stderr, "dvipad: cannot read %s: %s\n", path, strerror(-r));
		return r;
	}
	r = dv_conf_parse_file(path, f, ret_conf, ret_nerr);
	fclose(f);
	if (r < 0 && *ret_nerr == 0) {
		fprintf(stderr, "dvipad: cannot read %s: %s\n", path, strerror(-r));
		return r;
	}
	if (text)
		fputs(text, stderr);
	return r;
}

/*
 * Returns the exit status when dvipad is done (-n, a config with errors),
 * else -1 with the parsed config in *ret_conf.
 */
static int load_conf(const struct options *o, struct dv_conf **ret_conf)
{
	struct dv_conf *conf = NULL;
	unsigned nerr = 0;
	int r;

	r = parse_conf(o->conf_path, &conf, &nerr);
	if (r < 0 && nerr == 0)
		return 1; /* said */
	if (o->check) {
		if (r == 0 && o->verbose)
			dv_conf_print(conf, stdout);
		dv_conf_free(conf);
		return r == 0 ? 0 : 1;
	}
	if (r < 0) {
		fprintf(stderr, "dvipad: %s: %u error(s); not starting\n", o->conf_path, nerr);
		return 1;
	}
	*ret_conf = conf;
	return -1;
}

/* The signals arrive through the event loop, never as handlers. */
static void block_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The event loop and the daemon listening; on failure all is undone and logged. */
static int start(const struct options *o, struct dv_conf *conf, sd_event **ret_ev, struct dv_daemon **ret_d)
{
	struct dv_daemon *d = NULL;
	sd_event *ev = NULL;
	int r;

	r = sd_event_default(&ev);
	if (r < 0) {
		log_err("cannot create the event loop: %s", strerror(-r));
		return r;
	}
	r = dv_daemon_new(ev, o->conf_path, conf, &d);
	/* conf is owned by the daemon now (or freed with it) */
	if (r < 0) {
		log_err("cannot start: %s", strerror(-r));
		sd_event_unref(ev);
		return r;
	}
	r = dv_daemon_listen(d, o->sock_path);
	if (r < 0)
		log_err("cannot listen on '%s': %s", o->sock_path,
			r == -EADDRINUSE ? "another dvipad is running there" : strerror(-r));
	else
		r = dv_daemon_serve_metrics(d); /* says why itself */
	if (r < 0) {
		dv_daemon_shutdown(d);
		dv_daemon_free(d);
		sd_event_unref(ev);
		return r;
	}
	*ret_ev = ev;
	*ret_d = d;
	return 0;
}

static int run(sd_event *ev, struct dv_daemon *d, const char *sock_path)
{
	int r;

	if (sd_event_add_signal(ev, NULL, SIGTERM, on_exit_signal, d) < 0 ||
	    sd_event_add_signal(ev, NULL, SIGINT, on_exit_signal, d) < 0 ||
	    sd_event_add_signal(ev, NULL, SIGHUP, on_sighup, d) < 0) {
		log_err("cannot watch signals");
		return -EIO;
	}
	(void)sd_event_set_watchdog(ev, true);

	log_notice("node '%s' ready on '%s', control socket '%s'", dv_daemon_conf(d)->node,
		   dv_daemon_conf(d)->interface, sock_path);
	sd_notify(0, "READY=1");
	r = sd_event_loop(ev);
	if (r < 0)
		log_err("event loop failed: %s", strerror(-r));
	return r;
}

/* Every control connection takes a descriptor, and the default soft limit
 * (1,024) is below the daemon's own cap on connections: take what the hard
 * limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("cannot raise the descriptor limit: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct options o = {.conf_path = DVIPA_CONF, .sock_path = DV_DEFAULT_SOCKET};
	struct dv_conf *conf = NULL;
	struct dv_daemon *d = NULL;
	sd_event *ev = NULL;
	int r;

	r = parse_options(argc, argv, &o);
	if (r >= 0)
		return r;
	r = load_conf(&o, &conf);
	if (r >= 0)
		return r;
	if (!o.foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "dvipad: cannot go to the background: %s\n", strerror(errno));
		return 1;
	}
	log_init("dvipad", o.foreground, o.verbose);
	raise_fd_limit();
	block_signals();
	if (start(&o, conf, &ev, &d) < 0)
		return 1;
	r = run(ev, d, o.sock_path);
	dv_daemon_shutdown(d);
	dv_daemon_free(d);
	sd_event_unref(ev);
	log_notice("stopped");
	return r < 0 ? 1 : 0;
}
