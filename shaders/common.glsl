// Shared by every kernel (build.rs prepends it). One 128-byte push-constant block for all.
// Push constants hold only what a recorded command buffer keeps between submissions; the pose and
// Adam's bias corrections change every submission and come from the frame buffer (FRAME_BUFFER).
layout(push_constant) uniform PC {
    vec4 r0;   // unused                                                  | adam: lr0..lr3
    vec4 r1;   // unused                                                  | adam: lr4, lr5, beta1, beta2
    vec4 r2;   // unused                                                  | adam: eps
    vec4 intr; // fx, fy, cx, cy
    vec4 misc; // near, far, loss ssim weight, 1/(pixels*3)
    uvec4 u0;  // width, height, tiles_x, tiles_y
    uvec4 u1;  // n Gaussians, capacity, SH coefficients K, key capacity
    uvec4 u2;  // per-dispatch: count / shift, slot / blocks, word, flags
} pc;

#define TILE 16u
#define DILATION 0.3
#define ALPHA_MAX 0.99
#define ALPHA_MIN (1.0 / 255.0)
#define T_MIN 1e-4
// Projected Gaussian, four vec4: (mean x, mean y, opacity, depth), (conic a, b, c, colour clamp
// mask), (r, g, b, radius), alpha box (x0, x1, y0, y1) in pixels (see alpha_extent).
#define PROJ_STRIDE 16u
#define G2D_STRIDE 10u

// Parameter group offsets (x capacity), layout of render::types::GaussianSet.
uint off_mean() { return 0u; }
uint off_scale() { return 3u * pc.u1.y; }
uint off_rot() { return 6u * pc.u1.y; }
uint off_opac() { return 10u * pc.u1.y; }
uint off_dc() { return 11u * pc.u1.y; }
uint off_rest() { return 14u * pc.u1.y; }

// Per-submission values, written by the host before each submission: world-to-camera rotation
// rows with the translation in w (r0, r1, r2), and Adam's 1/bc1, 1/sqrt(bc2) (adam.xy). A kernel
// that reads them declares FRAME_BUFFER(its binding).
#define FRAME_BUFFER(b) layout(std430, binding = b) readonly buffer Frame { vec4 r0; vec4 r1; vec4 r2; vec4 adam; } frame;
#define pose_r() transpose(mat3(frame.r0.xyz, frame.r1.xyz, frame.r2.xyz))
#define pose_t() vec3(frame.r0.w, frame.r1.w, frame.r2.w)

mat3 quat_to_mat(vec4 q) { // (w, x, y, z), normalised
    float w = q.x, x = q.y, y = q.z, z = q.w;
    return transpose(mat3(
        1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y),
        2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x),
        2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)));
}

const float SH_C0 = 0.28209479177387814;
const float SH_C1 = 0.4886025119029199;
const float SH_C2[5] = float[5](1.0925484305920792, -1.0925484305920792, 0.31539156525252005,
                                -1.0925484305920792, 0.5462742152960396);
const float SH_C3[7] = float[7](-0.5900435899266435, 2.890611442640554, -0.4570457994644658,
                                0.3731763325901154, -0.4570457994644658, 1.445305721320277,
                                -0.5900435899266435);

// Basis values and gradients (see render/sh.rs).
void sh_basis(vec3 d, uint k, out float y[16], out vec3 dy[16]) {
    float x = d.x, yy = d.y, z = d.z;
    float xx = x * x, y2 = yy * yy, zz = z * z;
    for (int i = 0; i < 16; i++) { y[i] = 0.0; dy[i] = vec3(0.0); }
    y[0] = SH_C0;
    if (k > 1u) {
        y[1] = -SH_C1 * yy; dy[1] = vec3(0.0, -SH_C1, 0.0);
        y[2] = SH_C1 * z;   dy[2] = vec3(0.0, 0.0, SH_C1);
        y[3] = -SH_C1 * x;  dy[3] = vec3(-SH_C1, 0.0, 0.0);
    }
    if (k > 4u) {
        y[4] = SH_C2[0] * x * yy; dy[4] = SH_C2[0] * vec3(yy, x, 0.0);
        y[5] = SH_C2[1] * yy * z; dy[5] = SH_C2[1] * vec3(0.0, z, yy);
        y[6] = SH_C2[2] * (2.0 * zz - xx - y2); dy[6] = SH_C2[2] * vec3(-2.0 * x, -2.0 * yy, 4.0 * z);
        y[7] = SH_C2[3] * x * z; dy[7] = SH_C2[3] * vec3(z, 0.0, x);
        y[8] = SH_C2[4] * (xx - y2); dy[8] = SH_C2[4] * vec3(2.0 * x, -2.0 * yy, 0.0);
    }
    if (k > 9u) {
        y[9] = SH_C3[0] * yy * (3.0 * xx - y2); dy[9] = SH_C3[0] * vec3(6.0 * x * yy, 3.0 * xx - 3.0 * y2, 0.0);
        y[10] = SH_C3[1] * x * yy * z; dy[10] = SH_C3[1] * vec3(yy * z, x * z, x * yy);
        y[11] = SH_C3[2] * yy * (4.0 * zz - xx - y2);
        dy[11] = SH_C3[2] * vec3(-2.0 * x * yy, 4.0 * zz - xx - 3.0 * y2, 8.0 * yy * z);
        y[12] = SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * y2);
        dy[12] = SH_C3[3] * vec3(-6.0 * x * z, -6.0 * yy * z, 6.0 * zz - 3.0 * xx - 3.0 * y2);
        y[13] = SH_C3[4] * x * (4.0 * zz - xx - y2);
        dy[13] = SH_C3[4] * vec3(4.0 * zz - 3.0 * xx - y2, -2.0 * x * yy, 8.0 * x * z);
        y[14] = SH_C3[5] * z * (xx - y2); dy[14] = SH_C3[5] * vec3(2.0 * x * z, -2.0 * yy * z, xx - y2);
        y[15] = SH_C3[6] * x * (xx - 3.0 * y2); dy[15] = SH_C3[6] * vec3(3.0 * xx - 3.0 * y2, -6.0 * x * yy, 0.0);
    }
}

bool finite3(vec3 v) { return !any(isnan(v)) && !any(isinf(v)); }

// Tile rectangle of a projected Gaussian: [x0, x1) x [y0, y1) (same formula as cpu/project.rs).
uvec4 tile_rect(vec2 m, float radius) {
    float t = float(TILE);
    uint tx = pc.u0.z, ty = pc.u0.w;
    uint x0 = min(uint(max(floor((m.x - radius) / t), 0.0)), tx);
    uint x1 = min(uint(max(floor((m.x + radius) / t) + 1.0, 0.0)), tx);
    uint y0 = min(uint(max(floor((m.y - radius) / t), 0.0)), ty);
    uint y1 = min(uint(max(floor((m.y + radius) / t) + 1.0, 0.0)), ty);
    return uvec4(x0, x1, y0, y1);
}

// Conservative pixel box, relative to the tile origin `o`, outside which alpha < ALPHA_MIN for a
// Gaussian with mean m, conic (a, b, c) and opacity op; packed x0 | x1 << 8 | y0 << 16 | y1 << 24
// (inclusive, clamped to the tile; x0 > x1 when it misses the tile).
uint alpha_box(vec2 m, vec3 con, float op, vec2 o) {
    float k = 2.0 * (log(op) - log(ALPHA_MIN)) + 2e-3;
    if (!(op > 0.0) || !(k > 0.0)) return 0x000000ffu;
    float det = con.x * con.z - con.y * con.y;
    float ex = sqrt(k * con.z / det) * 1.001 + 0.01;
    float ey = sqrt(k * con.x / det) * 1.001 + 0.01;
    if (!(det > 0.0) || !(ex < 1e6) || !(ey < 1e6)) return 0x0f000f00u;
    float t = float(TILE) - 1.0;
    vec2 lo = ceil(m - vec2(ex, ey) - o);
    vec2 hi = floor(m + vec2(ex, ey) - o);
    if (lo.x > t || lo.y > t || hi.x < 0.0 || hi.y < 0.0 || lo.x > hi.x || lo.y > hi.y) return 0x000000ffu;
    uvec2 l = uvec2(clamp(lo, vec2(0.0), vec2(t)));
    uvec2 h = uvec2(clamp(hi, vec2(0.0), vec2(t)));
    return l.x | (h.x << 8u) | (l.y << 16u) | (h.y << 24u);
}

bool in_box(uint box, uvec2 lp) {
    return lp.x >= (box & 0xffu) && lp.x <= ((box >> 8u) & 0xffu)
        && lp.y >= ((box >> 16u) & 0xffu) && lp.y <= (box >> 24u);
}

// Box (x0, x1, y0, y1) in pixels outside which a Gaussian with mean m, conic (a, b, c) and opacity
// op has alpha < ALPHA_MIN: the ellipse d^T Q d <= 2 ln(255 op) has half-extents sqrt(k Q^-1_xx),
// sqrt(k Q^-1_yy); widened slightly against rounding. Empty (x0 > x1) when alpha never reaches
// ALPHA_MIN, unbounded for a degenerate conic.
vec4 alpha_extent(vec2 m, vec3 con, float op) {
    float k = 2.0 * (log(op) - log(ALPHA_MIN)) + 2e-3;
    float det = con.x * con.z - con.y * con.y;
    if (!(op > 0.0) || !(k > 0.0)) return vec4(1.0, -1.0, 1.0, -1.0);
    float ex = sqrt(k * con.z / det) * 1.001 + 0.01;
    float ey = sqrt(k * con.x / det) * 1.001 + 0.01;
    if (!(det > 0.0) || !(ex < 1e6) || !(ey < 1e6)) return vec4(-1e9, 1e9, -1e9, 1e9);
    return vec4(m.x - ex, m.x + ex, m.y - ey, m.y + ey);
}

// Tiles that get a key: the 3-sigma rectangle (as the CPU reference bins) cut to the tiles the
// alpha box reaches (a Gaussian contributes nothing outside it, so the image is the same).
uvec4 key_rect(vec2 m, float radius, vec4 box) {
    uvec4 r = tile_rect(m, radius);
    float t = float(TILE);
    vec4 px = vec4(ceil(box.x), floor(box.y), ceil(box.z), floor(box.w));
    if (!(px.x <= px.y) || !(px.z <= px.w)) return uvec4(0u);
    vec4 tb = clamp(vec4(floor(px.x / t), floor(px.y / t) + 1.0, floor(px.z / t), floor(px.w / t) + 1.0),
                    vec4(0.0), vec4(float(pc.u0.z), float(pc.u0.z), float(pc.u0.w), float(pc.u0.w)));
    r.x = max(r.x, uint(tb.x)); r.y = min(r.y, uint(tb.y));
    r.z = max(r.z, uint(tb.z)); r.w = min(r.w, uint(tb.w));
    if (r.x >= r.y || r.z >= r.w) return uvec4(0u);
    return r;
}

// Normalised 1D weights of the 11x11 SSIM window (Gaussian, sigma 1.5; cpu/loss.rs).
const float SSIM_W[11] = float[11](1.028380084e-03, 7.598758135e-03, 3.600077213e-02,
    1.093606895e-01, 2.130055377e-01, 2.660117249e-01, 2.130055377e-01, 1.093606895e-01,
    3.600077213e-02, 7.598758135e-03, 1.028380084e-03);
