// Per Gaussian: chain rule from screen-space gradients to the parameters and the camera pose
// (see cpu/project.rs). Pose contributions are reduced per workgroup, then added atomically.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#if FLOAT_ATOMICS
#extension GL_EXT_shader_atomic_float : require
#endif
layout(local_size_x = 256) in;
layout(binding = 0) uniform samplerBuffer paramsT; // parameters, R32F texels (vectorised reads)
#define P(k) texelFetch(paramsT, int(k)).x
layout(std430, binding = 1) readonly buffer Proj { float proj[]; };
layout(std430, binding = 2) readonly buffer G2 { float g2d[]; };
layout(std430, binding = 3) writeonly buffer Grads { float G[]; };
FRAME_BUFFER(5)
#if FLOAT_ATOMICS
layout(std430, binding = 4) buffer PoseG { float poseg[]; };
void add_pose(uint idx, float v) { atomicAdd(poseg[idx], v); }
#else
layout(std430, binding = 4) buffer PoseG { uint poseg[]; };
void add_pose(uint idx, float v) {
    uint old = poseg[idx];
    while (true) {
        uint assumed = old;
        old = atomicCompSwap(poseg[idx], assumed, floatBitsToUint(uintBitsToFloat(assumed) + v));
        if (old == assumed) break;
    }
}
#endif
shared float s_pose[6][256];

void main() {
    uint i = gl_GlobalInvocationID.x;
    uint lid = gl_LocalInvocationID.x;
    float pose_c[6] = float[6](0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    uint K = pc.u1.z;
    if (i < pc.u1.x) {
        uint base = i * PROJ_STRIDE;
        bool vis = proj[base + 11u] > 0.0;
        // Culled Gaussians get zero gradients; visible ones write every group below.
        if (!vis) {
            for (uint k = 0u; k < 3u; k++) { G[off_mean() + 3u * i + k] = 0.0; G[off_scale() + 3u * i + k] = 0.0; G[off_dc() + 3u * i + k] = 0.0; }
            for (uint k = 0u; k < 4u; k++) G[off_rot() + 4u * i + k] = 0.0;
            G[off_opac() + i] = 0.0;
            for (uint k = 0u; k < 3u * (K - 1u); k++) G[off_rest() + 3u * (K - 1u) * i + k] = 0.0;
        }
        if (vis) {
            uint gb = i * G2D_STRIDE;
            vec2 gmean = vec2(g2d[gb], g2d[gb + 1u]);
            vec3 gcon = vec3(g2d[gb + 2u], g2d[gb + 3u], g2d[gb + 4u]);
            float gop = g2d[gb + 5u];
            vec3 gcol = vec3(g2d[gb + 6u], g2d[gb + 7u], g2d[gb + 8u]);
            float gdep = g2d[gb + 9u];
            uint cm = uint(proj[base + 7u]);
            if ((cm & 1u) != 0u) gcol.r = 0.0;
            if ((cm & 2u) != 0u) gcol.g = 0.0;
            if ((cm & 4u) != 0u) gcol.b = 0.0;
            vec3 pw = vec3(P(off_mean() + 3u * i), P(off_mean() + 3u * i + 1u), P(off_mean() + 3u * i + 2u));
            vec3 s = exp(vec3(P(off_scale() + 3u * i), P(off_scale() + 3u * i + 1u), P(off_scale() + 3u * i + 2u)));
            vec4 q = vec4(P(off_rot() + 4u * i), P(off_rot() + 4u * i + 1u), P(off_rot() + 4u * i + 2u), P(off_rot() + 4u * i + 3u));
            float qnorm = length(q);
            vec4 qn = q / qnorm;
            mat3 R = pose_r();
            vec3 pcam = R * pw + pose_t();
            float x = pcam.x, y = pcam.y, z = pcam.z;
            float fx = pc.intr.x, fy = pc.intr.y;
            mat3 Rg = quat_to_mat(qn);
            mat3 M = Rg * mat3(s.x, 0, 0, 0, s.y, 0, 0, 0, s.z);
            mat3 Sc = R * (M * transpose(M)) * transpose(R);
            mat3 J = transpose(mat3(fx / z, 0.0, -fx * x / (z * z), 0.0, fy / z, -fy * y / (z * z), 0.0, 0.0, 0.0));
            mat3 C3 = J * Sc * transpose(J);
            float a = C3[0][0] + DILATION, b = C3[1][0], c = C3[1][1] + DILATION;
            float det = a * c - b * b;
            // Opacity logit.
            float o = proj[base + 2u];
            G[off_opac() + i] = gop * o * (1.0 - o);
            // SH.
            vec3 draw = pw + transpose(R) * pose_t();
            float n = length(draw);
            vec3 dir = draw / n;
            float yb[16]; vec3 dyb[16];
            sh_basis(dir, K, yb, dyb);
            for (uint ch = 0u; ch < 3u; ch++) G[off_dc() + 3u * i + ch] = yb[0] * gcol[ch];
            vec3 gdir = vec3(0.0);
            uint rb = off_rest() + 3u * (K - 1u) * i;
            for (uint k = 1u; k < K; k++) {
                vec3 coef = vec3(P(rb + 3u * (k - 1u)), P(rb + 3u * (k - 1u) + 1u), P(rb + 3u * (k - 1u) + 2u));
                for (uint ch = 0u; ch < 3u; ch++) G[rb + 3u * (k - 1u) + ch] = yb[k] * gcol[ch];
                gdir += dyb[k] * dot(coef, gcol);
            }
            vec3 graw = (gdir - dir * dot(dir, gdir)) / n;
            // Conic -> covariance.
            mat2 Q = mat2(c / det, -b / det, -b / det, a / det);
            mat2 GQ = mat2(gcon.x, 0.5 * gcon.y, 0.5 * gcon.y, gcon.z);
            mat2 Gc2 = -(Q * GQ * Q);
            mat3 Gc = mat3(Gc2[0][0], Gc2[0][1], 0.0, Gc2[1][0], Gc2[1][1], 0.0, 0.0, 0.0, 0.0);
            mat3 gSc = transpose(J) * Gc * J;
            mat3 gJ = 2.0 * Gc * J * Sc; // gJ[col][row]
            vec3 gpc = vec3(gmean.x * fx / z, gmean.y * fy / z,
                -gmean.x * fx * x / (z * z) - gmean.y * fy * y / (z * z) + gdep);
            gpc.x += gJ[2][0] * (-fx / (z * z));
            gpc.y += gJ[2][1] * (-fy / (z * z));
            gpc.z += gJ[0][0] * (-fx / (z * z)) + gJ[2][0] * (2.0 * fx * x / (z * z * z))
                   + gJ[1][1] * (-fy / (z * z)) + gJ[2][1] * (2.0 * fy * y / (z * z * z));
            vec3 gpw = transpose(R) * gpc + graw;
            for (uint k = 0u; k < 3u; k++) G[off_mean() + 3u * i + k] = gpw[k];
            // Covariance -> scale, rotation.
            mat3 gS = transpose(R) * gSc * R;
            mat3 gM = 2.0 * gS * M;
            for (uint jj = 0u; jj < 3u; jj++) {
                float ds = dot(Rg[jj], gM[jj]); // column jj
                G[off_scale() + 3u * i + jj] = ds * s[jj];
            }
            mat3 gr = mat3(gM[0] * s.x, gM[1] * s.y, gM[2] * s.z);
            // gr[col][row]; write G_rc = gr[c][r].
            float w = qn.x, qx = qn.y, qy = qn.z, qz = qn.w;
            float g01 = gr[1][0], g02 = gr[2][0], g10 = gr[0][1], g12 = gr[2][1], g20 = gr[0][2], g21 = gr[1][2];
            float g00 = gr[0][0], g11 = gr[1][1], g22 = gr[2][2];
            vec4 gqn = 2.0 * vec4(
                -qz * g01 + qy * g02 + qz * g10 - qx * g12 - qy * g20 + qx * g21,
                qy * g01 + qz * g02 + qy * g10 - 2.0 * qx * g11 - w * g12 + qz * g20 + w * g21 - 2.0 * qx * g22,
                -2.0 * qy * g00 + qx * g01 + w * g02 + qx * g10 + qz * g12 - w * g20 + qz * g21 - 2.0 * qy * g22,
                -2.0 * qz * g00 - w * g01 + qx * g02 + w * g10 - 2.0 * qz * g11 + qy * g12 + qx * g20 + qy * g21);
            vec4 gq = (gqn - qn * dot(qn, gqn)) / qnorm;
            for (uint k = 0u; k < 4u; k++) G[off_rot() + 4u * i + k] = gq[k];
            // Pose.
            vec3 gv = gpc + R * graw;
            vec3 gw = cross(pcam, gpc);
            mat3 A = Sc * gSc - gSc * Sc; // A[col][row]
            gw += 2.0 * vec3(A[2][1], A[0][2], A[1][0]);
            pose_c[0] = gv.x; pose_c[1] = gv.y; pose_c[2] = gv.z;
            pose_c[3] = gw.x; pose_c[4] = gw.y; pose_c[5] = gw.z;
        }
    }
    // Subgroup sums (butterfly, as in raster_bwd.comp), then one lane per pose component adds
    // the subgroups' (one barrier).
    for (uint off = 1u; off < gl_SubgroupSize; off *= 2u)
        for (uint k = 0u; k < 6u; k++) pose_c[k] += subgroupShuffleXor(pose_c[k], off);
    if (subgroupElect())
        for (uint k = 0u; k < 6u; k++) s_pose[k][gl_SubgroupID] = pose_c[k];
    barrier();
    if (lid < 6u) {
        float t = 0.0;
        for (uint sg = 0u; sg < gl_NumSubgroups; sg++) t += s_pose[lid][sg];
        add_pose(lid, t);
    }
}
