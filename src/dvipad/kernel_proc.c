/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Processes and the sockets they own, from /proc (kernel.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "conf.h"
#include "kernel.h"

/* Deep enough for any real process tree; bounds a loop on a broken one. */
#define MAX_DEPTH 128

/* The state letter and parent of pid from /proc/PID/stat. 0 or -errno. */
static int proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid)
{
	char path[64], buf[512], *p;
	_cleanup_close_ int fd = -1;
	ssize_t n;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = 0;
	/* The command may hold spaces and parentheses: the last ')' ends it. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %d", ret_state, &ppid) != 2)
		return -EBADMSG;
	*ret_ppid = ppid;
	return 0;
}

bool dv_proc_alive(pid_t pid)
{
	char state;
	pid_t ppid;

	return pid > 0 && proc_stat(pid, &state, &ppid) == 0 && state != 'Z' && state != 'X';
}

bool dv_proc_descends(pid_t pid, pid_t ancestor)
{
	for (int i = 0; i < MAX_DEPTH && pid > 1; i++) {
		char state;

		if (pid == ancestor)
			return true;
		if (proc_stat(pid, &state, &pid) < 0)
			return false;
	}
	return pid == ancestor;
}

/* Calls found(ud, inode) for each socket pid has a file descriptor for,
 * until it returns true. Whether it did. */
static bool fd_sockets(pid_t pid, bool (*found)(void *ud, uint32_t ino), void *ud)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	bool done = false;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return false;
	while (!done && (de = readdir(d))) {
		char link[64];
		unsigned long ino;
		ssize_t k;

		if (de->d_name[0] == '.')
			continue;
		k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		if (sscanf(link, "socket:[%lu]", &ino) == 1 && ino <= UINT32_MAX)
			done = found(ud, (uint32_t)ino);
	}
	closedir(d);
	return done;
}

struct inode_set {
	const uint32_t *inodes;
	size_t n;
	pid_t *owners; /* for dv_proc_socket_owners: per inode */
	pid_t pid;     /* whose fds are read */
	size_t left;   /* inodes without an owner yet */
};

static bool in_set(void *ud, uint32_t ino)
{
	const struct inode_set *set = ud;

	for (size_t i = 0; i < set->n; i++)
		if (set->inodes[i] == ino)
			return true;
	return false;
}

bool dv_proc_owns_socket(pid_t pid, const uint32_t *inodes, size_t n)
{
	struct inode_set set = {.inodes = inodes, .n = n};

	return fd_sockets(pid, in_set, &set);
}

/* Calls each(ud, pid) for every process but dvipad, until it returns true. */
static void each_process(bool (*each)(void *ud, pid_t pid), void *ud)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid > INT_MAX || pid == getpid())
			continue;
		if (each(ud, (pid_t)pid))
			break;
	}
	closedir(d);
}

struct owner_search {
	struct inode_set set;
	pid_t except, owner;
};

static bool owner_of_any(void *ud, pid_t pid)
{
	struct owner_search *o = ud;

	if (pid != o->except && fd_sockets(pid, in_set, &o->set))
		o->owner = pid;
	return o->owner != 0;
}

pid_t dv_proc_socket_owner(const uint32_t *inodes, size_t n, pid_t except)
{
	struct owner_search o = {.set = {.inodes = inodes, .n = n}, .except = except};

	each_process(owner_of_any, &o);
	return o.owner;
}

static bool note_owner(void *ud, uint32_t ino)
{
	struct inode_set *set = ud;

	for (size_t i = 0; i < set->n; i++)
		if (set->inodes[i] == ino && !set->owners[i]) {
			set->owners[i] = set->pid;
			set->left--;
		}
	return set->left == 0;
}

static bool owners_of_each(void *ud, pid_t pid)
{
	struct inode_set *set = ud;

	set->pid = pid;
	return fd_sockets(pid, note_owner, set);
}

void dv_proc_socket_owners(const uint32_t *inodes, size_t n, pid_t *ret)
{
	struct inode_set set = {.inodes = inodes, .n = n, .owners = ret, .left = n};

	memset(ret, 0, n * sizeof(*ret));
	if (n)
		each_process(owners_of_each, &set);
}

static bool id_listed(const char *list, unsigned long id)
{
	for (const char *p = list; *p;) {
		char *end;
		unsigned long x = strtoul(p, &end, 10);

		if (end == p)
			return false;
		if (x == id)
			return true;
		p = end;
	}
	return false;
}

bool dv_proc_allowed(pid_t pid, const struct dv_conf_range *r)
{
	char path[64], line[4096];
	_cleanup_fclose_ FILE *f = NULL;
	uid_t uid = (uid_t)-1;
	bool ok = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		unsigned long id;

		if (sscanf(line, "Uid: %*u %lu", &id) == 1) {
			uid = (uid_t)id;
			ok = dv_conf_range_allows(r, uid, NULL, 0);
		} else if (uid != (uid_t)-1 && strncmp(line, "Gid:", 4) == 0) {
			for (size_t j = 0; !ok && j < r->n_groups; j++)
				ok = sscanf(line, "Gid: %*u %lu", &id) == 1 && id == r->gids[j];
		} else if (uid != (uid_t)-1 && strncmp(line, "Groups:", 7) == 0) {
			for (size_t j = 0; !ok && j < r->n_groups; j++)
				ok = id_listed(line + 7, r->gids[j]);
		}
	}
	return ok;
}

const char *dv_proc_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(buf, size, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	n = read(fd, buf, size - 1);
	if (n <= 0) {
		snprintf(buf, size, "?");
		return buf;
	}
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

bool dv_proc_sees_sockets(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3] = {0};

	if (syscall(SYS_capget, &h, c) < 0)
		return true; /* cannot tell: say nothing */
	return c[CAP_SYS_PTRACE / 32].effective & (1u << (CAP_SYS_PTRACE % 32));
}
