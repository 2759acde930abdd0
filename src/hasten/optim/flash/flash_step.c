/* One FlashOptim update of a flat tensor on the CPU, in a single pass over memory.
 *
 * The eager update (fused.py: step_tensor) is ~100 elementwise torch ops, each reading and
 * writing a full fp32 temporary. Here each group of 32 values (one quantization group) is
 * loaded once: bf16 weight + integer correction -> fp32 master weight, 8-bit codes -> fp32
 * states, the rule, then the split and requantization, all in registers and L1, then stored
 * once. Groups are independent, so OpenMP splits them across threads.
 *
 * Arithmetic follows the eager reference op by op (same formulas, same order, no FMA
 * contraction: built with -ffp-contract=off; rintf rounds half to even as torch.round), so results match it bit for bit including where
 * torch's vectorized kernels fuse: lerp, add-with-alpha and addcmul are fused multiply-adds there, so
 * fmaf is used exactly there. One difference remains: torch's CPU sqrt is not correctly
 * rounded (about a fifth of values one ulp off) and sqrtf is, so Adam's results can differ by an
 * ulp, and a code by a level (tests/optim/flash/test_native.py states the tolerance).
 * hasten.optim.flash.native compiles this file with the system C compiler and calls it
 * through ctypes; no torch headers are needed, so it builds in about a second.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define GROUP 32
#define BLOCK 1024 /* values per unit of work: 32 groups, 16 KiB of fp32 temporaries in L1/L2 */

enum { RULE_SGD = 0, RULE_ADAM = 1, RULE_LION = 2 };
enum { GRAD_F32 = 0, GRAD_BF16 = 1, GRAD_F16 = 2 };

/* hyperparameters, as fp32 (the eager path casts its Python scalars to fp32 the same way) */
typedef struct {
    float lr, weight_decay, decay;   /* decay = 1 - lr * weight_decay */
    float one_minus_beta1, beta2, one_minus_beta2;
    float eps, step_size, bias_root; /* adam */
    float momentum, one_minus_dampening; /* sgd */
    int32_t decoupled, nesterov, first_step;
} Hyper;

static inline float bits_to_f32(uint32_t bits) {
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static inline uint32_t f32_to_bits(float value) {
    uint32_t out;
    memcpy(&out, &value, 4);
    return out;
}

static inline float bf16_to_f32(uint16_t bits) { return bits_to_f32((uint32_t)bits << 16); }

/* round to nearest even, NaN -> canonical quiet NaN: c10::BFloat16's conversion */
static inline uint16_t f32_to_bf16(float value) {
    uint32_t bits = f32_to_bits(value);
    uint16_t rounded = (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    return value != value ? (uint16_t)0x7FC0 : rounded;
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    if (exponent == 0) {
        if (mantissa == 0) return bits_to_f32(sign);
        float value = (float)mantissa * (1.0f / 16777216.0f); /* subnormal: mantissa * 2^-24 */
        return sign ? -value : value;
    }
    if (exponent == 31) return bits_to_f32(sign | 0x7F800000u | (mantissa << 13));
    return bits_to_f32(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

/* 2^e of a bf16 value's exponent, as fp32; zeros and subnormals get the smallest normal power */
static inline float exponent_power(float widened) {
    float power = bits_to_f32(f32_to_bits(widened) & 0x7F800000u);
    const float smallest = 1.1754943508222875e-38f; /* 2^(1 - 127) */
    return power < smallest ? smallest : power;
}

/* 1 / exponent_power(widened), exact (a power of two; 2^-127 is a subnormal, 1/inf is 0): the
 * split multiplies by it where the eager code divides, with the same result */
static inline float inverse_power(float widened) {
    uint32_t e = (f32_to_bits(widened) >> 23) & 0xFFu;
    e = e < 1u ? 1u : e;
    uint32_t bits = e == 255u ? 0u : (e == 254u ? 0x00400000u : (254u - e) << 23);
    return bits_to_f32(bits);
}

/* the bf16 scale of a group, rounded up so |x| / scale <= 1 */
static inline uint16_t round_up_scale(float amax) {
    uint16_t stored = f32_to_bf16(amax);
    return bf16_to_f32(stored) < amax ? (uint16_t)(stored + 1) : stored;
}

static inline float safe_divisor(uint16_t scale) {
    float divisor = bf16_to_f32(scale);
    return divisor > 0.0f ? divisor : 1.0f;
}

static inline float clampf(float value, float low, float high) {
    /* torch.clamp: NaN stays NaN */
    return value < low ? low : (value > high ? high : value);
}

static inline float signf(float value) { return (float)((value > 0.0f) - (value < 0.0f)); }

/* torch's vectorized lerp (ATen lerp_vec): one fused multiply-add, from the nearer end */
static inline float lerpf(float self, float end, float weight) {
    return fabsf(weight) < 0.5f ? fmaf(weight, end - self, self) : fmaf(weight - 1.0f, end - self, end);
}

/* ---- the passes over one block: simple loops over arrays in L1, which the compiler vectorizes ---- */

static void load_grad(const void *grad, int grad_dtype, int64_t start, int count, float *restrict out) {
    if (grad_dtype == GRAD_F32) {
        const float *g = (const float *)grad + start;
        for (int i = 0; i < count; i++) out[i] = g[i];
    } else if (grad_dtype == GRAD_BF16) {
        const uint16_t *g = (const uint16_t *)grad + start;
        for (int i = 0; i < count; i++) out[i] = bf16_to_f32(g[i]);
    } else {
        const uint16_t *g = (const uint16_t *)grad + start;
        for (int i = 0; i < count; i++) out[i] = f16_to_f32(g[i]);
    }
}

/* the fp32 master weight: theta16 + (rho / N) * 2^l, as weight_split.reconstruct */
static void reconstruct(const uint16_t *restrict weights, const void *correction, int correction_bytes, float step,
                        int count, float *restrict theta) {
    if (correction_bytes == 2) {
        const int16_t *rho = (const int16_t *)correction;
        for (int i = 0; i < count; i++) {
            float widened = bf16_to_f32(weights[i]);
            theta[i] = (float)rho[i] * step * exponent_power(widened) + widened;
        }
    } else if (correction_bytes == 1) {
        const int8_t *rho = (const int8_t *)correction;
        for (int i = 0; i < count; i++) {
            float widened = bf16_to_f32(weights[i]);
            theta[i] = (float)rho[i] * step * exponent_power(widened) + widened;
        }
    } else {
        for (int i = 0; i < count; i++) theta[i] = bf16_to_f32(weights[i]);
    }
}

/* bf16 weight + correction from fp32 theta, as weight_split.split_into */
static void split(const float *restrict theta, int count, uint16_t *restrict weights, void *correction,
                  int correction_bytes, float levels) {
    float rho[BLOCK];
    for (int i = 0; i < count; i++) {
        uint16_t narrow = f32_to_bf16(theta[i]);
        weights[i] = narrow;
        float widened = bf16_to_f32(narrow);
        float normalized = (theta[i] - widened) * 256.0f * inverse_power(widened);
        normalized = normalized != normalized ? 0.0f : normalized; /* nan_to_num: nothing to correct */
        rho[i] = rintf(clampf(normalized, -1.0f, 1.0f) * levels);
    }
    if (correction_bytes == 2) {
        int16_t *out = (int16_t *)correction;
        for (int i = 0; i < count; i++) out[i] = (int16_t)rho[i];
    } else if (correction_bytes == 1) {
        int8_t *out = (int8_t *)correction;
        for (int i = 0; i < count; i++) out[i] = (int8_t)rho[i];
    }
}

/* code -> the expanded value in [-1, 1] (z = code / 127, x = z / (2 - |z|)): 255 codes, so a table */
static void signed_table(float table[256]) {
    for (int code = -128; code < 128; code++) {
        float z = (float)code / 127.0f;
        table[code + 128] = z / (2.0f - fabsf(z));
    }
}

static void dequantize_signed(const int8_t *restrict codes, const uint16_t *restrict scales, int groups,
                              const float *restrict table, float *restrict out) {
    for (int g = 0; g < groups; g++) {
        const float s = bf16_to_f32(scales[g]);
        for (int i = 0; i < GROUP; i++) out[g * GROUP + i] = table[codes[g * GROUP + i] + 128] * s;
    }
}

static void dequantize_unsigned(const uint8_t *restrict codes, const uint16_t *restrict scales, int groups,
                                float *restrict out) {
    for (int g = 0; g < groups; g++) {
        const float s = bf16_to_f32(scales[g]) / 255.0f;
        for (int i = 0; i < GROUP; i++) {
            float r = (float)codes[g * GROUP + i] * s;
            out[g * GROUP + i] = r * r;
        }
    }
}

/* the largest of GROUP non-negative floats: an integer max over their bits (same order; vectorizes) */
static inline float group_max(const float *restrict values) {
    uint32_t best = 0;
    for (int i = 0; i < GROUP; i++) {
        uint32_t bits = f32_to_bits(values[i]);
        best = bits > best ? bits : best;
    }
    return bits_to_f32(best);
}

static void quantize_signed(const float *restrict values, int groups, int8_t *restrict codes,
                            uint16_t *restrict scales) {
    for (int g = 0; g < groups; g++) {
        const float *v = values + g * GROUP;
        float magnitude[GROUP];
        for (int i = 0; i < GROUP; i++) magnitude[i] = fabsf(v[i]);
        const uint16_t scale = round_up_scale(group_max(magnitude));
        const float divisor = safe_divisor(scale);
        scales[g] = scale;
        for (int i = 0; i < GROUP; i++) {
            float x = v[i] / divisor; /* |v| <= max|v| <= divisor: already in [-1, 1], as the clamp leaves it */
            x = x / (fabsf(x) + 1.0f) * 2.0f; /* softsign compander */
            codes[g * GROUP + i] = (int8_t)rintf(x * 127.0f);
        }
    }
}

static void quantize_unsigned(const float *restrict values, int groups, uint8_t *restrict codes,
                              uint16_t *restrict scales) {
    for (int g = 0; g < groups; g++) {
        const float *v = values + g * GROUP;
        float roots[GROUP];
        for (int i = 0; i < GROUP; i++) roots[i] = sqrtf(v[i] < 0.0f ? 0.0f : v[i]); /* sqrt compander */
        const uint16_t scale = round_up_scale(group_max(roots));
        const float divisor = safe_divisor(scale);
        scales[g] = scale;
        for (int i = 0; i < GROUP; i++) {
            float level = roots[i] / divisor * 255.0f; /* in [0, 255]: roots <= max <= divisor */
            float code = rintf(level);
            code = code == 0.0f && level > 0.0f ? 1.0f : code; /* a positive value never becomes code 0 */
            codes[g * GROUP + i] = (uint8_t)(int32_t)code;
        }
    }
}

static void apply_rule(int rule, const Hyper *hyper, int count, float *restrict theta, float *restrict grad,
                       float *restrict s1, float *restrict s2) {
    const Hyper h = *hyper; /* a local copy: the compiler need not reload it after every store */
    if (rule == RULE_ADAM) {
        if (h.weight_decay != 0.0f && h.decoupled)
            for (int i = 0; i < count; i++) theta[i] = theta[i] * h.decay;
        if (h.weight_decay != 0.0f && !h.decoupled)
            for (int i = 0; i < count; i++) grad[i] = fmaf(theta[i], h.weight_decay, grad[i]); /* add(alpha=): an FMA in torch */
        for (int i = 0; i < count; i++) {
            s1[i] = lerpf(s1[i], grad[i], h.one_minus_beta1);
            s2[i] = fmaf(h.one_minus_beta2 * grad[i], grad[i], s2[i] * h.beta2); /* addcmul: an FMA in torch */
            float denom = sqrtf(s2[i]) / h.bias_root + h.eps;
            theta[i] = theta[i] - s1[i] / denom * h.step_size;
        }
    } else if (rule == RULE_LION) {
        if (h.weight_decay != 0.0f)
            for (int i = 0; i < count; i++) theta[i] = theta[i] * h.decay;
        for (int i = 0; i < count; i++) {
            float c = lerpf(s1[i], grad[i], h.one_minus_beta1);
            theta[i] = theta[i] - signf(c) * h.lr;
            s1[i] = lerpf(s1[i], grad[i], h.one_minus_beta2);
        }
    } else { /* SGD; s1 is the momentum buffer, NULL without momentum */
        if (h.weight_decay != 0.0f && h.decoupled)
            for (int i = 0; i < count; i++) theta[i] = theta[i] * h.decay;
        if (h.weight_decay != 0.0f && !h.decoupled)
            for (int i = 0; i < count; i++) grad[i] = fmaf(theta[i], h.weight_decay, grad[i]); /* add(alpha=): an FMA in torch */
        if (s1 && h.first_step)
            for (int i = 0; i < count; i++) s1[i] = grad[i];
        else if (s1)
            for (int i = 0; i < count; i++) s1[i] = fmaf(grad[i], h.one_minus_dampening, s1[i] * h.momentum);
        if (s1 && h.nesterov)
            for (int i = 0; i < count; i++) grad[i] = fmaf(s1[i], h.momentum, grad[i]);
        else if (s1)
            for (int i = 0; i < count; i++) grad[i] = s1[i];
        for (int i = 0; i < count; i++) theta[i] = theta[i] - grad[i] * h.lr;
    }
}

/* weights: bf16 bits (numel values); correction: int8 or int16 (correction_bytes 1 or 2), or NULL;
 * state1: signed codes + bf16 scales (NULL for plain SGD); state2: unsigned codes + scales (Adam).
 * Codes and scales cover numel rounded up to whole groups. */
int hasten_flash_step(int64_t numel, uint16_t *weights, void *correction, int correction_bytes, const void *grad,
                      int grad_dtype, int8_t *codes1, uint16_t *scales1, uint8_t *codes2, uint16_t *scales2,
                      int rule, const Hyper *hyper, int threads) {
    if (correction == 0) correction_bytes = 0;
    const int64_t blocks = (numel + BLOCK - 1) / BLOCK;
    const float levels = correction_bytes == 2 ? 32767.0f : 127.0f;
    /* one level of the correction in units of 2^e: 2^-(mantissa_bits + 1) / N, as fp32 */
    const float step = (float)(1.0 / 256.0 / (double)levels);
    if (threads < 1 || numel < (1 << 16)) threads = 1;
    float table[256];
    signed_table(table);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t start = b * BLOCK;
        const int count = numel - start < BLOCK ? (int)(numel - start) : BLOCK;
        const int groups = (count + GROUP - 1) / GROUP;
        const int64_t first_group = start / GROUP;
        float theta[BLOCK], gradient[BLOCK], s1[BLOCK], s2[BLOCK];
        char *rho = correction_bytes ? (char *)correction + start * correction_bytes : 0;
        reconstruct(weights + start, rho, correction_bytes, step, count, theta);
        load_grad(grad, grad_dtype, start, count, gradient);
        if (codes1) dequantize_signed(codes1 + start, scales1 + first_group, groups, table, s1);
        if (codes2) dequantize_unsigned(codes2 + start, scales2 + first_group, groups, s2);
        apply_rule(rule, hyper, count, theta, gradient, codes1 ? s1 : 0, s2);
        for (int i = count; i < groups * GROUP; i++) s1[i] = s2[i] = 0.0f; /* padding quantizes as zeros */
        if (codes1) quantize_signed(s1, groups, codes1 + start, scales1 + first_group);
        if (codes2) quantize_unsigned(s2, groups, codes2 + start, scales2 + first_group);
        split(theta, count, weights + start, rho, correction_bytes, levels);
    }
    return 0;
}
