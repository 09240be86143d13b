/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metrics endpoint (metrics_http.h): libmicrohttpd in external mode
 * with epoll, driven by sd-event.
 */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "clock.h"
#include "log.h"
#include "prio.h"

/* A scraper or two, a browser: more connections wait in the backlog. A
 * connection that says nothing for the timeout is closed. */
#define MAX_CONNECTIONS 16
#define MAX_PER_IP 4
#define IDLE_TIMEOUT_S 10
#define CONTENT_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

struct dv_metrics_http {
	struct MHD_Daemon *mhd;
	sd_event_source *io, *timer;
	dv_metrics_render_fn render;
	void *ud;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result r;

	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
	static char not_found[] = "dvipad serves its metrics at /metrics\n";
	static char not_allowed[] = "only GET and HEAD\n";
	static char failed[] = "out of memory for the metrics\n";
	struct dv_metrics_http *h = cls;
	char *text = NULL;
	size_t len = 0;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", not_allowed, strlen(not_allowed),
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found, strlen(not_found),
			     MHD_RESPMEM_PERSISTENT);
	if (h->render(h->ud, &text, &len) < 0)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", failed, strlen(failed),
			     MHD_RESPMEM_PERSISTENT);
	return reply(conn, MHD_HTTP_OK, CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE);
}

/* Run what is ready, then wake up again when libmicrohttpd wants to
 * (idle connections to close, data it already holds). */
static void run(struct dv_metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	(void)MHD_run(h->mhd);
	if (MHD_get_timeout(h->mhd, &ms) != MHD_YES) {
		(void)sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
		return;
	}
	(void)sd_event_source_set_time(h->timer, dv_mono_us() + ms * 1000);
	(void)sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	run(ud);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	run(ud);
	return 0;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	log_warn("metrics endpoint: %s", msg);
}

int dv_metrics_http_open(sd_event *ev, const struct dv_addr *addr, uint16_t port, dv_metrics_render_fn render, void *ud,
			 struct dv_metrics_http **ret)
{
	struct sockaddr_storage ss = {0};
	struct dv_metrics_http *h;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	int r;

	if (addr->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = addr->v6;
		s6->sin6_port = htons(port);
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = addr->v4;
		s4->sin_port = htons(port);
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->render = render;
	h->ud = ud;
	/* libmicrohttpd says nothing of why a start failed but through
	 * errno and its logger. */
	errno = 0;
	h->mhd = MHD_start_daemon(flags, port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MAX_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER,
				  mhd_log, NULL, MHD_OPTION_END);
	if (!h->mhd) {
		r = errno ? -errno : -EADDRNOTAVAIL;
		free(h);
		return r;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	r = info ? sd_event_add_io(ev, &h->io, info->epoll_fd, EPOLLIN, on_io, h) : -EIO;
	if (r >= 0)
		r = sd_event_add_time(ev, &h->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, h);
	if (r >= 0) {
		/* Below the kernel's work and the clients of the control socket. */
		(void)sd_event_source_set_priority(h->io, DV_PRIO_CLIENTS);
		run(h);
	}
	if (r < 0) {
		dv_metrics_http_free(h);
		return r;
	}
	*ret = h;
	return 0;
}

struct dv_metrics_http *dv_metrics_http_free(struct dv_metrics_http *h)
{
	if (!h)
		return NULL;
	sd_event_source_disable_unref(h->io);
	sd_event_source_disable_unref(h->timer);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	free(h);
	return NULL;
}
