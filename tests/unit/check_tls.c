/*
 * check_tls.c - the upstream TLS rules with real handshakes over a
 * socketpair: a CA and server certificates made here, the client set up by
 * tls.c. Covers the auth name, the CA, SPKI pins (RFC 7858 4.2) and pins on
 * resumed sessions.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "testcert.h"
#include "tls.h"
#include "unit.h"

static EVP_PKEY *ca_key, *srv_key, *other_ca_key, *evil_key;
static X509 *ca_cert, *srv_cert, *other_ca_cert, *evil_cert;
static char ca_path[64], other_ca_path[64];
static SSL_SESSION *saved;
static SSL_CTX *sctx;		/* one server: its ticket keys let sessions resume */
static SSL_CTX *evil_sctx;	/* a mis-issued leaf for the same name, the pinned one sent along */
static const char *client_cert, *client_key;	/* --client-cert/--client-key of the next client */
static int server_accepted;	/* the server side of the latest handshake completed */

static int keep_session(SSL *ssl, SSL_SESSION *s)
{
	(void)ssl;
	if (saved)
		SSL_SESSION_free(saved);
	saved = s;
	return 1;
}

static SSL_CTX *server_ctx(void);

static void setup_certs(void)
{
	int fd;

	ca_key = EVP_EC_gen("P-256");
	srv_key = EVP_EC_gen("P-256");
	other_ca_key = EVP_EC_gen("P-256");
	ca_cert = testcert_make(ca_key, "dotproxy test CA", NULL, ca_key, 1);
	other_ca_cert = testcert_make(other_ca_key, "unrelated CA", NULL, other_ca_key, 1);
	srv_cert = testcert_make(srv_key, "dot.dotproxy.test", ca_cert, ca_key, 0);
	evil_key = EVP_EC_gen("P-256");
	evil_cert = testcert_make(evil_key, "dot.dotproxy.test", ca_cert, ca_key, 0);
	strcpy(ca_path, "/tmp/check_tls_ca.XXXXXX");
	fd = mkstemp(ca_path);
	close(fd);
	testcert_write_pem(ca_path, ca_cert);
	strcpy(other_ca_path, "/tmp/check_tls_other.XXXXXX");
	fd = mkstemp(other_ca_path);
	close(fd);
	testcert_write_pem(other_ca_path, other_ca_cert);
	sctx = server_ctx();
	/* the attacker's own leaf (the CA accepts it), with the pinned certificate appended */
	evil_sctx = SSL_CTX_new(TLS_server_method());
	ck_assert_int_eq(SSL_CTX_use_certificate(evil_sctx, evil_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(evil_sctx, evil_key), 1);
	ck_assert_int_eq(SSL_CTX_add1_chain_cert(evil_sctx, ca_cert), 1);
	ck_assert_int_eq(SSL_CTX_add1_chain_cert(evil_sctx, srv_cert), 1);
}

static void teardown_certs(void)
{
	SSL_CTX_free(sctx);
	SSL_CTX_free(evil_sctx);
	X509_free(evil_cert);
	EVP_PKEY_free(evil_key);
	unlink(ca_path);
	unlink(other_ca_path);
	X509_free(ca_cert);
	X509_free(srv_cert);
	X509_free(other_ca_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(other_ca_key);
	if (saved)
		SSL_SESSION_free(saved);
	saved = NULL;
}

static SSL_CTX *server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, srv_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, srv_key), 1);
	ck_assert_int_eq(SSL_CTX_add1_chain_cert(ctx, ca_cert), 1);
	return ctx;
}

/*
 * Handshake a client for @u (verifying with @ca) against our server over a
 * socketpair, then read once so TLS 1.3 tickets arrive. Returns 1 if the
 * handshake completed and tls_check_peer accepted; *resumed tells whether
 * the session was resumed.
 */
static int connect_to(SSL_CTX *server, const char *ca, const struct upstream_cfg *u, SSL_SESSION *resume,
		      struct tls_spki_set *spki, int *resumed)
{
	char err[256];
	SSL_CTX *cctx = tls_ctx_new(ca, keep_session, err, sizeof(err));
	SSL *c, *s;
	int sv[2], cdone = 0, sdone = 0, ok = 0;

	ck_assert_msg(cctx != NULL, "%s", err);
	if (client_cert)
		ck_assert_msg(tls_ctx_client_cert(cctx, client_cert, client_key, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	c = tls_new(cctx, u, sv[0], resume);
	ck_assert_ptr_nonnull(c);
	s = SSL_new(server);
	SSL_set_fd(s, sv[1]);
	SSL_set_accept_state(s);
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(c);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			int r = SSL_do_handshake(s);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	server_accepted = sdone;
	if (cdone) {
		char buf[16];

		ok = tls_check_peer(c, u, spki, err, sizeof(err)) == 0;
		*resumed = SSL_session_reused(c);
		/* let the server's session tickets reach the client */
		SSL_write(s, "x", 1);
		SSL_read(c, buf, sizeof(buf));
		/* a clean close, as the pool does: OpenSSL won't resume a session freed without one */
		SSL_shutdown(c);
	}
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	return ok;
}

static struct tls_spki_set last_spki;	/* what the latest full handshake verified */

static int connect_once(const char *ca, const struct upstream_cfg *u, SSL_SESSION *resume, int *resumed)
{
	return connect_to(sctx, ca, u, resume, &last_spki, resumed);
}

static void upstream(struct upstream_cfg *u, const char *name)
{
	char err[256];
	char spec[300];

	snprintf(spec, sizeof(spec), "192.0.2.1@853#%s", name);
	ck_assert_msg(config_parse_upstream(spec, u, err, sizeof(err)) == 0, "%s", err);
}

/* "sha256/BASE64" of @key's SPKI, computed from the key (not the certificate). */
static void pin_of(EVP_PKEY *key, char *out, size_t len)
{
	unsigned char *der = NULL, md[32], b64[64];
	unsigned int mdlen;
	int n = i2d_PUBKEY(key, &der);

	ck_assert_int_gt(n, 0);
	EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	EVP_EncodeBlock(b64, md, 32);
	snprintf(out, len, "sha256/%s", b64);
}

static void add_pin(struct upstream_cfg *u, EVP_PKEY *key)
{
	char pin[80], err[200];

	pin_of(key, pin, sizeof(pin));
	ck_assert_msg(config_parse_pin(pin, u->pins[u->npins], err, sizeof(err)) == 0, "%s", err);
	u->npins++;
}

START_TEST(spki_hash_matches_the_key)
{
	uint8_t h[CFG_PIN_LEN], want[CFG_PIN_LEN];
	struct upstream_cfg u;

	upstream(&u, "dot.dotproxy.test");
	add_pin(&u, srv_key);
	memcpy(want, u.pins[0], CFG_PIN_LEN);
	ck_assert_int_eq(tls_spki_sha256(srv_cert, h), 0);
	ck_assert_mem_eq(h, want, CFG_PIN_LEN);
}
END_TEST

START_TEST(verified_name_and_ca_are_accepted)
{
	struct upstream_cfg u;
	int resumed;

	upstream(&u, "dot.dotproxy.test");
	ck_assert_int_eq(connect_once(ca_path, &u, NULL, &resumed), 1);
}
END_TEST

START_TEST(wrong_auth_name_is_rejected)
{
	struct upstream_cfg u;
	int resumed;

	upstream(&u, "wrong.dotproxy.test");
	ck_assert_int_eq(connect_once(ca_path, &u, NULL, &resumed), 0);
}
END_TEST

START_TEST(wrong_ca_is_rejected)
{
	struct upstream_cfg u;
	int resumed;

	upstream(&u, "dot.dotproxy.test");
	ck_assert_int_eq(connect_once(other_ca_path, &u, NULL, &resumed), 0);
}
END_TEST

START_TEST(pin_of_leaf_or_ca_is_accepted)
{
	struct upstream_cfg u;
	int resumed;

	upstream(&u, "dot.dotproxy.test");
	add_pin(&u, srv_key);
	ck_assert_int_eq(connect_once(ca_path, &u, NULL, &resumed), 1);
	upstream(&u, "dot.dotproxy.test");
	add_pin(&u, ca_key);	/* RFC 7858 4.2: any SPKI in the chain */
	ck_assert_int_eq(connect_once(ca_path, &u, NULL, &resumed), 1);
}
END_TEST

START_TEST(wrong_pin_is_rejected)
{
	struct upstream_cfg u;
	int resumed;

	upstream(&u, "dot.dotproxy.test");
	add_pin(&u, other_ca_key);
	ck_assert_int_eq(connect_once(ca_path, &u, NULL, &resumed), 0);
}
END_TEST

START_TEST(pinned_cert_sent_along_does_not_satisfy_the_pin)
{
	struct upstream_cfg u;
	struct tls_spki_set spki = { 0 };
	int resumed;

	upstream(&u, "dot.dotproxy.test");
	add_pin(&u, srv_key);
	/* the chain verifies (the CA signed the attacker's leaf), but the pinned key is not in it */
	ck_assert_int_eq(connect_to(evil_sctx, ca_path, &u, NULL, &spki, &resumed), 0);
	ck_assert_int_eq(spki.n, 2);	/* leaf + CA: the extra certificate is not part of the path */
	/* pinning the CA instead is satisfied by the same server */
	upstream(&u, "dot.dotproxy.test");
	add_pin(&u, ca_key);
	ck_assert_int_eq(connect_to(evil_sctx, ca_path, &u, NULL, &spki, &resumed), 1);
}
END_TEST

START_TEST(resumed_session_is_still_pin_checked)
{
	struct upstream_cfg good, bad;
	int resumed = 0;

	upstream(&good, "dot.dotproxy.test");
	add_pin(&good, srv_key);
	ck_assert_int_eq(connect_once(ca_path, &good, NULL, &resumed), 1);
	ck_assert_ptr_nonnull(saved);
	{
		SSL_SESSION *s = saved;

		saved = NULL;
		/* same server, a pin set that no longer matches: resumption must not skip the check */
		upstream(&bad, "dot.dotproxy.test");
		add_pin(&bad, other_ca_key);
		ck_assert_int_eq(connect_once(ca_path, &bad, s, &resumed), 0);
		ck_assert_int_eq(resumed, 1);
		SSL_SESSION_free(s);
		/* TLS 1.3 tickets are single-use: resume with the newest, as the pool does */
		ck_assert_ptr_nonnull(saved);
		s = saved;
		saved = NULL;
		ck_assert_int_eq(connect_once(ca_path, &good, s, &resumed), 1);
		ck_assert_int_eq(resumed, 1);
		SSL_SESSION_free(s);
	}
}
END_TEST

START_TEST(unloadable_ca_file_is_a_clear_error)
{
	char err[256] = "";
	SSL_CTX *ctx = tls_ctx_new("/nonexistent/ca.pem", keep_session, err, sizeof(err));

	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "--ca-file \"/nonexistent/ca.pem\""));
	ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

/* PEM files for a client certificate issued by @issuer (@ikey) and its key; paths in @cert, @key. */
static void write_client(char *cert, char *key, X509 *issuer, EVP_PKEY *ikey, EVP_PKEY **k, X509 **x)
{
	FILE *f;
	int fd;

	*k = EVP_EC_gen("P-256");
	*x = testcert_make(*k, "client.dotproxy.test", issuer, ikey, 0);
	strcpy(cert, "/tmp/check_tls_ccert.XXXXXX");
	close(mkstemp(cert));
	testcert_write_pem(cert, *x);
	strcpy(key, "/tmp/check_tls_ckey.XXXXXX");
	fd = mkstemp(key);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PrivateKey(f, *k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

START_TEST(client_certificate_is_shown_to_a_server_that_asks)
{
	struct upstream_cfg u;
	char cert[64], key[64], cert2[64], key2[64], err[256];
	EVP_PKEY *k, *k2;
	X509 *x, *x2;
	SSL_CTX *asks = server_ctx(), *cctx;
	int resumed;

	/* a server that wants a client certificate from our CA */
	X509_STORE_add_cert(SSL_CTX_get_cert_store(asks), ca_cert);
	SSL_CTX_set_verify(asks, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	upstream(&u, "dot.dotproxy.test");
	write_client(cert, key, ca_cert, ca_key, &k, &x);
	write_client(cert2, key2, other_ca_cert, other_ca_key, &k2, &x2);
	/* (TLS 1.3: the client is done before the server has judged its certificate) */
	connect_to(asks, ca_path, &u, NULL, &last_spki, &resumed);	/* none */
	ck_assert_int_eq(server_accepted, 0);
	client_cert = cert;
	client_key = key;
	ck_assert_int_eq(connect_to(asks, ca_path, &u, NULL, &last_spki, &resumed), 1);
	ck_assert_int_eq(server_accepted, 1);
	client_cert = cert2;	/* one the server's CA did not issue */
	client_key = key2;
	connect_to(asks, ca_path, &u, NULL, &last_spki, &resumed);
	ck_assert_int_eq(server_accepted, 0);
	client_cert = NULL;
	/* a key that is not the certificate's: said at once */
	cctx = tls_ctx_new(ca_path, keep_session, err, sizeof(err));
	ck_assert_int_eq(tls_ctx_client_cert(cctx, cert, key2, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "--client-key") != NULL && strstr(err, "mismatch") != NULL, "%s", err);
	ck_assert_int_eq(tls_ctx_client_cert(cctx, "/nonexistent.pem", key, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "--client-cert \"/nonexistent.pem\"") != NULL, "%s", err);
	SSL_CTX_free(cctx);
	SSL_CTX_free(asks);
	unlink(cert);
	unlink(key);
	unlink(cert2);
	unlink(key2);
	X509_free(x);
	X509_free(x2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("upstream");

	tcase_add_checked_fixture(tc, setup_certs, teardown_certs);
	tcase_add_test(tc, spki_hash_matches_the_key);
	tcase_add_test(tc, verified_name_and_ca_are_accepted);
	tcase_add_test(tc, wrong_auth_name_is_rejected);
	tcase_add_test(tc, wrong_ca_is_rejected);
	tcase_add_test(tc, pin_of_leaf_or_ca_is_accepted);
	tcase_add_test(tc, wrong_pin_is_rejected);
	tcase_add_test(tc, pinned_cert_sent_along_does_not_satisfy_the_pin);
	tcase_add_test(tc, resumed_session_is_still_pin_checked);
	tcase_add_test(tc, unloadable_ca_file_is_a_clear_error);
	tcase_add_test(tc, client_certificate_is_shown_to_a_server_that_asks);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
