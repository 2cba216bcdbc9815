// Adjoint of the SSIM window sums, horizontal pass: per pixel and channel the zero-padded row sums
// of loss_fwd.comp's partials (dmu, dxx, dxy, 0), one vec4 per pixel and channel.
layout(local_size_x = 256) in;
layout(binding = 0) uniform samplerBuffer dpT; // loss_fwd.comp's partials
layout(std430, binding = 1) writeonly buffer HS { vec4 hs[]; };

void main() {
    uint pi = gl_GlobalInvocationID.x;
    uint W = pc.u0.x, H = pc.u0.y;
    if (pi >= W * H || pc.misc.z == 0.0) return;
    int x = int(pi % W);
    vec4 s[3] = vec4[3](vec4(0.0), vec4(0.0), vec4(0.0));
    for (int k = -5; k <= 5; k++) {
        int xx = clamp(x + k, 0, int(W) - 1);
        float w = (x + k >= 0 && x + k < int(W)) ? SSIM_W[k + 5] : 0.0;
        int o = 3 * (int(pi) - x + xx);
        for (int ch = 0; ch < 3; ch++) s[ch] += w * texelFetch(dpT, o + ch);
    }
    for (uint ch = 0u; ch < 3u; ch++) hs[3u * pi + ch] = s[ch];
}
