/*
 * crc32c.c - CRC32C for .q8 files. Table-driven bytewise: policies are loaded rarely
 * and are at most a few hundred KiB, so simplicity beats the SSE4.2 instruction. The
 * table is built once under pthread_once, so concurrent first loads do not race.
 */
#include <pthread.h>

#include "qsteer/crc32c.h"

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t
qs_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
