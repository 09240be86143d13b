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
/* What one turn of the loop sends to the group goes before the next turn's
 * work, as one multicast (sync.h's batches). */
#define DV_PRIO_SEND (DV_PRIO_KERNEL - 1)
/* Root's connections, and accepting connections (cheap, and capped per
 * uid), before the requests of other users: sixty connections of one user,
 * each with a whole-table request pending, kept root waiting 12.85 s for
 * its own status when all clients took turns. */
#define DV_PRIO_ROOT (SD_EVENT_PRIORITY_NORMAL + 5)
#define DV_PRIO_CLIENTS (SD_EVENT_PRIORITY_NORMAL + 10)
