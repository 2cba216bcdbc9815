// Radix sort pass, part 2: stable scatter. Each thread owns 8 consecutive keys of its block.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer SKey { uint skey[]; };
layout(std430, binding = 1) readonly buffer SVal { uint sval[]; };
layout(std430, binding = 2) writeonly buffer DKey { uint dkey[]; };
layout(std430, binding = 3) writeonly buffer DVal { uint dval[]; };
layout(std430, binding = 4) readonly buffer Counters { uint counters[]; };
layout(std430, binding = 5) readonly buffer HistScan { uint hscan[]; };
shared uint s_cnt[16 * 256];

uint digit(uint idx) { return (skey[idx] >> pc.u2.x) & 15u; }

void main() {
    uint nkeys = (pc.u2.w & 1u) != 0u ? pc.u1.x : min(counters[0], pc.u1.w);
    uint nblocks = pc.u2.y;
    uint lid = gl_LocalInvocationID.x, block = gl_WorkGroupID.x;
    for (uint d = 0u; d < 16u; d++) s_cnt[d * 256u + lid] = 0u;
    uint base = block * 2048u + lid * 8u;
    for (uint k = 0u; k < 8u; k++) {
        uint idx = base + k;
        if (idx < nkeys) s_cnt[digit(idx) * 256u + lid] += 1u;
    }
    barrier();
    if (lid < 16u) {
        uint sum = 0u;
        for (uint t = 0u; t < 256u; t++) { uint v = s_cnt[lid * 256u + t]; s_cnt[lid * 256u + t] = sum; sum += v; }
    }
    barrier();
    for (uint k = 0u; k < 8u; k++) {
        uint idx = base + k;
        if (idx < nkeys) {
            uint d = digit(idx);
            uint pos = hscan[d * nblocks + block] + s_cnt[d * 256u + lid];
            s_cnt[d * 256u + lid] += 1u;
            dkey[pos] = skey[idx]; dval[pos] = sval[idx];
        }
    }
}
