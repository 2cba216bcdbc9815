// Per Gaussian: one (tile, depth) key per touched tile, in Gaussian order.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Proj { float proj[]; };
layout(std430, binding = 1) readonly buffer Offsets { uint offsets[]; };
layout(std430, binding = 2) writeonly buffer Hi { uint khi[]; };
layout(std430, binding = 3) writeonly buffer Lo { uint klo[]; };
layout(std430, binding = 4) writeonly buffer Val { uint kval[]; };

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.u1.x) return;
    uint base = i * PROJ_STRIDE;
    float radius = proj[base + 11u];
    if (radius <= 0.0) return;
    uvec4 r = tile_rect(vec2(proj[base], proj[base + 1u]), radius);
    uint o = offsets[i];
    uint cap = pc.u1.w;
    uint depth = floatBitsToUint(proj[base + 9u]);
    for (uint ty = r.z; ty < r.w; ty++) {
        for (uint tx = r.x; tx < r.y; tx++) {
            if (o < cap) { khi[o] = ty * pc.u0.z + tx; klo[o] = depth; kval[o] = i; }
            o++;
        }
    }
}
