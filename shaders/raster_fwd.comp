// One workgroup per 16x16 tile: front-to-back blending of the tile's depth-sorted Gaussians.
//
// Laid out for SIMD CPU drivers (lavapipe) as well as for GPUs. Lavapipe runs a subgroup as one
// SIMD vector, but goes lane by lane for storage-buffer and shared-memory loads and for every
// subgroup operation, and runs an `if` masked (both ways, always); only a loop skips code. So: no
// shared memory and no barriers; each invocation owns a COLS x ROWS block of pixels (state in
// registers); every lane reads the current Gaussian through texel fetches at the same index (one
// vectorised gather); with CULL, a Gaussian whose alpha box misses the subgroup's pixels is skipped
// by a loop of 0 or 1 trips, and with CULL 1 each pixel row it misses too (worth it on a GPU; on a
// CPU driver the loops' mask and counter bookkeeping costs more than the rows skipped: CULL 2).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x_id = 0) in; // = 256 / (ROWS * COLS)
layout(constant_id = 1) const uint ROWS = 1u;
layout(constant_id = 2) const uint COLS = 1u;
layout(constant_id = 3) const uint CULL = 1u;
layout(binding = 0) uniform samplerBuffer proj4; // PROJ_STRIDE / 4 texels per Gaussian
layout(binding = 1) uniform usamplerBuffer kval;  // sorted Gaussian ids
layout(std430, binding = 2) readonly buffer Ranges { uvec2 ranges[]; };
layout(std430, binding = 3) writeonly buffer OutC { float out_c[]; };
layout(std430, binding = 4) writeonly buffer OutD { float out_d[]; };
layout(std430, binding = 5) writeonly buffer OutA { float out_a[]; };
layout(std430, binding = 6) writeonly buffer OutT { float out_t[]; };
layout(std430, binding = 7) writeonly buffer OutN { uint out_n[]; };

const uint NPIX = ROWS * COLS; // at most 32
#define MAXPIX 32

// Blend Gaussian i (m, co, col, box) into pixel Q = c * ROWS + r (PIXEL: unless CULL 1 culls
// its row; rows outside the alpha box get alpha < ALPHA_MIN, so culling changes nothing else).
#define PIXEL_BODY(Q, c, r) \
        float dy = m.y - float(y0 + r); \
        float power = pa[c] + dy * (pb[c] - 0.5 * co.z * dy); \
        float alpha = min(ALPHA_MAX, m.z * exp(min(power, 0.0))); \
        bool use = !done[Q] && power <= 0.0 && alpha >= ALPHA_MIN; \
        float nt = T[Q] * (1.0 - alpha); \
        bool stop = use && nt < T_MIN; \
        bool blend = use && !stop; \
        float w = blend ? alpha * T[Q] : 0.0; \
        C[Q] += col * w; \
        D[Q] += m.w * w; \
        T[Q] = blend ? nt : T[Q]; \
        last[Q] = blend ? i + 1u : last[Q]; \
        done[Q] = done[Q] || stop;
#define PIXEL(Q) if ((Q) < NPIX) { \
    const uint c = (Q) / ROWS, r = (Q) % ROWS; \
    bool rhit = CULL != 1u || (chit[c] && float(r) >= ra && float(r) <= rb); \
    if (CULL == 1u) { \
        for (uint o2 = rhit ? 0u : one; o2 < one; o2++) { PIXEL_BODY(Q, c, r) } \
    } else { \
        PIXEL_BODY(Q, c, r) \
    } \
}
const uint LPR = TILE / COLS; // invocations per pixel row of the tile
const uint P4 = PROJ_STRIDE / 4u;

void main() {
    uint tile = gl_WorkGroupID.y * pc.u0.z + gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    // Pixel (x0 + c * LPR, y0 + r) for column c < COLS and row r < ROWS; q = c * ROWS + r.
    uint x0 = gl_WorkGroupID.x * TILE + t % LPR;
    uint y0 = gl_WorkGroupID.y * TILE + (t / LPR) * ROWS;
    uvec2 range = ranges[tile];
    float T[MAXPIX];
    vec3 C[MAXPIX];
    float D[MAXPIX];
    uint last[MAXPIX];
    bool done[MAXPIX];
    bool lane_done = true;
    for (uint q = 0u; q < NPIX; q++) {
        uint px = x0 + (q / ROWS) * LPR, py = y0 + q % ROWS;
        T[q] = 1.0; C[q] = vec3(0.0); D[q] = 0.0; last[q] = 0u;
        done[q] = !(px < pc.u0.x && py < pc.u0.y);
        lane_done = lane_done && done[q];
    }
    // The subgroup's columns and rows (CULL skips by these, so they must cover every lane).
    float lox = 0.0, hix = 0.0, loy = 0.0, hiy = 0.0;
    if (CULL != 0u) {
        lox = float(subgroupMin(x0)); hix = float(subgroupMax(x0));
        loy = float(subgroupMin(y0)); hiy = float(subgroupMax(y0));
    }
    uint one = pc.u2.z; // 1, unknown to the compiler: keeps the skip loops real loops
    uint n = range.y - range.x;
    for (uint b = 0u; b < n; b += 8u) {
        if (subgroupAll(lane_done)) break;
        for (uint i = b; i < min(b + 8u, n); i++) {
            int g = int(P4 * texelFetch(kval, int(range.x + i)).x);
            vec4 box = texelFetch(proj4, g + 3);
            // Rows of the subgroup's block the box reaches: loy + [ra, rb].
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
                float pa[COLS], pb[COLS], dx[COLS];
                bool chit[COLS];
                for (uint c = 0u; c < COLS; c++) {
                    float cx = float(c * LPR);
                    chit[c] = CULL == 0u || (box.x <= hix + cx && box.y >= lox + cx);
                    dx[c] = m.x - float(x0 + c * LPR);
                    pa[c] = -0.5 * co.x * dx[c] * dx[c];
                    pb[c] = -co.y * dx[c];
                }
                // Pixels written out one by one (a loop around the skip loops would not be
                // unrolled, and then the per-pixel arrays would live in memory).
                PIXEL(0u) PIXEL(1u) PIXEL(2u) PIXEL(3u) PIXEL(4u) PIXEL(5u) PIXEL(6u) PIXEL(7u)
                PIXEL(8u) PIXEL(9u) PIXEL(10u) PIXEL(11u) PIXEL(12u) PIXEL(13u) PIXEL(14u) PIXEL(15u)
                PIXEL(16u) PIXEL(17u) PIXEL(18u) PIXEL(19u) PIXEL(20u) PIXEL(21u) PIXEL(22u)
                PIXEL(23u) PIXEL(24u) PIXEL(25u) PIXEL(26u) PIXEL(27u) PIXEL(28u) PIXEL(29u)
                PIXEL(30u) PIXEL(31u)
            }
        }
        lane_done = true;
        for (uint q = 0u; q < NPIX; q++) lane_done = lane_done && done[q];
    }
    for (uint q = 0u; q < NPIX; q++) {
        uint px = x0 + (q / ROWS) * LPR, py = y0 + q % ROWS;
        if (px < pc.u0.x && py < pc.u0.y) {
            uint pi = py * pc.u0.x + px;
            out_c[3u * pi] = C[q].r; out_c[3u * pi + 1u] = C[q].g; out_c[3u * pi + 2u] = C[q].b;
            out_d[pi] = D[q];
            out_a[pi] = 1.0 - T[q];
            out_t[pi] = T[q];
            out_n[pi] = last[q];
        }
    }
}
