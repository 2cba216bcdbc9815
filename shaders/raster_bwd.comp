// One workgroup per 16x16 tile: back-to-front replay of the forward blend, accumulating the
// screen-space gradient of every Gaussian (mean 2, conic 3, opacity, colour 3, depth).
//
// Same layout as raster_fwd.comp (see there for why): COLS x ROWS pixels per invocation, texel
// fetches at one index for the current Gaussian, skip loops for CULL (1: Gaussians and rows, 2:
// Gaussians only). Per pixel the colour, depth and alpha channels are folded into one running sum:
// with F_i = f_i . dL/dout (f = colour, depth, 1) and G the same sum over what lies behind,
// dL/dalpha_i = T_i (F_i - G) and then G <- alpha_i F_i + (1 - alpha_i) G. Each lane sums its
// pixels' terms; the subgroup then adds its lanes and adds the result to the Gaussian's ten
// floats atomically (float atomics or CAS).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_shuffle : require
#if FLOAT_ATOMICS
#extension GL_EXT_shader_atomic_float : require
#endif
layout(local_size_x_id = 0) in; // = 256 / (ROWS * COLS)
layout(constant_id = 1) const uint ROWS = 1u;
layout(constant_id = 2) const uint COLS = 1u;
layout(constant_id = 3) const uint CULL = 1u;
layout(binding = 0) uniform samplerBuffer proj4;
layout(binding = 1) uniform usamplerBuffer kval;
layout(std430, binding = 2) readonly buffer Ranges { uvec2 ranges[]; };
layout(std430, binding = 3) readonly buffer InT { float in_t[]; };
layout(std430, binding = 4) readonly buffer InN { uint in_n[]; };
layout(std430, binding = 5) readonly buffer DC { float dl_c[]; };
layout(std430, binding = 6) readonly buffer DD { float dl_d[]; };
layout(std430, binding = 7) readonly buffer DA { float dl_a[]; };
#if FLOAT_ATOMICS
layout(std430, binding = 8) buffer G2 { float g2d[]; };
void add_g(uint idx, float v) { atomicAdd(g2d[idx], v); }
#else
layout(std430, binding = 8) buffer G2 { uint g2d[]; };
void add_g(uint idx, float v) {
    uint old = g2d[idx];
    while (true) {
        uint assumed = old;
        old = atomicCompSwap(g2d[idx], assumed, floatBitsToUint(uintBitsToFloat(assumed) + v));
        if (old == assumed) break;
    }
}
#endif

const uint NPIX = ROWS * COLS; // at most 32
#define MAXPIX 32

// Replay Gaussian i (m, co, col, box) at pixel Q = c * ROWS + r, adding the pixel's terms to the
// lane sums s[] (PIXEL: unless CULL 1 culls its row).
#define PIXEL_BODY(Q, c, r) \
        float dy = m.y - float(y0 + r); \
        float power = pa[c] + dy * (pb[c] - 0.5 * co.z * dy); \
        float gauss = exp(min(power, 0.0)); \
        float raw = m.z * gauss; \
        float alpha = min(ALPHA_MAX, raw); \
        bool act = i < last[Q] && power <= 0.0 && alpha >= ALPHA_MIN; \
        float ti = T[Q] / (1.0 - alpha); \
        float f = dot(col, dlc[Q]) + m.w * dld[Q] + dla[Q]; \
        float dl_da = ti * (f - G[Q]); \
        float w = act ? alpha * ti : 0.0; \
        T[Q] = act ? ti : T[Q]; \
        G[Q] = act ? alpha * f + (1.0 - alpha) * G[Q] : G[Q]; \
        bool unclamped = act && raw <= ALPHA_MAX; \
        float dpow = unclamped ? raw * dl_da : 0.0; \
        s[0] -= dpow * (co.x * dx[c] + co.y * dy); \
        s[1] -= dpow * (co.z * dy + co.y * dx[c]); \
        s[2] -= 0.5 * dx[c] * dx[c] * dpow; \
        s[3] -= dx[c] * dy * dpow; \
        s[4] -= 0.5 * dy * dy * dpow; \
        s[5] += unclamped ? gauss * dl_da : 0.0; \
        s[6] += w * dlc[Q].r; \
        s[7] += w * dlc[Q].g; \
        s[8] += w * dlc[Q].b; \
        s[9] += w * dld[Q];
#define PIXEL(Q) if ((Q) < NPIX) { \
    const uint c = (Q) / ROWS, r = (Q) % ROWS; \
    bool rhit = CULL != 1u || (chit[c] && float(r) >= ra && float(r) <= rb); \
    if (CULL == 1u) { \
        for (uint o2 = rhit ? 0u : one; o2 < one; o2++) { PIXEL_BODY(Q, c, r) } \
    } else { \
        PIXEL_BODY(Q, c, r) \
    } \
}
const uint LPR = TILE / COLS;
const uint P4 = PROJ_STRIDE / 4u;

void main() {
    uint tile = gl_WorkGroupID.y * pc.u0.z + gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    uint x0 = gl_WorkGroupID.x * TILE + t % LPR;
    uint y0 = gl_WorkGroupID.y * TILE + (t / LPR) * ROWS;
    uvec2 range = ranges[tile];
    bool use_d = (pc.u2.w & 1u) != 0u, use_a = (pc.u2.w & 2u) != 0u;
    float T[MAXPIX];
    uint last[MAXPIX];
    vec3 dlc[MAXPIX];
    float dld[MAXPIX];
    float dla[MAXPIX];
    float G[MAXPIX];
    uint maxlast = 0u;
    for (uint q = 0u; q < NPIX; q++) {
        uint px = x0 + (q / ROWS) * LPR, py = y0 + q % ROWS;
        bool inside = px < pc.u0.x && py < pc.u0.y;
        uint pi = inside ? py * pc.u0.x + px : 0u;
        T[q] = inside ? in_t[pi] : 1.0;
        last[q] = inside ? in_n[pi] : 0u;
        dlc[q] = inside ? vec3(dl_c[3u * pi], dl_c[3u * pi + 1u], dl_c[3u * pi + 2u]) : vec3(0.0);
        dld[q] = inside && use_d ? dl_d[pi] : 0.0;
        dla[q] = inside && use_a ? dl_a[pi] : 0.0;
        G[q] = 0.0;
        maxlast = max(maxlast, last[q]);
    }
    // Only the first max(last) Gaussians of the tile reached any of these pixels.
    maxlast = subgroupMax(maxlast);
    float lox = 0.0, hix = 0.0, loy = 0.0, hiy = 0.0;
    if (CULL != 0u) {
        lox = float(subgroupMin(x0)); hix = float(subgroupMax(x0));
        loy = float(subgroupMin(y0)); hiy = float(subgroupMax(y0));
    }
    uint one = pc.u2.z; // 1, unknown to the compiler: keeps the skip loops real loops
    for (uint k = maxlast; k > 0u; k--) {
        uint i = k - 1u; // list index, back to front
        uint gid = texelFetch(kval, int(range.x + i)).x;
        int g = int(P4 * gid);
        vec4 box = texelFetch(proj4, g + 3);
        float ra = ceil(box.z) - hiy, rb = floor(box.w) - loy;
        bool xhit = false;
        for (uint c = 0u; c < COLS; c++) {
            float cx = float(c * LPR);
            xhit = xhit || (box.x <= hix + cx && box.y >= lox + cx);
        }
        bool hit = CULL == 0u || (xhit && ra <= float(ROWS - 1u) && rb >= 0.0);
        for (uint o = hit ? 0u : one; o < one; o++) {
            vec4 m = texelFetch(proj4, g);
            vec4 co = texelFetch(proj4, g + 1);
            vec3 col = texelFetch(proj4, g + 2).xyz;
            // Per-lane sums: mean x, y, conic a, b, c, opacity, colour rgb, depth.
            float s[10] = float[10](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            float pa[COLS], pb[COLS], dx[COLS];
            bool chit[COLS];
            for (uint c = 0u; c < COLS; c++) {
                float cx = float(c * LPR);
                chit[c] = CULL == 0u || (box.x <= hix + cx && box.y >= lox + cx);
                dx[c] = m.x - float(x0 + c * LPR);
                pa[c] = -0.5 * co.x * dx[c] * dx[c];
                pb[c] = -co.y * dx[c];
            }
            // Pixels written out one by one (see raster_fwd.comp).
            PIXEL(0u) PIXEL(1u) PIXEL(2u) PIXEL(3u) PIXEL(4u) PIXEL(5u) PIXEL(6u) PIXEL(7u)
            PIXEL(8u) PIXEL(9u) PIXEL(10u) PIXEL(11u) PIXEL(12u) PIXEL(13u) PIXEL(14u) PIXEL(15u)
            PIXEL(16u) PIXEL(17u) PIXEL(18u) PIXEL(19u) PIXEL(20u) PIXEL(21u) PIXEL(22u)
            PIXEL(23u) PIXEL(24u) PIXEL(25u) PIXEL(26u) PIXEL(27u) PIXEL(28u) PIXEL(29u)
            PIXEL(30u) PIXEL(31u)
            // One atomic per lane (the ten sums spread over the lanes) rather than ten from one
            // lane: CPU drivers loop over the lanes for each atomic instruction.
            // Butterfly sums: after the xor steps every lane holds each total, and the two lanes
            // of a step add the same two numbers, so the totals agree bit for bit. CPU drivers
            // turn a shuffle by a constant pattern into one vector permute but run subgroupAdd
            // lane by lane.
            for (uint off = 1u; off < gl_SubgroupSize; off *= 2u)
                for (uint j = 0u; j < 10u; j++) s[j] += subgroupShuffleXor(s[j], off);
            float v[10] = s;
            uint base = gid * G2D_STRIDE;
            for (uint j0 = 0u; j0 < 10u; j0 += gl_SubgroupSize) {
                uint j = j0 + gl_SubgroupInvocationID;
                float val = 0.0;
                for (uint jj = 0u; jj < 10u; jj++) val = j == jj ? v[jj] : val;
                if (j < 10u && val != 0.0) add_g(base + j, val);
            }
        }
    }
}
