/* crc32c.h - CRC32C (Castagnoli, reflected 0x82F63B78), as used by the .q8 trailer. */
#ifndef QSTEER_CRC32C_H
#define QSTEER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: pass 0 to start. crc32c("123456789") == 0xE3069283. */
uint32_t qs_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* QSTEER_CRC32C_H */
