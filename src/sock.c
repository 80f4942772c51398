/*
 * sock.c - socket address parsing and the few socket set-ups every module shares.
 */
#define _GNU_SOURCE
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v;

	if (!*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int sock_parse(const char *s, char sep, uint16_t defport, union sockaddr_any *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *portp = NULL;
	size_t hlen;
	uint16_t port = defport;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		s++;
		if (close[1] == sep)
			portp = close + 2;
		else if (close[1])
			return -EINVAL;
	} else {
		const char *p = strrchr(s, sep);

		/* with ':' as separator an unbracketed IPv6 address has no port */
		if (p && sep == ':' && strchr(s, ':') != p)
			p = NULL;
		hlen = p ? (size_t)(p - s) : strlen(s);
		if (p)
			portp = p + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (portp && parse_port(portp, &port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &out->sin.sin_addr) == 1) {
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &out->sin6.sin6_addr) == 1) {
		out->sin6.sin6_family = AF_INET6;
		out->sin6.sin6_port = htons(port);
		return 0;
	}
	return -EINVAL;
}

const char *sock_ntop(const union sockaddr_any *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->sin6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6.sin6_port));
	} else if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->sin.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(a->sin.sin_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

uint16_t sock_port(const union sockaddr_any *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->sin6.sin6_port : a->sin.sin_port);
}

bool sock_equal(const union sockaddr_any *a, const union sockaddr_any *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->sin.sin_port == b->sin.sin_port &&
		       a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
	return a->sin6.sin6_port == b->sin6.sin6_port &&
	       memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

size_t sock_pktinfo(void *cbuf, int family, const union sockaddr_any *src, int ifindex)
{
	struct cmsghdr *cm = cbuf;

	_Static_assert(CMSG_SPACE(sizeof(struct in6_pktinfo)) <= SOCK_PKTINFO_SPACE, "SOCK_PKTINFO_SPACE");
	memset(cbuf, 0, SOCK_PKTINFO_SPACE);
	if (family == AF_INET6) {
		struct in6_pktinfo pi = { .ipi6_ifindex = (unsigned)ifindex };

		if (src)
			pi.ipi6_addr = src->sin6.sin6_addr;
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	} else {
		struct in_pktinfo pi = { .ipi_ifindex = ifindex };

		if (src)
			pi.ipi_spec_dst = src->sin.sin_addr;
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
}

int sock_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int sock_listen(const union sockaddr_any *addr, int type, bool transparent)
{
	int one = 1, fd, err;
	int v6 = addr->sa.sa_family == AF_INET6;

	fd = socket(addr->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* TCP: restart through TIME_WAIT. Not UDP, where it would let a second daemon share the port */
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (transparent) {
		if (v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
		       : setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one)))
			goto fail;
	}
	if (type == SOCK_DGRAM) {
		int rcvbuf = SOCK_UDP_RCVBUF;

		/* absorb bursts: the default (~208 KiB) overflows at a few hundred queries in flight */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		/* the address each datagram was sent to: to answer from it */
		if (v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one))
		       : setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)))
			goto fail;
		if (transparent &&
		    (v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one))
			: setsockopt(fd, IPPROTO_IP, IP_RECVORIGDSTADDR, &one, sizeof(one))))
			goto fail;
	}
	if (bind(fd, &addr->sa, sock_len(addr)) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}
