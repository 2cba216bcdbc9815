//! Multiversioned hot loops: one body, compiled per instruction set, picked at run time.

/// Defines a function whose body is compiled for AVX-512, AVX2 or the baseline, whichever the
/// CPU has (checked per call: a cached flag). For plain arithmetic, where Rust never fuses a
/// multiply and an add, all three give the same bits; only the register width differs. The
/// fused form (second rule) also picks a multiply-add type per copy.
macro_rules! wide {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($a: $t),*) $(-> $ret)? {
            // Three copies of the body, so that closures in it are compiled with the features
            // of their copy too.
            #[allow(clippy::too_many_arguments)]
            fn imp($($a: $t),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f")]
                fn avx512($($a: $t),*) $(-> $ret)? $body
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2")]
                fn avx2($($a: $t),*) $(-> $ret)? $body
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($a),*) };
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($a),*) };
                }
            }
            imp($($a),*)
        }
    };
    // Fused form: `fn name / name_on <M = Fused | Plain>(...)`. The body names the multiply-add
    // type `M`: `Fused` in the AVX-512F and AVX2 copies (compiled with FMA), `Plain` in the
    // x86-64 baseline one, whose rounding therefore differs; aarch64's baseline has FMA, so its
    // copy is `Fused` and gives the bits of the x86 FMA copies. `name` runs the best copy
    // ([`crate::simd::Isa::fused_best`]); `name_on` the one for a given instruction set, or the
    // baseline where the CPU lacks it (tests compare the copies with it).
    ($(#[$m:meta])* $vis:vis fn $name:ident / $on:ident <$madd:ident = $fused:ty | $plain:ty>
        ($($a:ident: $t:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($a: $t),*) $(-> $ret)? {
            $on($crate::simd::Isa::fused_best(), $($a),*)
        }

        /// The copy of
        #[doc = concat!("[`", stringify!($name), "`]")]
        /// for instruction set `isa` (the baseline one where this CPU lacks `isa`).
        #[allow(clippy::too_many_arguments)]
        $vis fn $on(isa: $crate::simd::Isa, $($a: $t),*) $(-> $ret)? {
            #[allow(clippy::too_many_arguments)]
            fn imp($($a: $t),*) $(-> $ret)? {
                // aarch64 has fused multiply-add in its baseline (scalar and NEON): the same
                // bits as the x86 FMA copies, and no slower than separate operations.
                #[cfg(target_arch = "aarch64")]
                type $madd = $fused;
                // Names the unused alternative, so its import is not unused on aarch64.
                #[cfg(target_arch = "aarch64")]
                #[allow(dead_code)]
                type Unfused = $plain;
                #[cfg(not(target_arch = "aarch64"))]
                type $madd = $plain;
                $body
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f,fma")]
                fn avx512($($a: $t),*) $(-> $ret)? {
                    type $madd = $fused;
                    $body
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($a: $t),*) $(-> $ret)? {
                    type $madd = $fused;
                    $body
                }
                if isa == $crate::simd::Isa::Avx512 && isa.fused_available() {
                    // SAFETY: the CPU has AVX-512F and FMA (checked just above).
                    return unsafe { avx512($($a),*) };
                }
                if isa == $crate::simd::Isa::Avx2 && isa.fused_available() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($a),*) };
                }
            }
            let _ = isa;
            imp($($a),*)
        }
    };
}

/// An instruction set a multiversioned function has a copy for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    /// The baseline (portable) copy: separate multiply and add on x86-64, fused on aarch64.
    Base,
}

impl Isa {
    /// Whether this CPU runs the copy for `self` of a [`wide!`] function with a fused
    /// multiply-add type (`fma` with AVX2; every AVX-512F CPU has it).
    pub fn fused_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            Isa::Base => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The widest copy with fused multiply-adds this CPU runs.
    pub fn fused_best() -> Isa {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|i| i.fused_available())
            .unwrap_or(Isa::Base)
    }
}
