// Per Gaussian in depth order (position s of the depth sort): one key (tile) and value (Gaussian
// id) per touched tile, at the scanned offset; a stable sort by tile then keeps depth order.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Proj { float proj[]; };
layout(std430, binding = 1) readonly buffer Offsets { uint offsets[]; };
layout(std430, binding = 2) readonly buffer Sorted { uint sorted[]; };
layout(std430, binding = 3) writeonly buffer Key { uint key[]; };
layout(std430, binding = 4) writeonly buffer Val { uint val[]; };

void main() {
    uint s = gl_GlobalInvocationID.x;
    if (s >= pc.u1.x) return;
    uint i = sorted[s];
    uint base = i * PROJ_STRIDE;
    float radius = proj[base + 11u];
    if (radius <= 0.0) return;
    vec4 box = vec4(proj[base + 12u], proj[base + 13u], proj[base + 14u], proj[base + 15u]);
    uvec4 r = key_rect(vec2(proj[base], proj[base + 1u]), radius, box);
    uint o = offsets[s];
    uint cap = pc.u1.w;
    for (uint ty = r.z; ty < r.w; ty++) {
        for (uint tx = r.x; tx < r.y; tx++) {
            if (o < cap) { key[o] = ty * pc.u0.z + tx; val[o] = i; }
            o++;
        }
    }
}
