//! The `run --config` TOML file, merged with no command-line flags, then every method spec it names.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args = driver::cli::RunArgs::default();
    let path = std::path::Path::new("fuzz/config.toml");
    let Ok(config) = driver::config::RunConfig::resolve_with_file(&args, Some((text, path))) else {
        return;
    };
    for method in &config.methods {
        if let Ok(spec) = driver::config::MethodSpec::parse(method) {
            let _ = spec.build();
        }
    }
    // The config a run used is written back into its output folder.
    let _ = config.to_toml();
});
