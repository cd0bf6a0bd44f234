//! The pushed image runs: podman pulls it from the registry and the server in it answers on a
//! published loopback port, as the unprivileged user, with working name resolution.

mod common;

use std::time::Duration;

use common::Podman;
use ocibuild::{Auth, ImageSpec, assemble, push};
use testkit::registry::Registry;

#[tokio::test]
async fn pushed_fixture_image_runs_with_podman_and_answers_healthz() {
    let registry = Registry::start().await;
    let image = assemble(&ImageSpec::for_binary(common::fixture_binary())).unwrap();
    let pushed = push(
        &image,
        &format!("{}/healthz-server:test", registry.host()),
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
    let id = podman.run_detached(&pushed.reference_with_digest, port, &[]);

    podman
        .wait_healthy(&id, port, Duration::from_secs(60))
        .await;

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let whoami = client.get(format!("{base}/whoami")).send().await.unwrap();
    let uid = whoami.text().await.unwrap();
    assert!(uid.contains("65532"), "runs as the non-root user: {uid}");

    // /etc/hosts comes from podman; resolving through it proves the static glibc resolver works
    // in an image without NSS libraries.
    let resolved = client
        .get(format!("{base}/resolve/localhost"))
        .send()
        .await
        .unwrap();
    let status = resolved.status();
    let body = resolved.text().await.unwrap();
    assert_eq!(status, 200, "resolving localhost in the container: {body}");
    assert!(body.contains("127.0.0.1") || body.contains("::1"), "{body}");

    assert_eq!(podman.inspect(&id, "{{.Config.User}}"), "65532:65532");
}
