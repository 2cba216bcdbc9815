// Adjoint of the SSIM window sums, vertical pass over the row sums of ssim_bh.comp; adds the
// SSIM gradient to the L1 gradient in dl_c.
layout(local_size_x = 256) in;
layout(binding = 0) uniform samplerBuffer imgT;
layout(binding = 1) uniform samplerBuffer tgtT;
layout(binding = 2) uniform samplerBuffer hsT; // ssim_bh.comp's row sums, 3 texels per pixel
layout(std430, binding = 3) buffer DC { float dl_c[]; };

void main() {
    uint pi = gl_GlobalInvocationID.x;
    uint W = pc.u0.x, H = pc.u0.y;
    if (pi >= W * H || pc.misc.z == 0.0) return;
    int y = int(pi / W);
    vec4 s[3] = vec4[3](vec4(0.0), vec4(0.0), vec4(0.0));
    for (int k = -5; k <= 5; k++) {
        int yy = clamp(y + k, 0, int(H) - 1);
        float w = (y + k >= 0 && y + k < int(H)) ? SSIM_W[k + 5] : 0.0;
        int o = 3 * (int(pi) + (yy - y) * int(W));
        for (int ch = 0; ch < 3; ch++) s[ch] += w * texelFetch(hsT, o + ch);
    }
    for (uint ch = 0u; ch < 3u; ch++) {
        uint q = 3u * pi + ch;
        dl_c[q] += s[ch].x + 2.0 * texelFetch(imgT, int(q)).x * s[ch].y + texelFetch(tgtT, int(q)).x * s[ch].z;
    }
}
