// Per Gaussian in depth order (position s of the depth sort): one key (tile) and value (Gaussian
// id) per touched tile, at the scanned offset; a stable sort by tile then keeps depth order.
layout(local_size_x = 256) in;
layout(binding = 0) uniform samplerBuffer proj4; // PROJ_STRIDE / 4 texels per Gaussian
layout(std430, binding = 1) readonly buffer Offsets { uint offsets[]; };
layout(binding = 2) uniform usamplerBuffer sortedT;
layout(std430, binding = 3) writeonly buffer Key { uint key[]; };
layout(std430, binding = 4) writeonly buffer Val { uint val[]; };

void main() {
    uint s = gl_GlobalInvocationID.x;
    if (s >= pc.u1.x) return;
    uint i = texelFetch(sortedT, int(s)).x;
    int g = int(i * (PROJ_STRIDE / 4u));
    float radius = texelFetch(proj4, g + 2).w;
    if (radius <= 0.0) return;
    vec4 box = texelFetch(proj4, g + 3);
    uvec4 r = key_rect(texelFetch(proj4, g).xy, radius, box);
    uint o = offsets[s];
    uint cap = pc.u1.w;
    for (uint ty = r.z; ty < r.w; ty++) {
        for (uint tx = r.x; tx < r.y; tx++) {
            if (o < cap) { key[o] = ty * pc.u0.z + tx; val[o] = i; }
            o++;
        }
    }
}
