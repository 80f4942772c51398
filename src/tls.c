/*
 * tls.c - OpenSSL contexts and peer checks for DoT upstreams. Never accepts
 * an unverified certificate: there is no option to turn verification off.
 */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *tls_error_string(void)
{
	static char buf[256];
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "no TLS error";
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

SSL_CTX *tls_ctx_new(const char *ca_file, int (*new_session)(SSL *, SSL_SESSION *),
		     char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, errlen, "cannot create TLS context: %s", tls_error_string());
		return NULL;
	}
	/* RFC 8310 / BCP 195: TLS 1.2 at least, 1.3 preferred by the handshake */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* answers arrive many to a segment: read whole segments, not a record header at a time */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (ca_file) {
		FILE *f = fopen(ca_file, "r");

		if (!f) {
			snprintf(err, errlen, "--ca-file \"%s\": %s", ca_file, strerror(errno));
			SSL_CTX_free(ctx);
			return NULL;
		}
		fclose(f);
		ERR_clear_error();
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "--ca-file \"%s\": cannot load CA certificates: %s",
				 ca_file, tls_error_string());
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "cannot load the system CA store: %s", tls_error_string());
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* sessions are kept per upstream by the pool, not in OpenSSL's cache */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	return ctx;
}

int tls_ctx_client_cert(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "--client-cert \"%s\": cannot load the certificate: %s", cert,
			 tls_error_string());
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "--client-key \"%s\": cannot load the private key: %s", key,
			 tls_error_string());
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "--client-key \"%s\": does not match --client-cert \"%s\"", key, cert);
		return -1;
	}
	return 0;
}

SSL *tls_new(SSL_CTX *ctx, const struct upstream_cfg *u, int fd, SSL_SESSION *resume)
{
	SSL *ssl = SSL_new(ctx);

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1 || SSL_set1_host(ssl, u->name) != 1 ||
	    SSL_set_tlsext_host_name(ssl, u->name) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (resume)
		SSL_set_session(ssl, resume);
	SSL_set_connect_state(ssl);
	return ssl;
}

int tls_spki_sha256(X509 *cert, uint8_t out[CFG_PIN_LEN])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	int rc;

	if (len <= 0)
		return -1;
	rc = EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == CFG_PIN_LEN ? 0 : -1;
	OPENSSL_free(der);
	return rc;
}

int tls_check_peer(SSL *ssl, const struct upstream_cfg *u, struct tls_spki_set *spki,
		   char *err, size_t errlen)
{
	long vr = SSL_get_verify_result(ssl);

	if (!SSL_get0_peer_certificate(ssl)) {
		snprintf(err, errlen, "no certificate");
		return -1;
	}
	if (vr != X509_V_OK) {
		snprintf(err, errlen, "certificate: %s", X509_verify_cert_error_string(vr));
		return -1;
	}
	if (!SSL_session_reused(ssl)) {
		/* the path OpenSSL built and verified, not the list the server sent */
		STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);

		if (!chain) {
			snprintf(err, errlen, "no verified chain");
			return -1;
		}
		spki->n = 0;
		for (int i = 0; i < sk_X509_num(chain) && spki->n < TLS_CHAIN_MAX; i++)
			if (tls_spki_sha256(sk_X509_value(chain, i), spki->h[spki->n]) == 0)
				spki->n++;
	}
	if (u->npins == 0)
		return 0;
	for (int i = 0; i < spki->n; i++)
		for (int j = 0; j < u->npins; j++)
			if (memcmp(spki->h[i], u->pins[j], CFG_PIN_LEN) == 0)
				return 0;
	snprintf(err, errlen, "no SPKI pin matches the verified certificate chain");
	return -1;
}
