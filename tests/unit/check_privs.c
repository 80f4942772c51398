/*
 * check_privs.c - unit tests for src/privs.c that need no root: the seccomp
 * filter read instruction by instruction by a small classic-BPF interpreter
 * here (what each system call and argument gets), the filter installed for
 * real in a forked child (an unlisted call ends it with the promised line and
 * exit status 1), the capabilities each mode keeps, the user rule and --user.
 * The drop itself (setuid, capset) is tested end to end: tests/e2e/test_privs.sh.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../../src/privs.c"
#include "unit.h"

/* The seccomp interpreter's semantics for the opcodes privs.c uses; anything else fails. */
static uint32_t bpf_run(const struct filter *f, const struct seccomp_data *d)
{
	uint32_t a = 0;

	for (unsigned pc = 0; pc < f->n; pc++) {
		const struct sock_filter *in = &f->ins[pc];

		switch (in->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			ck_assert_msg(in->k % 4 == 0 && in->k + 4 <= sizeof(*d), "load at %u out of seccomp_data", in->k);
			memcpy(&a, (const uint8_t *)d + in->k, 4);
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= in->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == in->k ? in->jt : in->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= in->k ? in->jt : in->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (a & in->k) ? in->jt : in->jf;
			break;
		case BPF_RET | BPF_K:
			return in->k;
		default:
			ck_abort_msg("unexpected BPF opcode %#x at %u", in->code, pc);
		}
	}
	ck_abort_msg("the filter ran past its end");
	return 0;
}

static struct filter filt;

static void build(void)
{
	char err[256] = "";

	ck_assert_msg(filter_build(&filt, 4242, err, sizeof(err)) == 0, "%s", err);
}

/* What the filter answers for system call @nr with arguments @a0..@a2 on @arch. */
static uint32_t verdict_arch(uint32_t arch, int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct seccomp_data d;

	memset(&d, 0, sizeof(d));
	d.nr = nr;
	d.arch = arch;
	d.args[0] = a0;
	d.args[1] = a1;
	d.args[2] = a2;
	return bpf_run(&filt, &d);
}

static uint32_t verdict(int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return verdict_arch(PRIVS_AUDIT_ARCH, nr, a0, a1, a2);
}

START_TEST(filter_shape)
{
	build();
	ck_assert_uint_le(filt.n, PRIVS_FILTER_MAX);
	/* every jump lands inside the program, and it ends in a return */
	for (unsigned pc = 0; pc < filt.n; pc++) {
		const struct sock_filter *in = &filt.ins[pc];

		if (BPF_CLASS(in->code) == BPF_JMP)
			ck_assert_msg(pc + 1 + in->jt < filt.n && pc + 1 + in->jf < filt.n, "jump out at %u", pc);
	}
	ck_assert_uint_eq(filt.ins[filt.n - 1].code, BPF_RET | BPF_K);
	ck_assert_uint_eq(filt.ins[filt.n - 1].k, SECCOMP_RET_TRAP);
}
END_TEST

START_TEST(listed_calls_allowed)
{
	build();
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ck_assert_msg(verdict(allowed[i], 0, 0, 0) == SECCOMP_RET_ALLOW, "system call %d", allowed[i]);
	/* the calls of every mode's busy path, by name */
	ck_assert_uint_eq(verdict(SYS_epoll_pwait, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_recvmmsg, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_sendmmsg, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_accept4, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_connect, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_getrandom, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_exit_group, 0, 0, 0), SECCOMP_RET_ALLOW);
}
END_TEST

START_TEST(dangerous_calls_trap)
{
	static const int nrs[] = {
		SYS_execve, SYS_execveat, SYS_ptrace, SYS_mount, SYS_umount2, SYS_clone, SYS_clone3,
		SYS_unshare, SYS_setns, SYS_setuid, SYS_setresuid, SYS_setgid, SYS_setgroups, SYS_capset,
		SYS_prctl, SYS_seccomp, SYS_chroot, SYS_pivot_root, SYS_bpf, SYS_init_module,
		SYS_finit_module, SYS_kexec_load, SYS_process_vm_writev, SYS_keyctl, SYS_personality,
		SYS_kill, SYS_socketpair, SYS_listen, SYS_chmod, SYS_fchmod, SYS_unlinkat, SYS_renameat,
		SYS_open_by_handle_at, SYS_memfd_create, SYS_getppid, SYS_uname, SYS_reboot,
#ifdef SYS_fork
		SYS_fork, SYS_vfork, SYS_open, SYS_creat,
#endif
	};

	build();
	for (size_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++)
		ck_assert_msg(verdict(nrs[i], 0, 0, 0) == SECCOMP_RET_TRAP, "system call %d", nrs[i]);
	ck_assert_uint_eq(verdict(4095, 0, 0, 0), SECCOMP_RET_TRAP);
}
END_TEST

START_TEST(other_arch_killed)
{
	build();
	ck_assert_uint_eq(verdict_arch(AUDIT_ARCH_I386, SYS_read, 0, 0, 0), SECCOMP_RET_KILL_PROCESS);
	ck_assert_uint_eq(verdict_arch(AUDIT_ARCH_ARM, SYS_read, 0, 0, 0), SECCOMP_RET_KILL_PROCESS);
#ifdef __x86_64__
	/* x32 numbers: the same calls with the x32 bit set */
	ck_assert_uint_eq(verdict(0x40000000 | SYS_read, 0, 0, 0), SECCOMP_RET_KILL_PROCESS);
#endif
}
END_TEST

START_TEST(socket_families)
{
	build();
	ck_assert_uint_eq(verdict(SYS_socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_socket, AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_socket, AF_INET6, SOCK_DGRAM, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_socket, AF_UNIX, SOCK_STREAM, 0), SECCOMP_RET_ALLOW);
	/* nothing raw, no packet sockets, no netlink (routes, firewall) */
	ck_assert_uint_eq(verdict(SYS_socket, AF_INET, SOCK_RAW, IPPROTO_RAW), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_socket, AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_socket, AF_NETLINK, SOCK_RAW, 0), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_socket, AF_NETLINK, SOCK_DGRAM, 0), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_socket, AF_PACKET, SOCK_DGRAM, 0), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_socket, AF_INET, SOCK_SEQPACKET, 0), SECCOMP_RET_TRAP);
}
END_TEST

START_TEST(setsockopt_options)
{
	build();
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, SOL_SOCKET, SO_MARK), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, SOL_SOCKET, SO_REUSEADDR), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_TCP, 1 /* TCP_NODELAY */), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IP, IP_TRANSPARENT), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IPV6, IPV6_TRANSPARENT), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR), SECCOMP_RET_ALLOW);
	/* x_tables: IPT_SO_SET_REPLACE 64, ARPT_ 96, EBT_ 128, IP_VS_ 1152; IP6T_SO_SET_* 64, 65 */
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IP, 64), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IP, 65), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IP, 96), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IP, 128), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IP, 1152), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IPV6, 64), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_setsockopt, 3, IPPROTO_IPV6, 65), SECCOMP_RET_TRAP);
}
END_TEST

START_TEST(files_read_only)
{
	build();
	ck_assert_uint_eq(verdict(SYS_openat, (uint64_t)AT_FDCWD, 0, O_RDONLY | O_CLOEXEC), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_openat, (uint64_t)AT_FDCWD, 0, O_RDONLY | O_NONBLOCK), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_openat, (uint64_t)AT_FDCWD, 0, O_WRONLY), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_openat, (uint64_t)AT_FDCWD, 0, O_RDWR), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_openat, (uint64_t)AT_FDCWD, 0, O_RDONLY | O_CREAT), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_openat, (uint64_t)AT_FDCWD, 0, O_RDONLY | O_TRUNC), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_openat, (uint64_t)AT_FDCWD, 0, O_WRONLY | O_CREAT | O_APPEND), SECCOMP_RET_TRAP);
}
END_TEST

START_TEST(memory_not_executable)
{
	build();
	ck_assert_uint_eq(verdict(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_mmap, 0, 4096, PROT_NONE), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_mprotect, 0, 4096, PROT_READ), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_mprotect, 0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC), SECCOMP_RET_TRAP);
}
END_TEST

START_TEST(ioctl_and_tgkill)
{
	build();
	ck_assert_uint_eq(verdict(SYS_ioctl, 5, SIOCGIFNAME, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_ioctl, 5, SIOCGIFMTU, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_ioctl, 2, TCGETS, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_ioctl, 5, SIOCSIFMTU, 0), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_ioctl, 5, SIOCSIFFLAGS, 0), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_ioctl, 5, SIOCSIFADDR, 0), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_ioctl, 0, TIOCSTI, 0), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_ioctl, 5, FIONBIO, 0), SECCOMP_RET_TRAP);
	/* abort() signals its own process; no other */
	ck_assert_uint_eq(verdict(SYS_tgkill, 4242, 4242, SIGABRT), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(verdict(SYS_tgkill, 1, 1, SIGKILL), SECCOMP_RET_TRAP);
	ck_assert_uint_eq(verdict(SYS_tgkill, 4243, 4243, SIGTERM), SECCOMP_RET_TRAP);
}
END_TEST

/*
 * Fork a child that installs the real filter (no_new_privs first, as the
 * daemon does), makes allowed calls, then @nr unless it is -1. Returns the
 * child's wait status; its stderr in @out.
 */
static int child_with_filter(long nr, char *out, size_t outlen)
{
	int pfd[2], status = 0;
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct filter f;
		char err[256], rnd[16];
		void *p;

		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0, 0, 0) < 0 || filter_build(&f, getpid(), err, sizeof(err)) < 0 ||
		    seccomp_install(&f, err, sizeof(err)) < 0) {
			dprintf(STDERR_FILENO, "setup: %s\n", err);
			syscall(SYS_exit_group, 3);
		}
		/* what the loop does: memory, random numbers, a write */
		p = malloc(100000);
		if (!p || syscall(SYS_getrandom, rnd, sizeof(rnd), 0) != (long)sizeof(rnd))
			syscall(SYS_exit_group, 4);
		free(p);
		(void)syscall(SYS_write, STDERR_FILENO, "alive\n", 6);
		if (nr >= 0)
			(void)syscall(nr);
		syscall(SYS_exit_group, 0);
	}
	close(pfd[1]);
	while (got < outlen - 1 && (n = read(pfd[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

START_TEST(installed_filter_allows_the_loop)
{
	char out[512];
	int st = child_with_filter(-1, out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr: %s", st, out);
	ck_assert_str_eq(out, "alive\n");
}
END_TEST

START_TEST(installed_filter_traps_with_one_line)
{
	char out[512], want[128];
	int st = child_with_filter(SYS_getppid, out, sizeof(out));

	snprintf(want, sizeof(want), "alive\ndotproxy: seccomp: system call %d is not allowed (please report)\n",
		 (int)SYS_getppid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x, stderr: %s", st, out);
	ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(caps_per_mode)
{
	char names[128];

	ck_assert_uint_eq(caps_for_mode(MODE_TPROXY), CAPBIT(CAP_NET_ADMIN) | CAPBIT(CAP_NET_BIND_SERVICE));
	ck_assert_uint_eq(caps_for_mode(MODE_REDIRECT), CAPBIT(CAP_NET_ADMIN));
	ck_assert_uint_eq(caps_for_mode(MODE_NFQUEUE), CAPBIT(CAP_NET_ADMIN));
	/* the values /proc/PID/status shows (CapEff), as the README tells users to check */
	ck_assert_uint_eq(caps_for_mode(MODE_TPROXY), 0x1400);
	ck_assert_uint_eq(caps_for_mode(MODE_REDIRECT), 0x1000);
	ck_assert_str_eq(caps_names(caps_for_mode(MODE_TPROXY), names, sizeof(names)),
			 "cap_net_bind_service,cap_net_admin");
	ck_assert_str_eq(caps_names(0, names, sizeof(names)), "none");
	ck_assert_str_eq(caps_names(CAPBIT(CAP_SYS_ADMIN), names, sizeof(names)), "cap_21");
}
END_TEST

START_TEST(user_rule)
{
	struct config cfg;
	struct privs_user u;
	char err[256] = "";
	struct passwd *pw;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.user, "no-such-user-dotproxy-test");
	ck_assert_int_eq(resolve_user(&cfg, &u, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "--user \"no-such-user-dotproxy-test\": no such user");

	pw = getpwnam("nobody");
	if (pw) {
		uid_t uid = pw->pw_uid;

		strcpy(cfg.user, "nobody");
		ck_assert_int_eq(resolve_user(&cfg, &u, err, sizeof(err)), 0);
		ck_assert_str_eq(u.name, "nobody");
		ck_assert_uint_eq(u.uid, uid);
		ck_assert_int_ge(u.ngroups, 1);
	}

	/* default: as root dotproxy if it exists, else nobody; otherwise whoever we are */
	cfg.user[0] = '\0';
	ck_assert_int_eq(resolve_user(&cfg, &u, err, sizeof(err)), 0);
	if (geteuid() != 0) {
		ck_assert_uint_eq(u.uid, geteuid());
		ck_assert(!u.switch_to);
	} else {
		ck_assert_str_eq(u.name, getpwnam("dotproxy") ? "dotproxy" : "nobody");
		ck_assert(u.switch_to);
	}
}
END_TEST

static int parse(struct config *c, char *err, size_t errlen, ...)
{
	char *argv[16] = { "dotproxy" };
	int argc = 1;
	va_list ap;

	va_start(ap, errlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	return config_parse_args(c, argc, argv, err, errlen);
}

START_TEST(user_flag)
{
	static struct config c;
	char err[256];
	char long_name[80];

	ck_assert_int_eq(parse(&c, err, sizeof(err), (char *)NULL), 0);
	ck_assert_str_eq(c.user, "");
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--user", "nobody", (char *)NULL), 0);
	ck_assert_str_eq(c.user, "nobody");
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--user", "", (char *)NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--user"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--user", long_name, (char *)NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "1-63 characters"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("privs");
	TCase *tc = tcase_create("privs");

	tcase_add_test(tc, filter_shape);
	tcase_add_test(tc, listed_calls_allowed);
	tcase_add_test(tc, dangerous_calls_trap);
	tcase_add_test(tc, other_arch_killed);
	tcase_add_test(tc, socket_families);
	tcase_add_test(tc, setsockopt_options);
	tcase_add_test(tc, files_read_only);
	tcase_add_test(tc, memory_not_executable);
	tcase_add_test(tc, ioctl_and_tgkill);
	tcase_add_test(tc, installed_filter_allows_the_loop);
	tcase_add_test(tc, installed_filter_traps_with_one_line);
	tcase_add_test(tc, caps_per_mode);
	tcase_add_test(tc, user_rule);
	tcase_add_test(tc, user_flag);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
