// Per pixel and channel: L1 gradient (into dl_c) and, from the vertical pass over the row sums of
// ssim_h.comp, SSIM and its partials w.r.t. mu_x, E[x^2], E[xy] (see cpu/loss.rs) as one vec4
// (dmu, dxx, dxy, 0) per pixel and channel; loss_map gets the per-pixel loss contribution.
layout(local_size_x = 256) in;
layout(binding = 0) uniform samplerBuffer imgT;
layout(binding = 1) uniform samplerBuffer tgtT;
layout(binding = 2) uniform samplerBuffer hsT; // ssim_h.comp's row sums, 4 texels per pixel
layout(std430, binding = 3) writeonly buffer DP { vec4 dp[]; };
layout(std430, binding = 4) writeonly buffer LossMap { float lmap[]; };
layout(std430, binding = 5) writeonly buffer DC { float dl_c[]; };
const float C1 = 0.0001;
const float C2 = 0.0009;

void main() {
    uint pi = gl_GlobalInvocationID.x;
    uint W = pc.u0.x, H = pc.u0.y;
    if (pi >= W * H) return;
    float lambda = pc.misc.z, inv_n = pc.misc.w;
    int y = int(pi / W);
    vec4 s[4] = vec4[4](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
    if (lambda != 0.0) {
        for (int k = -5; k <= 5; k++) {
            int yy = clamp(y + k, 0, int(H) - 1);
            float w = (y + k >= 0 && y + k < int(H)) ? SSIM_W[k + 5] : 0.0;
            int o = 4 * (int(pi) + (yy - y) * int(W));
            for (int j = 0; j < 4; j++) s[j] += w * texelFetch(hsT, o + j);
        }
    }
    float f[16] = float[16](s[0].x, s[0].y, s[0].z, s[0].w, s[1].x, s[1].y, s[1].z, s[1].w,
                            s[2].x, s[2].y, s[2].z, s[2].w, s[3].x, s[3].y, s[3].z, s[3].w);
    float lsum = 0.0;
    for (uint ch = 0u; ch < 3u; ch++) {
        uint q = 3u * pi + ch;
        float dd = texelFetch(imgT, int(q)).x - texelFetch(tgtT, int(q)).x;
        lsum += (1.0 - lambda) * abs(dd) * inv_n;
        dl_c[q] = (1.0 - lambda) * sign(dd) * inv_n;
        float mx = f[5u * ch], my = f[5u * ch + 1u];
        float exx = f[5u * ch + 2u], eyy = f[5u * ch + 3u], exy = f[5u * ch + 4u];
        float a1 = 2.0 * mx * my + C1;
        float a2 = 2.0 * (exy - mx * my) + C2;
        float b1 = mx * mx + my * my + C1;
        float b2 = (exx - mx * mx) + (eyy - my * my) + C2;
        float ssim = a1 * a2 / (b1 * b2);
        float sc = lambda == 0.0 ? 0.0 : -lambda * inv_n;
        lsum += lambda * (1.0 - ssim) * inv_n;
        float dmu = sc * ((2.0 * my * a2 - 2.0 * my * a1) / (b1 * b2) - ssim * (2.0 * mx * b2 - 2.0 * mx * b1) / (b1 * b2));
        dp[q] = vec4(dmu, sc * (-ssim / b2), sc * (2.0 * a1 / (b1 * b2)), 0.0);
    }
    lmap[pi] = lsum;
}
