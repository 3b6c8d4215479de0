/*
 * batch_export.c - int8 export of the batching classifier (batch_export.h).
 */
#include <stdlib.h>
#include <string.h>

#include "batch_export.h"
#include "qsteer/batch_features.h"
#include "qsteer/policy.h"
#include "quantize.h"
#include "util.h"

int
qs_bexp_write(const struct qs_mlp *pi, const uint8_t *x, uint32_t n, float pct,
	      const struct qs_q8_action *action, uint32_t n_actions, const char *name,
	      uint64_t created, const char *path, struct qs_bexp_report *rep, char *msg,
	      size_t msglen)
{
	struct qs_policy_load_opts o = {QS_SCHEMA_BATCH_V1, QS_Q8_KIND_CLASSIFIER, NULL};
	struct qs_quant_plan q;
	struct qs_quant_states st;
	struct qs_q8_desc d;
	struct qs_policy *p = NULL;
	struct qs_mlp_ws ws;
	uint32_t *row_off = NULL;
	uint64_t *mask = NULL;
	uint16_t *cls = NULL;
	uint8_t *buf = NULL;
	size_t cap, len = 0;
	float xf[QS_FB_COUNT];
	uint64_t same = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	memset(&ws, 0, sizeof(ws));
	if (pi->dim[0] != QS_FB_COUNT || pi->dim[pi->n_layers] != n_actions || n == 0)
		return qs_fail(msg, msglen, QS_E_SHAPE,
			       "batch export: a %u-input net with %u outputs for %u actions "
			       "and %u states",
			       pi->dim[0], pi->dim[pi->n_layers], n_actions, n);
	rc = qs_quant_plan_init(&q, pi, msg, msglen);
	if (rc != QS_OK)
		return rc;
	row_off = malloc(((size_t)n + 1) * sizeof(*row_off));
	mask = malloc((size_t)n * sizeof(*mask));
	cls = malloc((size_t)n * sizeof(*cls));
	if (!row_off || !mask || !cls) {
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "batch export: no memory");
		goto out;
	}
	for (uint32_t i = 0; i <= n; i++)
		row_off[i] = i; /* a classifier decision is one row */
	for (uint32_t i = 0; i < n; i++)
		mask[i] = 1;
	st.n_feat = QS_FB_COUNT;
	st.n = n;
	st.rows = x;
	st.row_off = row_off;
	st.mask = mask;
	rc = qs_quant_calibrate(&q, pi, &st, pct, 1u << 18, msg, msglen);
	if (rc != QS_OK)
		goto out;
	q.shared_out_scale = 1;
	qs_quant_build(&q, pi);
	qs_quant_desc(&q, name, created, &d);
	d.kind = QS_Q8_KIND_CLASSIFIER;
	d.schema = QS_SCHEMA_BATCH_V1;
	d.n_actions = (uint16_t)n_actions;
	d.action = action;
	cap = qs_q8_size(&d);
	buf = malloc(cap ? cap : 1);
	if (!buf) {
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "batch export: no memory");
		goto out;
	}
	rc = qs_q8_write(&d, buf, cap, &len, msg, msglen);
	if (rc == QS_OK)
		rc = qs_policy_load(buf, len, name, &o, &p, msg, msglen);
	if (rc == QS_OK)
		rc = qs_policy_classify(p, QS_KERNEL_SCALAR, x, QS_FB_COUNT, n, cls);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&ws, pi, 1, msg, msglen);
	if (rc != QS_OK)
		goto out;
	qs_mlp_ws_pin(&ws, pi); /* pi is fixed here: one transpose, not one per state */
	for (uint32_t i = 0; i < n; i++) {
		const float *s;

		for (uint32_t k = 0; k < QS_FB_COUNT; k++)
			xf[k] = (float)x[(size_t)i * QS_FB_COUNT + k] / 127.0f;
		s = qs_mlp_forward(pi, &ws, xf, 1, NULL);
		same += qs_mlp_argmax_masked(s, n_actions,
					     n_actions >= 64 ? ~0ull : (1ull << n_actions) - 1) ==
			cls[i];
	}
	rep->agree = (double)same / n;
	rep->states = n;
	rep->bias_clamped = q.bias_clamped;
	rep->bytes = len;
	if (path) /* temp file, fsync, rename: a reader never sees half a policy */
		rc = qs_q8_write_file(&d, path, msg, msglen);
out:
	qs_mlp_ws_free(&ws);
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	free(row_off);
	free(mask);
	free(cls);
	free(buf);
	return rc;
}
