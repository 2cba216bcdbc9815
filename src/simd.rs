//! Multiversioned hot loops: one body, compiled per instruction set, picked at run time.

/// Defines a function whose body is compiled for AVX-512, AVX2 or the baseline, whichever the
/// CPU has (checked per call: a cached flag). For plain arithmetic, where Rust never fuses a
/// multiply and an add, all three give the same bits; only the register width differs.
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
}
