/*
 * bench/nodelay.c: an LD_PRELOAD shim for the benchmark's DNS-over-TLS peers (bench/run.sh).
 *
 * Owns one thing: TCP_NODELAY on every TCP socket the process connects or listens on (Linux
 * copies it to the sockets accept() returns). Unbound 1.17, dnsdist 1.7 and stubby 1.6 leave
 * Nagle's algorithm on for their DNS-over-TLS connections, so a message written while an
 * earlier segment waits for its delayed ACK sits for up to 40 ms; dotproxy sets TCP_NODELAY
 * itself. Must never change the outcome of the call it wraps: a failing getsockopt or
 * setsockopt is ignored, and errno is the wrapped call's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*listen_fn)(int, int);

/* nodelay: TCP_NODELAY on fd if it is an IPv4 or IPv6 stream socket; errno left as it was. */
static void nodelay(int fd)
{
	int saved = errno, type = 0, domain = 0, one = 1;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
	    (len = sizeof(domain), getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) == 0 &&
	    (domain == AF_INET || domain == AF_INET6))
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	errno = saved;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	static connect_fn real;

	if (!real)
		real = (connect_fn)dlsym(RTLD_NEXT, "connect");
	nodelay(fd);
	return real(fd, addr, len);
}

int listen(int fd, int backlog)
{
	static listen_fn real;

	if (!real)
		real = (listen_fn)dlsym(RTLD_NEXT, "listen");
	nodelay(fd);
	return real(fd, backlog);
}
