/*
 * sock.h - socket addresses and socket options shared by every module.
 */
#ifndef DOTPROXY_SOCK_H
#define DOTPROXY_SOCK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

#define SOCK_ADDRSTRLEN 64	/* "[v6]:port" */
#define SOCK_UDP_RCVBUF (4 << 20)	/* receive buffer of UDP listeners */

static inline socklen_t sock_len(const union sockaddr_any *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->sin6) : sizeof(a->sin);
}

/*
 * Parse "IP", "IP<sep>PORT", "[IPv6]" or "[IPv6]<sep>PORT" into @out.
 * With sep '@' an IPv6 address needs no brackets. Returns 0 or -EINVAL.
 */
int sock_parse(const char *s, char sep, uint16_t defport, union sockaddr_any *out);

/* "1.2.3.4:53" or "[2001:db8::1]:53" into @buf (SOCK_ADDRSTRLEN). */
const char *sock_ntop(const union sockaddr_any *a, char *buf, size_t len);

uint16_t sock_port(const union sockaddr_any *a);
bool sock_equal(const union sockaddr_any *a, const union sockaddr_any *b);

/* Room for the control message sock_pktinfo() writes. */
#define SOCK_PKTINFO_SPACE 64

/*
 * Write an IP_PKTINFO or IPV6_PKTINFO control message for @family into @cbuf
 * (SOCK_PKTINFO_SPACE bytes, cmsghdr-aligned): send from @src (NULL: the kernel
 * picks) out of interface @ifindex (0: routing picks). Returns the length for
 * msg_controllen.
 */
size_t sock_pktinfo(void *cbuf, int family, const union sockaddr_any *src, int ifindex);

/* Make @fd non-blocking and close-on-exec. Returns 0 or -errno. */
int sock_nonblock(int fd);

/*
 * Open a bound listening or datagram socket on @addr (SOCK_STREAM listens).
 * @transparent sets IP(V6)_TRANSPARENT and the options TPROXY needs.
 * Returns the fd or -errno.
 */
int sock_listen(const union sockaddr_any *addr, int type, bool transparent);

#endif
