// Exclusive prefix sum of u2.x values by one workgroup; the total goes to counters[u2.y]. With
// flag bit 0 (u2.w) the values are read through an index: vin[idx[i]].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer In { uint vin[]; };
layout(std430, binding = 1) writeonly buffer Out { uint vout[]; };
layout(std430, binding = 2) buffer Counters { uint counters[]; };
layout(std430, binding = 3) readonly buffer Idx { uint idx[]; };
shared uint s[256];

uint value(uint i) { return (pc.u2.w & 1u) != 0u ? vin[idx[i]] : vin[i]; }

void main() {
    uint n = pc.u2.x;
    uint lid = gl_LocalInvocationID.x;
    uint chunk = (n + 255u) / 256u;
    uint start = lid * chunk;
    uint end = min(start + chunk, n);
    uint sum = 0u;
    for (uint i = start; i < end; i++) sum += value(i);
    s[lid] = sum;
    barrier();
    for (uint off = 1u; off < 256u; off *= 2u) {
        uint v = lid >= off ? s[lid - off] : 0u;
        barrier();
        s[lid] += v;
        barrier();
    }
    uint run = s[lid] - sum;
    for (uint i = start; i < end; i++) { uint v = value(i); vout[i] = run; run += v; }
    if (lid == 255u) counters[pc.u2.y] = s[255];
}
