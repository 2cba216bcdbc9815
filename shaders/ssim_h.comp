// SSIM window sums, horizontal pass (the window is separable and zero-padded): per pixel and
// channel, the row sums of x, y, x^2, y^2, xy (x = render, y = target) into four vec4 per pixel,
// value 5 ch + j at hs[4 pixel + (5 ch + j) / 4], component (5 ch + j) % 4 (the last unused).
// Inputs are read through texel fetches, which CPU drivers vectorise (storage loads go lane by
// lane).
layout(local_size_x = 256) in;
layout(binding = 0) uniform samplerBuffer imgT; // render, RGB per pixel
layout(binding = 1) uniform samplerBuffer tgtT; // target
layout(std430, binding = 2) writeonly buffer HS { vec4 hs[]; };

void main() {
    uint pi = gl_GlobalInvocationID.x;
    uint W = pc.u0.x, H = pc.u0.y;
    if (pi >= W * H || pc.misc.z == 0.0) return;
    int x = int(pi % W);
    float s[16];
    for (int j = 0; j < 16; j++) s[j] = 0.0;
    for (int k = -5; k <= 5; k++) {
        int xx = clamp(x + k, 0, int(W) - 1);
        float w = (x + k >= 0 && x + k < int(W)) ? SSIM_W[k + 5] : 0.0;
        int o = 3 * (int(pi) - x + xx);
        for (int ch = 0; ch < 3; ch++) {
            float a = texelFetch(imgT, o + ch).x, b = texelFetch(tgtT, o + ch).x;
            s[5 * ch] += w * a;
            s[5 * ch + 1] += w * b;
            s[5 * ch + 2] += w * a * a;
            s[5 * ch + 3] += w * b * b;
            s[5 * ch + 4] += w * a * b;
        }
    }
    for (uint j = 0u; j < 4u; j++) hs[4u * pi + j] = vec4(s[4u * j], s[4u * j + 1u], s[4u * j + 2u], s[4u * j + 3u]);
}
