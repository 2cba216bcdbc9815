// Per pixel and channel: L1 gradient (into dl_c) and the SSIM partials w.r.t. mu_x, E[x^2],
// E[xy] (see cpu/loss.rs); loss_map gets the per-pixel loss contribution.
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer Img { float img[]; };
layout(std430, binding = 1) readonly buffer Tgt { float tgt[]; };
layout(std430, binding = 2) writeonly buffer DMu { float dmu[]; };
layout(std430, binding = 3) writeonly buffer DXX { float dxx[]; };
layout(std430, binding = 4) writeonly buffer DXY { float dxy[]; };
layout(std430, binding = 5) writeonly buffer LossMap { float lmap[]; };
layout(std430, binding = 6) writeonly buffer DC { float dl_c[]; };
const float C1 = 0.0001;
const float C2 = 0.0009;

float wt(int k) { float x = float(k); return exp(-x * x / 4.5); }

void main() {
    uvec2 pix = gl_GlobalInvocationID.xy;
    uint W = pc.u0.x, H = pc.u0.y;
    if (pix.x >= W || pix.y >= H) return;
    float lambda = pc.misc.z, inv_n = pc.misc.w;
    float wsum = 0.0;
    for (int k = -5; k <= 5; k++) wsum += wt(k);
    uint pi = pix.y * W + pix.x;
    float lsum = 0.0;
    for (uint ch = 0u; ch < 3u; ch++) {
        uint q = 3u * pi + ch;
        float dd = img[q] - tgt[q];
        lsum += (1.0 - lambda) * abs(dd) * inv_n;
        dl_c[q] = (1.0 - lambda) * sign(dd) * inv_n;
        if (lambda == 0.0) { dmu[q] = 0.0; dxx[q] = 0.0; dxy[q] = 0.0; continue; }
        float mx = 0.0, my = 0.0, exx = 0.0, eyy = 0.0, exy = 0.0;
        for (int dy = -5; dy <= 5; dy++) {
            int yy = int(pix.y) + dy;
            if (yy < 0 || yy >= int(H)) continue;
            for (int dx = -5; dx <= 5; dx++) {
                int xx = int(pix.x) + dx;
                if (xx < 0 || xx >= int(W)) continue;
                float w = wt(dx) * wt(dy) / (wsum * wsum);
                uint o = 3u * (uint(yy) * W + uint(xx)) + ch;
                float a = img[o], b = tgt[o];
                mx += w * a; my += w * b; exx += w * a * a; eyy += w * b * b; exy += w * a * b;
            }
        }
        float a1 = 2.0 * mx * my + C1;
        float a2 = 2.0 * (exy - mx * my) + C2;
        float b1 = mx * mx + my * my + C1;
        float b2 = (exx - mx * mx) + (eyy - my * my) + C2;
        float s = a1 * a2 / (b1 * b2);
        lsum += lambda * (1.0 - s) * inv_n;
        float sc = -lambda * inv_n;
        dmu[q] = sc * ((2.0 * my * a2 - 2.0 * my * a1) / (b1 * b2) - s * (2.0 * mx * b2 - 2.0 * mx * b1) / (b1 * b2));
        dxx[q] = sc * (-s / b2);
        dxy[q] = sc * (2.0 * a1 / (b1 * b2));
    }
    lmap[pi] = lsum;
}
