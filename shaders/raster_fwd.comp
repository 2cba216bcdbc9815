// One 16x16 workgroup per tile: front-to-back blending of the tile's depth-sorted Gaussians.
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer Proj { float proj[]; };
layout(std430, binding = 1) readonly buffer Val { uint kval[]; };
layout(std430, binding = 2) readonly buffer Ranges { uvec2 ranges[]; };
layout(std430, binding = 3) writeonly buffer OutC { float out_c[]; };
layout(std430, binding = 4) writeonly buffer OutD { float out_d[]; };
layout(std430, binding = 5) writeonly buffer OutA { float out_a[]; };
layout(std430, binding = 6) writeonly buffer OutT { float out_t[]; };
layout(std430, binding = 7) writeonly buffer OutN { uint out_n[]; };
shared vec4 s_mo[256];  // mean xy, opacity, depth
shared vec4 s_con[256]; // conic abc
shared vec4 s_col[256]; // colour
shared uint s_done;

void main() {
    uint tile = gl_WorkGroupID.y * pc.u0.z + gl_WorkGroupID.x;
    uvec2 pix = gl_WorkGroupID.xy * TILE + gl_LocalInvocationID.xy;
    uint lid = gl_LocalInvocationIndex;
    bool inside = pix.x < pc.u0.x && pix.y < pc.u0.y;
    bool done = !inside;
    uvec2 range = ranges[tile];
    uint todo = range.y - range.x;
    uint rounds = (todo + 255u) / 256u;
    float T = 1.0;
    vec3 C = vec3(0.0);
    float D = 0.0;
    uint contributor = 0u, last = 0u;
    vec2 p = vec2(pix);
    for (uint r = 0u; r < rounds; r++) {
        if (lid == 0u) s_done = 0u;
        barrier();
        if (done) atomicAdd(s_done, 1u);
        barrier();
        if (s_done == 256u) break;
        uint idx = range.x + r * 256u + lid;
        if (idx < range.y) {
            uint g = kval[idx] * PROJ_STRIDE;
            s_mo[lid] = vec4(proj[g], proj[g + 1u], proj[g + 5u], proj[g + 9u]);
            s_con[lid] = vec4(proj[g + 2u], proj[g + 3u], proj[g + 4u], 0.0);
            s_col[lid] = vec4(proj[g + 6u], proj[g + 7u], proj[g + 8u], 0.0);
        }
        barrier();
        uint cnt = min(256u, todo - r * 256u);
        for (uint j = 0u; j < cnt && !done; j++) {
            contributor++;
            vec2 d = s_mo[j].xy - p;
            vec3 co = s_con[j].xyz;
            float power = -0.5 * (co.x * d.x * d.x + co.z * d.y * d.y) - co.y * d.x * d.y;
            if (power > 0.0) continue;
            float alpha = min(ALPHA_MAX, s_mo[j].z * exp(power));
            if (alpha < ALPHA_MIN) continue;
            float nt = T * (1.0 - alpha);
            if (nt < T_MIN) { done = true; break; }
            C += s_col[j].xyz * (alpha * T);
            D += s_mo[j].w * (alpha * T);
            T = nt;
            last = contributor;
        }
        barrier();
    }
    if (inside) {
        uint pi = pix.y * pc.u0.x + pix.x;
        out_c[3u * pi] = C.r; out_c[3u * pi + 1u] = C.g; out_c[3u * pi + 2u] = C.b;
        out_d[pi] = D;
        out_a[pi] = 1.0 - T;
        out_t[pi] = T;
        out_n[pi] = last;
    }
}
