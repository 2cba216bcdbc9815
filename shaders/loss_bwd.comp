// Adjoint of the SSIM window sums; adds to the L1 gradient in dl_c.
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer Img { float img[]; };
layout(std430, binding = 1) readonly buffer Tgt { float tgt[]; };
layout(std430, binding = 2) readonly buffer DMu { float dmu[]; };
layout(std430, binding = 3) readonly buffer DXX { float dxx[]; };
layout(std430, binding = 4) readonly buffer DXY { float dxy[]; };
layout(std430, binding = 5) buffer DC { float dl_c[]; };

float wt(int k) { float x = float(k); return exp(-x * x / 4.5); }

void main() {
    uvec2 pix = gl_GlobalInvocationID.xy;
    uint W = pc.u0.x, H = pc.u0.y;
    if (pix.x >= W || pix.y >= H || pc.misc.z == 0.0) return;
    float wsum = 0.0;
    for (int k = -5; k <= 5; k++) wsum += wt(k);
    uint pi = pix.y * W + pix.x;
    for (uint ch = 0u; ch < 3u; ch++) {
        float gmu = 0.0, gxx = 0.0, gxy = 0.0;
        for (int dy = -5; dy <= 5; dy++) {
            int yy = int(pix.y) + dy;
            if (yy < 0 || yy >= int(H)) continue;
            for (int dx = -5; dx <= 5; dx++) {
                int xx = int(pix.x) + dx;
                if (xx < 0 || xx >= int(W)) continue;
                float w = wt(dx) * wt(dy) / (wsum * wsum);
                uint o = 3u * (uint(yy) * W + uint(xx)) + ch;
                gmu += w * dmu[o]; gxx += w * dxx[o]; gxy += w * dxy[o];
            }
        }
        uint q = 3u * pi + ch;
        dl_c[q] += gmu + 2.0 * img[q] * gxx + tgt[q] * gxy;
    }
}
