/*
 * check_siphash.c - src/siphash.c against the reference vectors of the
 * SipHash paper (Aumasson, Bernstein 2012, appendix A; the 64-bit outputs of
 * its vectors.h): key 00 01 .. 0f, inputs 00 01 .. (n-1).
 */
#include <check.h>

#include "siphash.h"
#include "unit.h"

static const struct siphash_key ref_key = {
	.k0 = 0x0706050403020100ULL,	/* key octets 00..07, little-endian */
	.k1 = 0x0f0e0d0c0b0a0908ULL,	/* 08..0f */
};

START_TEST(reference_vectors)
{
	uint8_t in[64];

	for (int i = 0; i < 64; i++)
		in[i] = (uint8_t)i;
	ck_assert_uint_eq(siphash(&ref_key, in, 0), 0x726fdb47dd0e0e31ULL);
	ck_assert_uint_eq(siphash(&ref_key, in, 1), 0x74f839c593dc67fdULL);
	ck_assert_uint_eq(siphash(&ref_key, in, 8), 0x93f5f5799a932462ULL);
	ck_assert_uint_eq(siphash(&ref_key, in, 15), 0xa129ca6149be45e5ULL);
	ck_assert_uint_eq(siphash(&ref_key, in, 63), 0x958a324ceb064572ULL);
}
END_TEST

START_TEST(fresh_keys_differ)
{
	struct siphash_key a, b;

	siphash_key_new(&a);
	siphash_key_new(&b);
	ck_assert(a.k0 != b.k0 || a.k1 != b.k1);
	ck_assert_uint_ne(siphash(&a, "x", 1), siphash(&b, "x", 1));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("siphash");
	TCase *tc = tcase_create("siphash");

	tcase_add_test(tc, reference_vectors);
	tcase_add_test(tc, fresh_keys_differ);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
