//! Pushing to a real registry (Debian's docker-registry with basic auth, standing in for ECR),
//! then reading back what arrived with skopeo.

mod common;

use std::process::Command;
use std::sync::Mutex;

use ocibuild::{Auth, Image, ImageSpec, PushError, PushProgress, assemble, push};
use serde_json::Value;
use testkit::registry::Registry;

fn image() -> Image {
    let mut spec = ImageSpec::for_binary(common::fixture_binary());
    spec.labels.insert(
        "org.opencontainers.image.title".into(),
        "healthz-server".into(),
    );
    assemble(&spec).expect("assemble the fixture image")
}

fn auth(registry: &Registry) -> Auth {
    Auth::basic(&registry.username, &registry.password)
}

fn skopeo_inspect(registry: &Registry, reference: &str, extra: &[&str]) -> Value {
    let out = common::run_ok(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--creds"])
            .arg(format!("{}:{}", registry.username, registry.password))
            .args(extra)
            .arg(format!("docker://{reference}")),
    );
    serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
}

#[tokio::test]
async fn pushed_image_is_readable_by_digest_with_its_config() {
    let registry = Registry::start().await;
    let image = image();
    let events = Mutex::new(Vec::new());
    let reference = format!("{}/data-processor:v1", registry.host());

    let pushed = push(&image, &reference, &auth(&registry), true, |p| {
        events.lock().unwrap().push(p)
    })
    .await
    .unwrap_or_else(|e| panic!("push failed: {e}\nregistry log:\n{}", registry.log()));

    assert_eq!(pushed.digest, image.digest());
    assert_eq!(
        pushed.reference_with_digest,
        format!("{}/data-processor@{}", registry.host(), image.digest())
    );
    assert_eq!(pushed.uploaded_blobs, 3, "two layers and the config");
    assert_eq!(pushed.uploaded_bytes, image.compressed_size());
    assert_eq!(pushed.skipped_blobs, 0);

    let events = events.into_inner().unwrap();
    assert!(matches!(
        events.first(),
        Some(PushProgress::Started { blobs: 3, .. })
    ));
    assert!(matches!(
        events.last(),
        Some(PushProgress::ManifestPushed { .. })
    ));
    let app = &image.layers[1];
    assert!(
        events.iter().any(
            |e| matches!(e, PushProgress::BlobProgress { digest, sent, size }
            if *digest == app.digest && sent == size)
        ),
        "byte progress reaches the full size of the app layer"
    );

    // The tag and the digest both resolve to what we built.
    let by_digest = skopeo_inspect(&registry, &pushed.reference_with_digest, &[]);
    assert_eq!(by_digest["Digest"], image.digest());
    let by_tag = skopeo_inspect(&registry, &reference, &[]);
    assert_eq!(by_tag["Digest"], image.digest());
    assert_eq!(by_tag["Os"], "linux");
    assert_eq!(by_tag["Architecture"], "amd64");
    assert_eq!(by_tag["Layers"].as_array().unwrap().len(), 2);

    let config = skopeo_inspect(&registry, &pushed.reference_with_digest, &["--config"]);
    assert_eq!(config["config"]["User"], "65532:65532");
    assert!(config["config"]["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/healthz-server"])
    );
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.title"],
        "healthz-server"
    );
}

#[tokio::test]
async fn second_push_uploads_no_blobs_and_a_new_binary_uploads_only_its_layer() {
    let registry = Registry::start().await;
    let image = image();
    let reference = format!("{}/data-processor:v1", registry.host());
    push(&image, &reference, &auth(&registry), true, |_| {})
        .await
        .unwrap();

    let skipped = Mutex::new(0);
    let again = push(&image, &reference, &auth(&registry), true, |p| {
        if let PushProgress::BlobSkipped { .. } = p {
            *skipped.lock().unwrap() += 1;
        }
    })
    .await
    .unwrap();
    assert_eq!(again.uploaded_blobs, 0);
    assert_eq!(again.uploaded_bytes, 0);
    assert_eq!(again.skipped_blobs, 3);
    assert_eq!(again.skipped_bytes, image.compressed_size());
    assert_eq!(*skipped.lock().unwrap(), 3);
    assert_eq!(again.digest, image.digest());

    // A rebuilt binary: the base layer is already there.
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("healthz-server");
    let mut bytes = std::fs::read(common::fixture_binary()).unwrap();
    bytes.extend_from_slice(b"v2");
    std::fs::write(&changed, bytes).unwrap();
    let v2 = assemble(&ImageSpec::for_binary(changed)).unwrap();
    let pushed = push(
        &v2,
        &format!("{}/data-processor:v2", registry.host()),
        &auth(&registry),
        true,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(pushed.uploaded_blobs, 2, "app layer and config");
    assert_eq!(pushed.skipped_blobs, 1, "base layer");
    assert_eq!(pushed.skipped_bytes, v2.layers[0].data.len() as u64);
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_and_pushes_nothing() {
    let registry = Registry::start().await;
    let image = image();
    let reference = format!("{}/data-processor:v1", registry.host());
    let err = push(
        &image,
        &reference,
        &Auth::basic(&registry.username, "not-the-password"),
        true,
        |_| {},
    )
    .await
    .unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, PushError::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("rejected the credentials"), "{message}");
    assert!(message.contains(&registry.username), "{message}");
    assert!(
        !message.contains("not-the-password"),
        "no secrets in errors: {message}"
    );

    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(format!("{}:{}", registry.username, registry.password))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "nothing was pushed");
}

#[tokio::test]
async fn unreachable_registry_names_the_address() {
    let port = testkit::free_port();
    let err = push(
        &image(),
        &format!("127.0.0.1:{port}/data-processor:v1"),
        &Auth::Anonymous,
        true,
        |_| {},
    )
    .await
    .unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, PushError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_reference_is_rejected_before_any_request() {
    let err = push(&image(), "Not A Reference", &Auth::Anonymous, true, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::InvalidReference { .. }), "{err:?}");
}
