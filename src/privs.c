/*
 * privs.c - least privilege, once setup is done. The daemon switches to an
 * unprivileged user, keeps only the capabilities its mode still uses at run
 * time, sets no_new_privs, and installs a seccomp-BPF allow-list of the
 * system calls the event loop makes; any other system call stops the daemon
 * with one line naming it. Raw capset(2) and hand-built BPF: no libcap, no
 * libseccomp. Runs once, after every socket is open and before the loop;
 * it must never run earlier (setup needs root), and nothing here is undone.
 */
#define _GNU_SOURCE
#include "privs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#if defined(__x86_64__)
#define PRIVS_AUDIT_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define PRIVS_AUDIT_ARCH	AUDIT_ARCH_AARCH64
#endif

#define CAPBIT(c)		(UINT64_C(1) << (c))
#define PRIVS_MAX_GROUPS	256	/* supplementary groups of the user we switch to */
#define PRIVS_FILTER_MAX	256	/* BPF instructions in the seccomp filter */

/* x_tables' control options (IPT_BASE_CTL, IP6T_BASE_CTL in linux/netfilter_ipv{4,6}/):
 * IPv4 levels at and above it are netfilter's (iptables, arptables, ebtables, IPVS);
 * IPv6's set options are the first two */
#define NF_SOCKOPT_BASE		64

/* --------------------------------------------------------------- capabilities */

/*
 * The capabilities @mode still uses once the loop runs; nothing else stays.
 * The listeners, the netfilter queue and nfqueue's raw answer sockets are open
 * by now, so CAP_NET_RAW goes; files read at run time (CA and config files on
 * reload) must be readable by the user, so no CAP_DAC_*.
 */
static uint64_t caps_for_mode(enum cfg_mode mode)
{
	/*
	 * Every mode: each new upstream connection gets SO_MARK (upstream.c
	 * conn_open), which the rules skip so the daemon never intercepts its own
	 * traffic; SO_MARK needs CAP_NET_ADMIN (kernels before 5.17 accept no other).
	 * nfqueue mode needs it twice over: nfnetlink takes the verdict messages
	 * sent for every queued packet only from a sender with CAP_NET_ADMIN.
	 */
	uint64_t caps = CAPBIT(CAP_NET_ADMIN);

	/*
	 * tproxy: an intercepted UDP query is answered from the address and port
	 * the client asked, through a socket udp.c opens at run time (tsock_get):
	 * IP_TRANSPARENT and SO_MARK (CAP_NET_ADMIN again), bound to that port,
	 * 53, below ip_unprivileged_port_start: CAP_NET_BIND_SERVICE.
	 * nfqueue answers through raw sockets opened at start, and its TCP
	 * arrives on accepted TPROXY sockets, so it needs nothing more.
	 */
	if (mode == MODE_TPROXY)
		caps |= CAPBIT(CAP_NET_BIND_SERVICE);
	return caps;
}

static int caps_get(uint64_t *eff, uint64_t *prm, uint64_t *inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

/* Permitted and effective become @caps, inheritable empty. */
static int caps_set(uint64_t caps)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)caps;
	d[1].effective = d[1].permitted = (uint32_t)(caps >> 32);
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

/* Drop every capability but @keep from the bounding set (needs CAP_SETPCAP). */
static int bounding_drop(uint64_t keep)
{
	for (int c = 0; c < 64; c++) {
		int in = prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0);

		if (in < 0)
			break;	/* EINVAL: past the kernel's last capability */
		if (in == 1 && !(keep & CAPBIT(c)) && prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0)
			return -errno;
	}
	return 0;
}

/* "cap_net_admin,cap_net_bind_service", or "none". */
static const char *caps_names(uint64_t caps, char *buf, size_t len)
{
	static const struct {
		int cap;
		const char *name;
	} names[] = {
		{ CAP_NET_ADMIN, "cap_net_admin" },
		{ CAP_NET_BIND_SERVICE, "cap_net_bind_service" },
		{ CAP_NET_RAW, "cap_net_raw" },
	};
	size_t off = 0;

	buf[0] = '\0';
	for (int c = 0; c < 64; c++) {
		const char *name = NULL;
		char num[16];

		if (!(caps & CAPBIT(c)) || off >= len)
			continue;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (names[i].cap == c)
				name = names[i].name;
		if (!name) {
			snprintf(num, sizeof(num), "cap_%d", c);
			name = num;
		}
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s", off ? "," : "", name);
	}
	if (off == 0)
		snprintf(buf, len, "none");
	return buf;
}

/* ------------------------------------------------------------------- the user */

struct privs_user {
	char name[64];
	uid_t uid;
	gid_t gid;
	gid_t groups[PRIVS_MAX_GROUPS];
	int ngroups;
	bool switch_to;		/* false: stay who we are */
};

static int resolve_user(const struct config *cfg, struct privs_user *u, char *err, size_t errlen)
{
	const char *name = cfg->user;
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	if (!*name) {
		/* not root and no --user: switching is not ours to do (e.g. already started as dotproxy) */
		if (geteuid() != 0) {
			pw = getpwuid(geteuid());
			if (pw)
				snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
			else
				snprintf(u->name, sizeof(u->name), "uid %u", (unsigned)geteuid());
			u->uid = geteuid();
			u->gid = getegid();
			return 0;
		}
		name = getpwnam("dotproxy") ? "dotproxy" : "nobody";
	}
	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		if (errno && errno != ENOENT && errno != ESRCH)
			snprintf(err, errlen, "--user \"%s\": cannot look the user up: %s", name, strerror(errno));
		else
			snprintf(err, errlen, "--user \"%s\": no such user", name);
		return -1;
	}
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->ngroups = PRIVS_MAX_GROUPS;
	if (getgrouplist(u->name, u->gid, u->groups, &u->ngroups) < 0) {
		snprintf(err, errlen, "--user \"%s\": member of more than %d groups", name, PRIVS_MAX_GROUPS);
		return -1;
	}
	u->switch_to = u->uid != geteuid() || u->gid != getegid() || geteuid() == 0;
	return 0;
}

/*
 * resolve_user() in a child process: the name service (libnss_systemd, and
 * the libraries it pulls in, about 0.7 MB of resident memory) is loaded into
 * the child, which exits, and never into the daemon that runs for years.
 */
static int resolve_user_apart(const struct config *cfg, struct privs_user *u, char *err, size_t errlen)
{
	struct {
		int rc;
		struct privs_user u;
		char err[256];
	} res;
	int fds[2], status;
	ssize_t n = 0, r;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		snprintf(err, errlen, "--user: cannot look the user up: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		memset(&res, 0, sizeof(res));
		res.rc = resolve_user(cfg, &res.u, res.err, sizeof(res.err));
		_exit(write(fds[1], &res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 1);
	}
	close(fds[1]);
	while (n < (ssize_t)sizeof(res) && ((r = read(fds[0], (char *)&res + n, sizeof(res) - (size_t)n)) > 0 ||
					     (r < 0 && errno == EINTR)))
		n += r > 0 ? r : 0;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(res)) {
		snprintf(err, errlen, "--user: the user lookup failed");
		return -1;
	}
	if (res.rc < 0) {
		snprintf(err, errlen, "%s", res.err);
		return -1;
	}
	*u = res.u;
	return 0;
}

/* setgroups, setgid, setuid, keeping the permitted capabilities across. */
static int switch_user(const struct privs_user *u, char *err, size_t errlen)
{
	if (prctl(PR_SET_KEEPCAPS, 1UL, 0, 0, 0) < 0 ||
	    setgroups((size_t)u->ngroups, u->groups) < 0 ||
	    setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0) {
		snprintf(err, errlen, "--user %s: cannot switch to uid %u gid %u: %s%s", u->name,
			 (unsigned)u->uid, (unsigned)u->gid, strerror(errno),
			 errno == EPERM ? " (only root can switch users)" : "");
		return -1;
	}
	(void)prctl(PR_SET_KEEPCAPS, 0UL, 0, 0, 0);
	return 0;
}

/* -------------------------------------------------------------------- seccomp */

/* Little-endian: the low 32 bits of a 64-bit argument come first. */
#define ARG_LO(i)	(offsetof(struct seccomp_data, args) + 8 * (i) + \
			 (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0 : 4))
#define LD_NR		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARCH		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define LD_ARG(i)	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(i))
#define JEQ(k, t, f)	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JGE(k, t, f)	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (k), (t), (f))
#define JSET(k, t, f)	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (t), (f))
#define AND(k)		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (k))
#define RET(v)		BPF_STMT(BPF_RET | BPF_K, (v))
#define ALLOW		RET(SECCOMP_RET_ALLOW)
#define TRAP		RET(SECCOMP_RET_TRAP)

/*
 * System calls allowed with any arguments, the busiest first (the filter is
 * a linear scan). What the loop makes after the drop, as read from the code
 * and seen under strace in every end-to-end test: epoll; batched UDP
 * (recvmmsg, sendmmsg; sendmsg when a batch has one answer); the netfilter
 * queue (recvmsg, sendto: libmnl); TCP clients and metrics (accept4, recv,
 * send, which are recvfrom, sendto); upstream TLS (socket, connect, read,
 * write, getsockopt SO_ERROR); malloc (brk, mmap, munmap, mremap, madvise);
 * OpenSSL (getrandom, getpid, futex); the signalfd (read); files on reload
 * and /proc (openat, the stat family, lseek, read, close); the log (write to
 * stderr; syslog's and sd_notify's unix datagram sockets: socket, connect,
 * sendto, sendmsg); the clock (vDSO, these when it falls back to a system
 * call); abort() (rt_sigprocmask, getpid, tgkill).
 */
static const int allowed[] = {
#ifdef SYS_epoll_wait
	SYS_epoll_wait,
#endif
	SYS_epoll_pwait,
	SYS_recvmmsg, SYS_sendmmsg, SYS_read, SYS_write, SYS_epoll_ctl,
	SYS_recvfrom, SYS_sendto, SYS_recvmsg, SYS_sendmsg,
	SYS_clock_gettime, SYS_gettimeofday,
#ifdef SYS_time
	SYS_time,
#endif
	SYS_accept4, SYS_connect, SYS_bind, SYS_getsockopt, SYS_close,
	SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise, SYS_getrandom, SYS_futex, SYS_getpid,
	SYS_lseek, SYS_newfstatat, SYS_fstat,
#ifdef SYS_statx
	SYS_statx,
#endif
	SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_restart_syscall, SYS_exit_group,
};

/*
 * System calls allowed only with some arguments: each a block that starts
 * right after "nr == X" and ends in its own return.
 */

/* socket(2): IPv4, IPv6 (upstreams, tproxy answers) and unix (syslog,
 * sd_notify), stream or datagram: no raw, packet or netlink sockets */
static const struct sock_filter blk_socket[] = {
	LD_ARG(0),
	JEQ(AF_UNIX, 2, 0),
	JEQ(AF_INET, 1, 0),
	JEQ(AF_INET6, 0, 4),
	LD_ARG(1),
	AND(0xf),	/* the type without SOCK_NONBLOCK, SOCK_CLOEXEC */
	JEQ(SOCK_STREAM, 2, 0),
	JEQ(SOCK_DGRAM, 1, 0),
	TRAP,
	ALLOW,
};

/* setsockopt(2): anything but netfilter's table and counter updates,
 * which CAP_NET_ADMIN would otherwise allow on any IP socket */
static const struct sock_filter blk_setsockopt[] = {
	LD_ARG(1),
	JEQ(IPPROTO_IP, 0, 2),
	LD_ARG(2),
	JGE(NF_SOCKOPT_BASE, 4, 5),
	JEQ(IPPROTO_IPV6, 0, 4),
	LD_ARG(2),
	JEQ(NF_SOCKOPT_BASE, 1, 0),
	JEQ(NF_SOCKOPT_BASE + 1, 0, 1),
	TRAP,
	ALLOW,
};

/* ioctl(2): an interface's name and MTU (nfqueue answers: nfq.c answer_room);
 * TCGETS, glibc's isatty() when stdio first writes to a character device
 * (a terminal, /dev/null as stderr). Nothing that changes anything. */
static const struct sock_filter blk_ioctl[] = {
	LD_ARG(1),
	JEQ(TCGETS, 3, 0),
	JEQ(SIOCGIFNAME, 2, 0),
	JEQ(SIOCGIFMTU, 1, 0),
	TRAP,
	ALLOW,
};

/* openat(2): reading only (CA and config files, /proc) */
static const struct sock_filter blk_openat[] = {
	LD_ARG(2),
	JSET(O_ACCMODE | O_CREAT | O_TRUNC, 0, 1),
	TRAP,
	ALLOW,
};

/* mmap(2), mprotect(2): memory, never new executable memory */
static const struct sock_filter blk_noexec[] = {
	LD_ARG(2),
	JSET(PROT_EXEC, 0, 1),
	TRAP,
	ALLOW,
};

struct filter {
	struct sock_filter ins[PRIVS_FILTER_MAX];
	unsigned n;		/* past PRIVS_FILTER_MAX: too long */
};

static void put(struct filter *f, struct sock_filter in)
{
	if (f->n < PRIVS_FILTER_MAX)
		f->ins[f->n] = in;
	f->n++;
}

/* "nr == @nr" and then @blk, or the next check. */
static void put_block(struct filter *f, int nr, const struct sock_filter *blk, size_t n)
{
	put(f, (struct sock_filter)JEQ((uint32_t)nr, 0, (uint8_t)n));
	for (size_t i = 0; i < n; i++)
		put(f, blk[i]);
}

/*
 * The daemon's filter. @pid: the only process tgkill(2) may signal (abort()
 * signals itself that way). Returns 0, or -1 with @err set (an architecture
 * it does not know, or too long).
 */
static int filter_build(struct filter *f, pid_t pid, char *err, size_t errlen)
{
	const struct sock_filter blk_tgkill[] = {
		LD_ARG(0),
		JEQ((uint32_t)pid, 1, 0),
		TRAP,
		ALLOW,
	};

	f->n = 0;
#ifndef PRIVS_AUDIT_ARCH
	(void)blk_tgkill;
	snprintf(err, errlen, "seccomp: this architecture is not supported (only x86_64 and aarch64)");
	return -1;
#else
	/* another architecture's system call numbers (i386, x32) mean other calls: stop */
	put(f, (struct sock_filter)LD_ARCH);
	put(f, (struct sock_filter)JEQ(PRIVS_AUDIT_ARCH, 1, 0));
	put(f, (struct sock_filter)RET(SECCOMP_RET_KILL_PROCESS));
	put(f, (struct sock_filter)LD_NR);
#ifdef __x86_64__
	put(f, (struct sock_filter)JGE(0x40000000, 0, 1));	/* __X32_SYSCALL_BIT */
	put(f, (struct sock_filter)RET(SECCOMP_RET_KILL_PROCESS));
#endif
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		put(f, (struct sock_filter)JEQ((uint32_t)allowed[i], 0, 1));
		put(f, (struct sock_filter)ALLOW);
	}
	put_block(f, SYS_socket, blk_socket, sizeof(blk_socket) / sizeof(blk_socket[0]));
	put_block(f, SYS_setsockopt, blk_setsockopt, sizeof(blk_setsockopt) / sizeof(blk_setsockopt[0]));
	put_block(f, SYS_openat, blk_openat, sizeof(blk_openat) / sizeof(blk_openat[0]));
	put_block(f, SYS_mmap, blk_noexec, sizeof(blk_noexec) / sizeof(blk_noexec[0]));
	put_block(f, SYS_mprotect, blk_noexec, sizeof(blk_noexec) / sizeof(blk_noexec[0]));
	put_block(f, SYS_ioctl, blk_ioctl, sizeof(blk_ioctl) / sizeof(blk_ioctl[0]));
	put_block(f, SYS_tgkill, blk_tgkill, sizeof(blk_tgkill) / sizeof(blk_tgkill[0]));
	put(f, (struct sock_filter)TRAP);
	if (f->n > PRIVS_FILTER_MAX) {
		snprintf(err, errlen, "seccomp: filter too long (%u instructions)", f->n);
		return -1;
	}
	return 0;
#endif
}

/*
 * SIGSYS from SECCOMP_RET_TRAP: one line naming the system call, then exit.
 * Only async-signal-safe raw system calls, both on the allow-list; exit_group
 * directly, since a sanitizer's _exit() would run its leak check first.
 */
static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	static const char head[] = "dotproxy: seccomp: system call ";
	static const char tail[] = " is not allowed (please report)\n";
	char line[sizeof(head) + sizeof(tail) + 12];
	char num[12];
	unsigned v = (unsigned)si->si_syscall;
	size_t n = 0, len = sizeof(head) - 1;

	(void)sig;
	(void)uctx;
	do {
		num[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < sizeof(num));
	memcpy(line, head, len);
	while (n)
		line[len++] = num[--n];
	memcpy(line + len, tail, sizeof(tail) - 1);
	len += sizeof(tail) - 1;
	(void)syscall(SYS_write, STDERR_FILENO, line, len);
	(void)syscall(SYS_exit_group, 1);
}

/* Install the SIGSYS handler and @f: from here on only what @f allows. */
static int seccomp_install(const struct filter *f, char *err, size_t errlen)
{
	struct sock_fprog prog = { .len = (unsigned short)f->n, .filter = (struct sock_filter *)f->ins };
	struct sigaction sa;
	sigset_t set;
	long rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || sigprocmask(SIG_UNBLOCK, &set, NULL) < 0) {
		snprintf(err, errlen, "seccomp: SIGSYS handler: %s", strerror(errno));
		return -1;
	}
	/* TSYNC: every thread of the process, should a library have started one */
	rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	if (rc != 0) {
		if (rc > 0)
			snprintf(err, errlen, "seccomp: thread %ld has a filter of its own", rc);
		else
			snprintf(err, errlen, "seccomp: cannot install the system call filter: %s%s", strerror(errno),
				 errno == EINVAL ? " (a kernel without CONFIG_SECCOMP_FILTER?)" : "");
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------------------------- all */

int privs_drop(const struct config *cfg, char *err, size_t errlen)
{
	struct privs_user u;
	struct filter *f;
	uint64_t eff, prm, inh, want;
	char names[128];
	uid_t uid;
	gid_t gid;
	static struct filter filter;	/* 2 KiB: not on the stack */

	f = &filter;
	if (resolve_user_apart(cfg, &u, err, errlen) < 0)
		return -1;
	if (filter_build(f, getpid(), err, errlen) < 0)
		return -1;
	if (caps_get(&eff, &prm, &inh) < 0) {
		snprintf(err, errlen, "capget: %s", strerror(errno));
		return -1;
	}
	/* what the mode needs and we have (started without some: those stay missing) */
	want = caps_for_mode(cfg->mode) & prm;
	if (eff & CAPBIT(CAP_SETPCAP)) {
		int rc = bounding_drop(want);

		if (rc < 0) {
			snprintf(err, errlen, "cannot drop capabilities from the bounding set: %s", strerror(-rc));
			return -1;
		}
	}
	if (u.switch_to && switch_user(&u, err, errlen) < 0)
		return -1;
	if (caps_set(want) < 0) {
		snprintf(err, errlen, "capset: cannot keep only %s: %s", caps_names(want, names, sizeof(names)),
			 strerror(errno));
		return -1;
	}
	/* inheritable is empty now, so ambient is too; clear it anyway (EINVAL: before Linux 4.3) */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		snprintf(err, errlen, "cannot clear the ambient capabilities: %s", strerror(errno));
		return -1;
	}
	/* trust, but verify: the sets are what we asked, and root cannot come back */
	if (caps_get(&eff, &prm, &inh) < 0 || eff != want || prm != want || inh != 0) {
		snprintf(err, errlen, "capabilities are not what was set (effective %#llx, want %#llx)",
			 (unsigned long long)eff, (unsigned long long)want);
		return -1;
	}
	if (u.uid != 0 && (setresuid(0, 0, 0) == 0 || getuid() == 0 || geteuid() == 0)) {
		snprintf(err, errlen, "--user %s: could switch back to root after dropping privileges", u.name);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0, 0, 0) < 0) {
		snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	uid = getuid();
	gid = getgid();
	if (seccomp_install(f, err, errlen) < 0)
		return -1;
	log_info("running as %s (uid %u, gid %u), capabilities %s, no_new_privs, seccomp on", u.name,
		 (unsigned)uid, (unsigned)gid, caps_names(want, names, sizeof(names)));
	return 0;
}
