//! Builds (optionally), assembles and pushes one image, then prints a JSON summary. Used by
//! bench/image.sh; also handy to try the builder by hand:
//!
//!   cargo run -p ocibuild --example push_image -- --package data-processor \
//!       --reference 127.0.0.1:5000/data-processor:dev --insecure-http

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use ocibuild::{Auth, ImageSpec, StaticBuild, assemble, build_static_binary, push};

#[derive(Parser)]
struct Args {
    /// A static binary to package; without it, --package is built statically first.
    #[arg(long)]
    binary: Option<PathBuf>,
    #[arg(long, default_value = ".")]
    workspace: PathBuf,
    #[arg(long)]
    package: Option<String>,
    /// Binary name (defaults to the package name).
    #[arg(long)]
    bin: Option<String>,
    #[arg(long)]
    target_dir: Option<PathBuf>,
    #[arg(long)]
    reference: String,
    #[arg(long, env = "REGISTRY_USERNAME")]
    username: Option<String>,
    #[arg(long, env = "REGISTRY_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[arg(long)]
    insecure_http: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let binary = match (args.binary, args.package) {
        (Some(binary), _) => binary,
        (None, Some(package)) => {
            let bin = args.bin.unwrap_or_else(|| package.clone());
            let mut build = StaticBuild::new(&args.workspace, &package, &bin);
            build.target_dir = args.target_dir;
            tokio::task::spawn_blocking(move || {
                build_static_binary(&build, |line| eprintln!("  {line}"))
            })
            .await??
        }
        (None, None) => return Err("give --binary PATH or --package NAME".into()),
    };
    let build_ms = started.elapsed().as_millis();

    let started = Instant::now();
    let image = assemble(&ImageSpec::for_binary(&binary))?;
    let assemble_ms = started.elapsed().as_millis();

    let auth = match (args.username, args.password) {
        (Some(u), Some(p)) => Auth::basic(u, p),
        _ => Auth::Anonymous,
    };
    let started = Instant::now();
    let pushed = push(&image, &args.reference, &auth, args.insecure_http, |_| {}).await?;
    let push_ms = started.elapsed().as_millis();

    let summary = serde_json::json!({
        "reference": pushed.reference_with_digest,
        "digest": pushed.digest,
        "binary_bytes": std::fs::metadata(&binary)?.len(),
        "layer_bytes": image.layers.iter().map(|l| l.data.len()).collect::<Vec<_>>(),
        "layer_tar_bytes": image.layers.iter().map(|l| l.tar_size).collect::<Vec<_>>(),
        "config_bytes": image.config.data.len(),
        "compressed_bytes": image.compressed_size(),
        "uploaded_bytes": pushed.uploaded_bytes,
        "skipped_bytes": pushed.skipped_bytes,
        "build_ms": build_ms,
        "assemble_ms": assemble_ms,
        "push_ms": push_ms,
    });
    println!("{summary}");
    Ok(())
}
