/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * METRICS LISTEN: the metrics over HTTP (GET /metrics), served by
 * libmicrohttpd from dvipad's own event loop: its epoll descriptor and
 * timeout are sd-event sources, so the text is rendered in the loop's
 * thread like any control request, and no other thread ever reads the
 * daemon's state.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "addr.h"

struct dv_metrics_http;

/* render: the OpenMetrics text, malloc'ed, or -errno. */
typedef int (*dv_metrics_render_fn)(void *ud, char **ret, size_t *ret_len);

/* Listen on addr:port. 0, or -errno (-EADDRINUSE, -EACCES, ...). */
int dv_metrics_http_open(sd_event *ev, const struct dv_addr *addr, uint16_t port, dv_metrics_render_fn render, void *ud,
			 struct dv_metrics_http **ret);
struct dv_metrics_http *dv_metrics_http_free(struct dv_metrics_http *h);
