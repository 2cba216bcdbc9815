// Adam over the flat parameter vector (capacity layout); only the first n Gaussians move.
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Params { float P[]; };
layout(binding = 1) uniform samplerBuffer gradsT; // R32F texels (vectorised reads)
layout(std430, binding = 2) buffer M { float m[]; };
layout(std430, binding = 3) buffer V { float v[]; };
// The same buffers as texels for the reads (each element is read, then written, by one
// invocation).
layout(binding = 4) uniform samplerBuffer paramsT;
layout(binding = 5) uniform samplerBuffer mT;
layout(binding = 6) uniform samplerBuffer vT;
FRAME_BUFFER(7)

void main() {
    uint k = gl_GlobalInvocationID.x;
    uint n = pc.u1.x, cap = pc.u1.y, K = pc.u1.z;
    uint total = (14u + 3u * (K - 1u)) * cap;
    if (k >= total) return;
    uint grp; uint start; uint width;
    if (k < off_scale()) { grp = 0u; start = 0u; width = 3u; }
    else if (k < off_rot()) { grp = 1u; start = off_scale(); width = 3u; }
    else if (k < off_opac()) { grp = 2u; start = off_rot(); width = 4u; }
    else if (k < off_dc()) { grp = 3u; start = off_opac(); width = 1u; }
    else if (k < off_rest()) { grp = 4u; start = off_dc(); width = 3u; }
    else { grp = 5u; start = off_rest(); width = 3u * (K - 1u); }
    if (k - start >= width * n) return;
    float lr = grp < 4u ? pc.r0[grp] : pc.r1[grp - 4u];
    float b1 = pc.r1.z, b2 = pc.r1.w, eps = pc.r2.x;
    float g = texelFetch(gradsT, int(k)).x;
    float mm = b1 * texelFetch(mT, int(k)).x + (1.0 - b1) * g;
    float vv = b2 * texelFetch(vT, int(k)).x + (1.0 - b2) * g * g;
    m[k] = mm; v[k] = vv;
    P[k] = texelFetch(paramsT, int(k)).x - lr * frame.adam.x * mm / (sqrt(vv) * frame.adam.y + eps);
}
