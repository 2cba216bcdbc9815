//! Compiles shaders/*.comp (with shaders/common.glsl prepended) to SPIR-V in OUT_DIR using the
//! `glslang` crate (no shaderc/cmake). Shaders that use float atomics get a second variant
//! `<name>_cas.spv` with a compare-and-swap fallback (FLOAT_ATOMICS=0).

use std::path::Path;

use glslang::{
    Compiler, CompilerOptions, ShaderInput, ShaderSource, ShaderStage, SpirvVersion, Target,
    VulkanVersion,
};

fn compile(compiler: &Compiler, name: &str, src: &str, float_atomics: bool, out: &Path) {
    let header = format!(
        "#version 450\n#define FLOAT_ATOMICS {}\n",
        if float_atomics { 1 } else { 0 }
    );
    let common = std::fs::read_to_string("shaders/common.glsl").expect("shaders/common.glsl");
    // Extensions must precede other declarations: hoist every #extension line into the header
    // (the float-atomics one only for the FLOAT_ATOMICS=1 variant).
    let mut ext: Vec<&str> = Vec::new();
    let mut body: Vec<&str> = Vec::new();
    for l in src.lines() {
        if l.trim_start().starts_with("#extension") {
            if !l.contains("atomic_float") || float_atomics {
                ext.push(l);
            }
        } else {
            body.push(l);
        }
    }
    let full = format!(
        "{header}{}\n{common}\n{}\n",
        ext.join("\n"),
        body.join("\n")
    );
    let source = ShaderSource::from(full);
    let options = CompilerOptions {
        target: Target::Vulkan {
            version: VulkanVersion::Vulkan1_2,
            spirv_version: SpirvVersion::SPIRV1_5,
        },
        ..CompilerOptions::default()
    };
    let input = ShaderInput::new(
        &source,
        ShaderStage::Compute,
        &options,
        None::<&[(&str, Option<&str>)]>,
        None,
    )
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let shader = compiler
        .create_shader(input)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let words = shader.compile().unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(out, bytes).expect("write spv");
}

fn main() {
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    let compiler = Compiler::acquire().expect("glslang compiler");
    let mut entries: Vec<_> = std::fs::read_dir("shaders")
        .expect("shaders/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "comp"))
        .collect();
    entries.sort();
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).expect("read shader");
        let out = Path::new(&out_dir).join(format!("{name}.spv"));
        compile(compiler, &name, &src, true, &out);
        if src.contains("FLOAT_ATOMICS") {
            let out = Path::new(&out_dir).join(format!("{name}_cas.spv"));
            compile(compiler, &name, &src, false, &out);
        }
    }
}
