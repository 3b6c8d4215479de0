/*
 * kv.c - the paged KV-block allocator: a stack of free block numbers and an owner
 * per block. The owner array is what makes double use impossible to miss: a block
 * is handed out only from the free stack, and given back only by its owner.
 */
#include <stdlib.h>
#include <stdio.h>

#include "qsteer/agent.h"

int
qs_kv_init(struct qs_kv *kv, uint32_t n_blocks, char *msg, size_t msglen)
{
	uint32_t i;

	kv->n_blocks = kv->n_free = 0;
	kv->free_stack = kv->owner = NULL;
	if (n_blocks == 0 || n_blocks > (1u << 28)) {
		snprintf(msg, msglen, "kv: %u blocks is out of range 1..2^28", n_blocks);
		return QS_E_ARG;
	}
	kv->free_stack = malloc(sizeof(uint32_t) * n_blocks);
	kv->owner = malloc(sizeof(uint32_t) * n_blocks);
	if (!kv->free_stack || !kv->owner) {
		qs_kv_fini(kv);
		snprintf(msg, msglen, "kv: out of memory for %u blocks", n_blocks);
		return QS_E_NOMEM;
	}
	/* Block 0 on top, so allocation order is 0, 1, 2, ... (predictable in tests). */
	for (i = 0; i < n_blocks; i++) {
		kv->free_stack[i] = n_blocks - 1 - i;
		kv->owner[i] = QS_KV_NO_OWNER;
	}
	kv->n_blocks = kv->n_free = n_blocks;
	return QS_OK;
}

void
qs_kv_fini(struct qs_kv *kv)
{
	free(kv->free_stack);
	free(kv->owner);
	kv->free_stack = kv->owner = NULL;
	kv->n_blocks = kv->n_free = 0;
}

int
qs_kv_alloc(struct qs_kv *kv, uint32_t owner, uint32_t *block)
{
	uint32_t b;

	if (owner == QS_KV_NO_OWNER)
		return QS_E_ARG;
	if (kv->n_free == 0)
		return QS_E_NOMEM;
	b = kv->free_stack[--kv->n_free];
	kv->owner[b] = owner;
	*block = b;
	return QS_OK;
}

int
qs_kv_release(struct qs_kv *kv, uint32_t owner, uint32_t block)
{
	if (block >= kv->n_blocks || owner == QS_KV_NO_OWNER || kv->owner[block] != owner)
		return QS_E_VALUE;
	kv->owner[block] = QS_KV_NO_OWNER;
	kv->free_stack[kv->n_free++] = block;
	return QS_OK;
}

int
qs_kv_check(const struct qs_kv *kv, char *msg, size_t msglen)
{
	uint32_t i, unowned = 0;
	uint8_t *seen;
	int rc = QS_OK;

	if (kv->n_free > kv->n_blocks) {
		snprintf(msg, msglen, "kv: %u free of %u", kv->n_free, kv->n_blocks);
		return QS_E_VALUE;
	}
	seen = calloc(kv->n_blocks ? kv->n_blocks : 1, 1);
	if (!seen) {
		snprintf(msg, msglen, "kv: out of memory");
		return QS_E_NOMEM;
	}
	for (i = 0; i < kv->n_free && rc == QS_OK; i++) {
		uint32_t b = kv->free_stack[i];

		if (b >= kv->n_blocks || seen[b]) {
			snprintf(msg, msglen, "kv: block %u on the free list twice or out of range",
				 b);
			rc = QS_E_VALUE;
		} else if (kv->owner[b] != QS_KV_NO_OWNER) {
			snprintf(msg, msglen, "kv: free block %u is owned by %u", b, kv->owner[b]);
			rc = QS_E_VALUE;
		} else {
			seen[b] = 1;
		}
	}
	for (i = 0; i < kv->n_blocks && rc == QS_OK; i++) {
		if (kv->owner[i] == QS_KV_NO_OWNER) {
			unowned++;
			if (!seen[i]) {
				snprintf(msg, msglen, "kv: block %u leaked (no owner, not free)",
					 i);
				rc = QS_E_VALUE;
			}
		}
	}
	if (rc == QS_OK && unowned != kv->n_free) {
		snprintf(msg, msglen, "kv: %u unowned blocks but %u free", unowned, kv->n_free);
		rc = QS_E_VALUE;
	}
	free(seen);
	return rc;
}
