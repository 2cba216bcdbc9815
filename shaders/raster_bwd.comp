// One 16x16 workgroup per tile: back-to-front replay; per-Gaussian screen-space gradients are
// summed over the subgroup, then added atomically (float atomics or a CAS loop).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_vote : require
#if FLOAT_ATOMICS
#extension GL_EXT_shader_atomic_float : require
#endif
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer Proj { float proj[]; };
layout(std430, binding = 1) readonly buffer Val { uint kval[]; };
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
shared vec4 s_mo[256];
shared vec4 s_con[256];
shared vec4 s_col[256];
shared uint s_id[256];

void main() {
    uint tile = gl_WorkGroupID.y * pc.u0.z + gl_WorkGroupID.x;
    uvec2 pix = gl_WorkGroupID.xy * TILE + gl_LocalInvocationID.xy;
    uint lid = gl_LocalInvocationIndex;
    bool inside = pix.x < pc.u0.x && pix.y < pc.u0.y;
    uint pi = pix.y * pc.u0.x + pix.x;
    uvec2 range = ranges[tile];
    uint todo = range.y - range.x;
    uint rounds = (todo + 255u) / 256u;
    float T = inside ? in_t[pi] : 1.0;
    uint last = inside ? in_n[pi] : 0u;
    float dl[5];
    dl[0] = inside ? dl_c[3u * pi] : 0.0;
    dl[1] = inside ? dl_c[3u * pi + 1u] : 0.0;
    dl[2] = inside ? dl_c[3u * pi + 2u] : 0.0;
    dl[3] = (inside && (pc.u2.w & 1u) != 0u) ? dl_d[pi] : 0.0;
    dl[4] = (inside && (pc.u2.w & 2u) != 0u) ? dl_a[pi] : 0.0;
    float accum[5] = float[5](0.0, 0.0, 0.0, 0.0, 0.0);
    float last_f[5] = float[5](0.0, 0.0, 0.0, 0.0, 0.0);
    float last_alpha = 0.0;
    uint contributor = todo;
    vec2 p = vec2(pix);
    for (uint r = 0u; r < rounds; r++) {
        barrier();
        uint k = r * 256u + lid;
        if (k < todo) {
            uint gid = kval[range.y - 1u - k];
            uint g = gid * PROJ_STRIDE;
            s_id[lid] = gid;
            s_mo[lid] = vec4(proj[g], proj[g + 1u], proj[g + 5u], proj[g + 9u]);
            s_con[lid] = vec4(proj[g + 2u], proj[g + 3u], proj[g + 4u], 0.0);
            s_col[lid] = vec4(proj[g + 6u], proj[g + 7u], proj[g + 8u], 0.0);
        }
        barrier();
        uint cnt = min(256u, todo - r * 256u);
        for (uint j = 0u; j < cnt; j++) {
            contributor--;
            bool act = inside && contributor < last;
            vec2 d = s_mo[j].xy - p;
            vec3 co = s_con[j].xyz;
            float power = -0.5 * (co.x * d.x * d.x + co.z * d.y * d.y) - co.y * d.x * d.y;
            float gauss = exp(min(power, 0.0));
            float raw = s_mo[j].z * gauss;
            float alpha = min(ALPHA_MAX, raw);
            act = act && power <= 0.0 && alpha >= ALPHA_MIN;
            float gm_x = 0.0, gm_y = 0.0, gc_a = 0.0, gc_b = 0.0, gc_c = 0.0, gop = 0.0;
            vec3 gcol = vec3(0.0);
            float gdep = 0.0;
            if (act) {
                T = T / (1.0 - alpha);
                float f[5] = float[5](s_col[j].x, s_col[j].y, s_col[j].z, s_mo[j].w, 1.0);
                float dl_da = 0.0;
                for (int ch = 0; ch < 5; ch++) {
                    accum[ch] = last_alpha * last_f[ch] + (1.0 - last_alpha) * accum[ch];
                    dl_da += (f[ch] - accum[ch]) * dl[ch];
                    last_f[ch] = f[ch];
                }
                dl_da *= T;
                last_alpha = alpha;
                float w = alpha * T;
                gcol = w * vec3(dl[0], dl[1], dl[2]);
                gdep = w * dl[3];
                if (raw <= ALPHA_MAX) {
                    float dl_dpow = gauss * s_mo[j].z * dl_da;
                    gop = gauss * dl_da;
                    gm_x = -dl_dpow * (co.x * d.x + co.y * d.y);
                    gm_y = -dl_dpow * (co.z * d.y + co.y * d.x);
                    gc_a = -0.5 * d.x * d.x * dl_dpow;
                    gc_b = -d.x * d.y * dl_dpow;
                    gc_c = -0.5 * d.y * d.y * dl_dpow;
                }
            }
            if (subgroupAny(act)) {
                float v[10] = float[10](subgroupAdd(gm_x), subgroupAdd(gm_y), subgroupAdd(gc_a),
                    subgroupAdd(gc_b), subgroupAdd(gc_c), subgroupAdd(gop), subgroupAdd(gcol.r),
                    subgroupAdd(gcol.g), subgroupAdd(gcol.b), subgroupAdd(gdep));
                if (subgroupElect()) {
                    uint b = s_id[j] * G2D_STRIDE;
                    for (uint q = 0u; q < 10u; q++) if (v[q] != 0.0) add_g(b + q, v[q]);
                }
            }
        }
    }
}
