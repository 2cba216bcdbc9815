// Start/end of each tile's run in the sorted keys.
layout(local_size_x = 256) in;
layout(binding = 0) uniform usamplerBuffer khiT;
#define khi(k) texelFetch(khiT, int(k)).x
layout(std430, binding = 1) readonly buffer Counters { uint counters[]; };
layout(std430, binding = 2) buffer Ranges { uvec2 ranges[]; };

void main() {
    uint n = min(counters[0], pc.u1.w);
    uint k = gl_GlobalInvocationID.x;
    if (k >= n) return;
    uint t = khi(k);
    if (k == 0u || khi(k - 1u) != t) ranges[t].x = k;
    if (k == n - 1u || khi(k + 1u) != t) ranges[t].y = k + 1u;
}
