//! The real thing: the data-processor service, built statically by `build_static_binary`,
//! assembled, pushed to the registry with basic auth, pulled and run by podman. It must answer
//! /healthz on the published port, pass its own `healthcheck` command inside the container (what
//! the ECS task definition runs) and stop cleanly on SIGTERM as PID 1.
//!
//! The static release build of the service takes minutes the first time; it is cached in this
//! crate's target tmp dir, so later runs only relink when the service changed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Podman;
use ocibuild::{Auth, ImageSpec, StaticBuild, assemble, build_static_binary, push};
use testkit::registry::Registry;

#[tokio::test]
async fn service_image_answers_healthz_and_stops_on_sigterm() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The quicker `image-test` profile: this test is about the image, not the code's speed.
    let build = StaticBuild::new(&workspace, "data-processor", "data-processor")
        .profile("image-test")
        .target_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("static-service"));
    let binary = tokio::task::spawn_blocking(move || {
        build_static_binary(&build, |line| eprintln!("[service build] {line}"))
    })
    .await
    .unwrap()
    .expect("static release build of data-processor");

    let image = assemble(&ImageSpec::for_binary(binary)).unwrap();
    let registry = Registry::start().await;
    let pushed = push(
        &image,
        &format!("{}/data-processor:test", registry.host()),
        &Auth::basic(&registry.username, &registry.password),
        true,
        |_| {},
    )
    .await
    .unwrap();

    let mut podman = Podman::new();
    podman.pull(
        &pushed.reference_with_digest,
        &format!("{}:{}", registry.username, registry.password),
    );
    let port = testkit::free_port();
    // No configuration: the service starts in its embedded mode (SQLite and files under the
    // working directory, which belongs to the non-root user).
    let id = podman.run_detached(
        &pushed.reference_with_digest,
        port,
        &[
            "--env",
            "SHUTDOWN_DRAIN_DELAY=200ms",
            "--env",
            "SESSION_COOKIE_SECURE=false",
        ],
    );
    podman
        .wait_healthy(&id, port, Duration::from_secs(60))
        .await;

    let check = podman
        .cmd()
        .args(["exec", &id, "/usr/local/bin/data-processor", "healthcheck"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "healthcheck command inside the container: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // PID 1 gets SIGTERM from `podman stop`; a process that ignored it would be SIGKILLed after
    // the timeout and exit with 137.
    common::run_ok(podman.cmd().args(["stop", "--time", "20", &id]));
    assert_eq!(
        podman.inspect(&id, "{{.State.ExitCode}}"),
        "0",
        "clean exit on SIGTERM; logs:\n{}",
        podman.logs(&id)
    );
}
