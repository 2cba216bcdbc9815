// Radix sort pass, part 1: 16-bin digit histogram of each block of 2048 keys. The key count is
// counters[0] (tile keys) or, with flag bit 0 (u2.w), the Gaussian count (depth sort).
layout(local_size_x = 256) in;
layout(binding = 0) uniform usamplerBuffer keysT;
layout(std430, binding = 1) readonly buffer Counters { uint counters[]; };
layout(std430, binding = 2) writeonly buffer Hist { uint hist[]; };
shared uint s_hist[16];

void main() {
    uint nkeys = (pc.u2.w & 1u) != 0u ? pc.u1.x : min(counters[0], pc.u1.w);
    uint shift = pc.u2.x, nblocks = pc.u2.y;
    uint lid = gl_LocalInvocationID.x, block = gl_WorkGroupID.x;
    if (block * 2048u >= nkeys) { // the whole workgroup: an empty block
        if (lid < 16u) hist[lid * nblocks + block] = 0u;
        return;
    }
    if (lid < 16u) s_hist[lid] = 0u;
    barrier();
    uint base = block * 2048u + lid * 8u;
    for (uint k = 0u; k < 8u; k++) {
        uint idx = base + k;
        if (idx < nkeys) atomicAdd(s_hist[(texelFetch(keysT, int(idx)).x >> shift) & 15u], 1u);
    }
    barrier();
    if (lid < 16u) hist[lid * nblocks + block] = s_hist[lid];
}
