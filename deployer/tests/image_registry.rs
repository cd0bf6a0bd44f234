//! `deployer build`, `push` and a full `release` (no --image) against a real docker-registry with
//! basic auth standing in for ECR, and moto. The image is ocibuild's small std-only fixture server
//! so the static build takes seconds, not the service's minutes; the pipeline is the same.

mod common;

use std::path::Path;
use std::process::Command;

use common::Stage;
use testkit::registry::Registry;

struct Setup {
    stage: Stage,
    registry: Registry,
}

impl Setup {
    async fn start() -> Self {
        let mut stage = Stage::start().await;
        let registry = Registry::start().await;
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../ocibuild/tests/fixtures/healthz-server");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deployer-static");
        stage.vars.extend([
            ("DEPLOYER__REGISTRY__URL".into(), registry.host()),
            ("DEPLOYER__REGISTRY__INSECURE".into(), "true".into()),
            (
                "DEPLOYER__REGISTRY__USERNAME_ENV".into(),
                "TEST_REGISTRY_USER".into(),
            ),
            (
                "DEPLOYER__REGISTRY__PASSWORD_ENV".into(),
                "TEST_REGISTRY_PASSWORD".into(),
            ),
            ("TEST_REGISTRY_USER".into(), registry.username.clone()),
            ("TEST_REGISTRY_PASSWORD".into(), registry.password.clone()),
            (
                "DEPLOYER__IMAGE__CONTEXT".into(),
                fixture.display().to_string(),
            ),
            ("DEPLOYER__IMAGE__PACKAGE".into(), "healthz-server".into()),
            ("DEPLOYER__IMAGE__BINARY".into(), "healthz-server".into()),
            (
                "DEPLOYER__IMAGE__TARGET_DIR".into(),
                target.display().to_string(),
            ),
            // cargo for the static build
            ("HOME".into(), std::env::var("HOME").unwrap_or_default()),
        ]);
        if let Ok(cargo) = std::env::var("CARGO") {
            stage.vars.push(("CARGO".into(), cargo));
        }
        Self { stage, registry }
    }

    /// The manifest digest the registry serves for `reference`, read with skopeo.
    fn registry_digest(&self, reference: &str) -> String {
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw", "--creds"])
            .arg(format!(
                "{}:{}",
                self.registry.username, self.registry.password
            ))
            .arg(format!("docker://{reference}"))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("sha256:{}", sha256_hex(&out.stdout))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread")]
async fn build_push_and_release_through_a_real_registry() {
    let s = Setup::start().await;

    let built = s.stage.run_json(&["build"]);
    let digest = built["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"));
    let again = s.stage.run_json(&["build"]);
    assert_eq!(again["digest"], digest, "same inputs, same digest");

    let pushed = s.stage.run_json(&["push"]);
    let reference = pushed["reference"].as_str().unwrap().to_string();
    assert_eq!(
        reference,
        format!("{}/data-processor@{digest}", s.registry.host())
    );
    assert_eq!(
        s.registry_digest(&reference),
        digest,
        "the registry serves what was pushed"
    );

    let first = s.stage.run_json(&["release"]);
    assert_eq!(first["digest"], digest.as_str());
    assert_eq!(first["image"], reference.as_str());
    assert_eq!(first["registered_revision"], true);
    assert_eq!(first["outcome"]["outcome"], "completed");

    let out = s.stage.run(&["--output", "json", "release"]);
    assert_eq!(out.status.code(), Some(0));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["registered_revision"], false);
    assert_eq!(second["deployment_id"], serde_json::Value::Null);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("0 blobs uploaded"),
        "every blob was already there:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_registry_credentials_are_an_image_error() {
    let s = Setup::start().await;
    let out = s
        .stage
        .run_with(&["push"], &[("TEST_REGISTRY_PASSWORD", "wrong")]);
    assert_eq!(out.status.code(), Some(deployer::error::exit::IMAGE));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(&s.registry.password), "no password in output");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}
