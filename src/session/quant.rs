//! Keyframe targets in 8 bits: each target (exposure-normalised RGB, never negative: camera
//! bytes over a positive gain) is stored as bytes times one power-of-two step, 2^e, the
//! smallest step that holds the target's largest value in 255. A power of two makes decoding
//! exact in f32 and re-encoding a decoded target give the same bytes (its largest byte is at
//! least 128, so the same step is chosen again): save -> load -> save stays byte-identical.
//! The rounding error (at most half a step, 1/256 of a unit-range target) is below what the
//! camera's own 8-bit quantisation put in the image.

/// Steps allowed: normal f32 powers of two with headroom.
pub const EXPONENTS: std::ops::RangeInclusive<i32> = -126..=100;

/// The step exponent and the bytes of `target`.
pub fn encode(target: &[f32]) -> (i32, Vec<u8>) {
    let max = target
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, &v| m.max(f64::from(v)));
    let mut e = if max > 0.0 {
        (max / 255.0).log2().ceil() as i32
    } else {
        0
    };
    e = e.clamp(*EXPONENTS.start(), *EXPONENTS.end());
    while e < *EXPONENTS.end() && max / 2f64.powi(e) > 255.0 {
        e += 1;
    }
    while e > *EXPONENTS.start() && max > 0.0 && max / 2f64.powi(e - 1) <= 255.0 {
        e -= 1;
    }
    let step = 2f64.powi(e);
    let bytes = target
        .iter()
        .map(|&v| {
            if v.is_finite() && v > 0.0 {
                (f64::from(v) / step).round().min(255.0) as u8
            } else {
                0
            }
        })
        .collect();
    (e, bytes)
}

/// The target of `bytes` at step 2^`e` (`e` checked by the reader).
pub fn decode(e: i32, bytes: &[u8]) -> Vec<f32> {
    let step = 2f32.powi(e);
    bytes.iter().map(|&q| f32::from(q) * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within half a step of the input, and a decoded target encodes to the same bytes.
    #[test]
    fn rounds_within_half_a_step_and_reencodes_identically() {
        let target: Vec<f32> = (0..3000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 * 1.17)
            .collect();
        let (e, q) = encode(&target);
        let step = 2f32.powi(e);
        assert!(
            step <= 1.17 / 127.5 && step > 1.17 / 255.0 / 2.0,
            "step {step}"
        );
        let back = decode(e, &q);
        for (a, b) in target.iter().zip(&back) {
            assert!((a - b).abs() <= step / 2.0 + 1e-7, "{a} -> {b}");
        }
        assert_eq!(encode(&back), (e, q));
        // Tiny, zero and huge ranges keep their step in range.
        for scale in [1e-30f32, 0.0, 1e20] {
            let t: Vec<f32> = target.iter().map(|v| v * scale).collect();
            let (e, q) = encode(&t);
            assert!(EXPONENTS.contains(&e));
            assert_eq!(encode(&decode(e, &q)), (e, q));
        }
    }
}
