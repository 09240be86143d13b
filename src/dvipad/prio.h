/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event priorities of the daemon's loop (sd-event runs the pending source
 * of the highest priority first). Kernel work — address lifetimes,
 * announcements, netlink monitors, Corosync's stream and quorum, the ring
 * lease — goes before any client request, so that no flood of requests can
 * delay it by more than one request's handling (issue 11).
 */
#pragma once

#include <systemd/sd-event.h>

#define DV_PRIO_KERNEL SD_EVENT_PRIORITY_IMPORTANT
#define DV_PRIO_CLIENTS (SD_EVENT_PRIORITY_NORMAL + 10)
