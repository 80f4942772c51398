/*
 * tls.h - OpenSSL set-up for DoT upstreams (RFC 8310 strict profile):
 * TLS 1.2 or later, chain verified against the CA store, the auth name
 * verified and sent as SNI, SPKI pins (RFC 7858 4.2) on every handshake.
 */
#ifndef DOTPROXY_TLS_H
#define DOTPROXY_TLS_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * A client context verifying peers against @ca_file (NULL: the system store).
 * @new_session is called with each session ticket the server sends.
 * Returns NULL with one line in @err.
 */
SSL_CTX *tls_ctx_new(const char *ca_file, int (*new_session)(SSL *, SSL_SESSION *),
		     char *err, size_t errlen);

/*
 * Show upstreams that ask for one the certificate chain in @cert (PEM) with
 * the private key in @key. Returns -1 with one line in @err.
 */
int tls_ctx_client_cert(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen);

/* A connection object for @u, verifying its auth name and sending it as SNI. */
SSL *tls_new(SSL_CTX *ctx, const struct upstream_cfg *u, int fd, SSL_SESSION *resume);

#define TLS_CHAIN_MAX 10	/* certificates of a verified chain we remember */

/* SHA-256 of each SubjectPublicKeyInfo of a verified chain (RFC 7858 4.2). */
struct tls_spki_set {
	int n;
	uint8_t h[TLS_CHAIN_MAX][CFG_PIN_LEN];
};

/*
 * After a completed handshake: the chain verified and, if @u has pins, one
 * of them matches an SPKI of the chain OpenSSL *verified* (never merely one
 * the server sent along). On a full handshake @spki receives that chain's
 * SPKIs; a resumed handshake verifies no chain, so @spki must then hold the
 * set recorded when the session was first verified. Returns 0 or -1 with the
 * reason in @err.
 */
int tls_check_peer(SSL *ssl, const struct upstream_cfg *u, struct tls_spki_set *spki,
		   char *err, size_t errlen);

/* SHA-256 of @cert's SubjectPublicKeyInfo. Returns 0 or -1. */
int tls_spki_sha256(X509 *cert, uint8_t out[CFG_PIN_LEN]);

/* The newest OpenSSL error as a string, for logs. */
const char *tls_error_string(void);

/*
 * Empty this thread's OpenSSL error queue before an SSL call, so that
 * SSL_get_error() reads only that call's errors. Looks before it clears:
 * clearing walks the whole queue, and the queue is almost always empty.
 */
static inline void tls_clear_errors(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

#endif
