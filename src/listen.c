/*
 * listen.c - opening the front-ends' listening sockets: which addresses,
 * which options, and one clear line when that fails. Registers nothing in
 * the loop; each front-end does that with its own callback.
 */
#include "listen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* --listen, or every address on --port (IPv4 and IPv6). */
static int listen_addrs(const struct config *cfg, union sockaddr_any *out)
{
	if (cfg->nlisten) {
		memcpy(out, cfg->listen, sizeof(cfg->listen[0]) * (size_t)cfg->nlisten);
		return cfg->nlisten;
	}
	memset(out, 0, 2 * sizeof(*out));
	out[0].sin.sin_family = AF_INET;
	out[0].sin.sin_port = htons(cfg->port);
	out[1].sin6.sin6_family = AF_INET6;
	out[1].sin6.sin6_port = htons(cfg->port);
	return 2;
}

void listen_close(struct listen_sock *socks, int n)
{
	for (int i = 0; i < n; i++)
		close(socks[i].fd);
}

int listen_open(const struct config *cfg, int type, struct listen_sock *out, char *err, size_t errlen)
{
	union sockaddr_any addrs[CFG_MAX_LISTEN];
	int n = listen_addrs(cfg, addrs), nout = 0;

	for (int i = 0; i < n; i++) {
		char a[SOCK_ADDRSTRLEN];
		int fd = sock_listen(&addrs[i], type, cfg->mode != MODE_REDIRECT);

		if (fd == -EAFNOSUPPORT && !cfg->nlisten) {
			if (type == SOCK_DGRAM || cfg->mode == MODE_NFQUEUE)	/* once, not per socket type */
				log_warnx("IPv6 is not available: listening on IPv4 only");
			continue;
		}
		if (fd < 0) {
			snprintf(err, errlen, "cannot listen on %s %s: %s%s", type == SOCK_DGRAM ? "UDP" : "TCP",
				 sock_ntop(&addrs[i], a, sizeof(a)), strerror(-fd),
				 fd == -EPERM ? " (tproxy mode needs root or CAP_NET_ADMIN)" : "");
			listen_close(out, nout);
			return -1;
		}
		out[nout].fd = fd;
		out[nout].addr = addrs[i];
		nout++;
	}
	return nout;
}
