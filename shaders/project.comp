// Per Gaussian: cull, EWA-project, colour from SH; writes PROJ_STRIDE floats, the tile count and
// the (depth, index) pair for the depth sort (culled Gaussians sort last).
layout(local_size_x = 256) in;
layout(binding = 0) uniform samplerBuffer paramsT; // parameters, R32F texels (vectorised reads)
#define P(k) texelFetch(paramsT, int(k)).x
layout(std430, binding = 1) writeonly buffer Proj { float proj[]; };
layout(std430, binding = 2) writeonly buffer Touched { uint touched[]; };
layout(std430, binding = 3) writeonly buffer DKey { uint dkey[]; };
layout(std430, binding = 4) writeonly buffer DVal { uint dval[]; };
FRAME_BUFFER(5)

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.u1.x) return;
    uint base = i * PROJ_STRIDE;
    proj[base + 11u] = 0.0; // radius 0: culled (the only field read for culled Gaussians)
    touched[i] = 0u;
    dkey[i] = 0xffffffffu;
    dval[i] = i;
    vec3 pw = vec3(P(off_mean() + 3u * i), P(off_mean() + 3u * i + 1u), P(off_mean() + 3u * i + 2u));
    vec3 s = exp(vec3(P(off_scale() + 3u * i), P(off_scale() + 3u * i + 1u), P(off_scale() + 3u * i + 2u)));
    vec4 q = vec4(P(off_rot() + 4u * i), P(off_rot() + 4u * i + 1u), P(off_rot() + 4u * i + 2u), P(off_rot() + 4u * i + 3u));
    float qn = length(q);
    if (!finite3(pw) || !finite3(s) || !(qn > 1e-12) || isinf(qn)) return;
    mat3 R = pose_r();
    vec3 pc_ = R * pw + pose_t();
    if (!(pc_.z > pc.misc.x && pc_.z < pc.misc.y)) return;
    float W = float(pc.u0.x), H = float(pc.u0.y);
    float fx = pc.intr.x, fy = pc.intr.y, cx = pc.intr.z, cy = pc.intr.w;
    float limx = 1.3 * max(cx, W - cx) / fx, limy = 1.3 * max(cy, H - cy) / fy;
    if (abs(pc_.x / pc_.z) > limx || abs(pc_.y / pc_.z) > limy) return;
    mat3 Rg = quat_to_mat(q / qn);
    mat3 M = Rg * mat3(s.x, 0, 0, 0, s.y, 0, 0, 0, s.z);
    mat3 Sc = R * (M * transpose(M)) * transpose(R);
    float x = pc_.x, y = pc_.y, z = pc_.z;
    mat3 J = transpose(mat3(fx / z, 0.0, -fx * x / (z * z), 0.0, fy / z, -fy * y / (z * z), 0.0, 0.0, 0.0));
    mat3 C3 = J * Sc * transpose(J);
    float a = C3[0][0] + DILATION, b = C3[1][0], c = C3[1][1] + DILATION;
    float det = a * c - b * b;
    if (!(det > 0.0)) return;
    float mid = 0.5 * (a + c);
    float lambda = mid + sqrt(max(mid * mid - det, 0.1));
    float radius = ceil(3.0 * sqrt(lambda));
    vec2 m = vec2(fx * x / z + cx, fy * y / z + cy);
    vec3 con = vec3(c / det, -b / det, a / det);
    float op = 1.0 / (1.0 + exp(-P(off_opac() + i)));
    vec4 box = alpha_extent(m, con, op);
    uvec4 rect = key_rect(m, radius, box);
    if (rect.x >= rect.y || rect.z >= rect.w) return;
    // Colour.
    uint K = pc.u1.z;
    vec3 dir = normalize(pw + transpose(R) * pose_t());
    float yb[16]; vec3 dyb[16];
    sh_basis(dir, K, yb, dyb);
    vec3 col = yb[0] * vec3(P(off_dc() + 3u * i), P(off_dc() + 3u * i + 1u), P(off_dc() + 3u * i + 2u));
    uint rb = off_rest() + 3u * (K - 1u) * i;
    for (uint k = 1u; k < K; k++) {
        col += yb[k] * vec3(P(rb + 3u * (k - 1u)), P(rb + 3u * (k - 1u) + 1u), P(rb + 3u * (k - 1u) + 2u));
    }
    col += 0.5;
    uint clampmask = (col.r < 0.0 ? 1u : 0u) | (col.g < 0.0 ? 2u : 0u) | (col.b < 0.0 ? 4u : 0u);
    col = max(col, vec3(0.0));
    proj[base + 0u] = m.x; proj[base + 1u] = m.y; proj[base + 2u] = op; proj[base + 3u] = z;
    proj[base + 4u] = con.x; proj[base + 5u] = con.y; proj[base + 6u] = con.z;
    proj[base + 7u] = float(clampmask);
    proj[base + 8u] = col.r; proj[base + 9u] = col.g; proj[base + 10u] = col.b;
    proj[base + 11u] = radius;
    proj[base + 12u] = box.x; proj[base + 13u] = box.y; proj[base + 14u] = box.z; proj[base + 15u] = box.w;
    touched[i] = (rect.y - rect.x) * (rect.w - rect.z);
    dkey[i] = floatBitsToUint(z); // z > near > 0: the bits order like the values
}
