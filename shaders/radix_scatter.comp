// Radix sort pass, part 2: stable scatter. Each thread owns 8 consecutive keys of its block.
layout(local_size_x = 256) in;
layout(binding = 0) uniform usamplerBuffer skeyT;
layout(binding = 1) uniform usamplerBuffer svalT;
layout(std430, binding = 2) writeonly buffer DKey { uint dkey[]; };
layout(std430, binding = 3) writeonly buffer DVal { uint dval[]; };
layout(std430, binding = 4) readonly buffer Counters { uint counters[]; };
layout(std430, binding = 5) readonly buffer HistScan { uint hscan[]; };
shared uint s_cnt[16 * 256];
shared uint s_seg[256];

uint digit(uint idx) { return (texelFetch(skeyT, int(idx)).x >> pc.u2.x) & 15u; }

void main() {
    uint nkeys = (pc.u2.w & 1u) != 0u ? pc.u1.x : min(counters[0], pc.u1.w);
    uint nblocks = pc.u2.y;
    uint lid = gl_LocalInvocationID.x, block = gl_WorkGroupID.x;
    if (block * 2048u >= nkeys) return; // the whole workgroup: nothing to scatter
    for (uint d = 0u; d < 16u; d++) s_cnt[d * 256u + lid] = 0u;
    uint base = block * 2048u + lid * 8u;
    for (uint k = 0u; k < 8u; k++) {
        uint idx = base + k;
        if (idx < nkeys) s_cnt[digit(idx) * 256u + lid] += 1u;
    }
    barrier();
    // Exclusive prefix of s_cnt[d * 256 + t] over the lanes t, for every digit d, by all lanes: lane
    // (d, j) scans t in [16 j, 16 j + 16), then adds the totals of the segments before j (a serial
    // scan by 16 lanes would leave the other lanes idle, and CPU drivers run them masked anyway).
    uint d0 = lid >> 4u, seg = lid & 15u;
    uint b0 = d0 * 256u + seg * 16u;
    uint total = 0u;
    for (uint t = 0u; t < 16u; t++) { uint v = s_cnt[b0 + t]; s_cnt[b0 + t] = total; total += v; }
    s_seg[lid] = total;
    barrier();
    uint before = 0u;
    for (uint j = 0u; j < seg; j++) before += s_seg[(d0 << 4u) + j];
    for (uint t = 0u; t < 16u; t++) s_cnt[b0 + t] += before;
    barrier();
    for (uint k = 0u; k < 8u; k++) {
        uint idx = base + k;
        if (idx < nkeys) {
            uint d = digit(idx);
            uint pos = hscan[d * nblocks + block] + s_cnt[d * 256u + lid];
            s_cnt[d * 256u + lid] += 1u;
            dkey[pos] = texelFetch(skeyT, int(idx)).x; dval[pos] = texelFetch(svalT, int(idx)).x;
        }
    }
}
