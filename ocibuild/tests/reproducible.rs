//! Same inputs give the same image digest; any change to the inputs gives another one.

mod common;

use std::collections::BTreeMap;

use ocibuild::{ImageSpec, assemble};
use serde_json::Value;

fn spec() -> ImageSpec {
    let mut spec = ImageSpec::for_binary(common::fixture_binary());
    spec.created_epoch = 1_700_000_000;
    // Several ports and labels: the config types keep them in hash containers, whose order
    // differs between runs unless the encoding sorts them.
    spec.exposed_ports = vec![8080, 9090, 9100];
    spec.labels = BTreeMap::from([
        (
            "org.opencontainers.image.source".into(),
            "data-processor".into(),
        ),
        ("org.opencontainers.image.revision".into(), "abc123".into()),
        ("team".into(), "platform".into()),
    ]);
    spec
}

#[test]
fn assembling_twice_gives_identical_bytes_and_digest() {
    let first = assemble(&spec()).unwrap();
    for _ in 0..5 {
        let again = assemble(&spec()).unwrap();
        assert_eq!(again.digest(), first.digest());
        assert_eq!(again, first, "every blob must be byte-identical");
    }
    assert!(first.digest().starts_with("sha256:"));
}

#[test]
fn a_different_binary_changes_only_the_app_layer() {
    let base = assemble(&spec()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("healthz-server");
    let mut bytes = std::fs::read(common::fixture_binary()).unwrap();
    // Trailing bytes leave a valid ELF executable with different content.
    bytes.extend_from_slice(b"another build");
    std::fs::write(&changed, bytes).unwrap();
    let mut other = spec();
    other.binary = changed;
    let other = assemble(&other).unwrap();

    assert_ne!(other.digest(), base.digest());
    assert_eq!(
        other.layers[0].digest, base.layers[0].digest,
        "base layer is shared"
    );
    assert_ne!(other.layers[1].digest, base.layers[1].digest);
}

#[test]
fn metadata_and_timestamp_are_part_of_the_digest() {
    let base = assemble(&spec()).unwrap();

    let mut labelled = spec();
    labelled.labels.insert("team".into(), "data".into());
    let labelled = assemble(&labelled).unwrap();
    assert_ne!(labelled.digest(), base.digest());
    assert_eq!(
        labelled.layers, base.layers,
        "labels live in the config only"
    );

    let mut later = spec();
    later.created_epoch += 1;
    let later = assemble(&later).unwrap();
    assert_ne!(later.digest(), base.digest());
    assert_ne!(
        later.layers[0].digest, base.layers[0].digest,
        "file mtimes moved"
    );
}

#[test]
fn config_runs_the_binary_as_non_root_and_lists_the_layers() {
    let image = assemble(&spec()).unwrap();
    let config: Value = serde_json::from_slice(&image.config.data).unwrap();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/healthz-server"])
    );
    assert!(config["config"]["ExposedPorts"]["8080/tcp"].is_object());
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let expected: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(diff_ids, expected);
    assert_eq!(
        config["history"].as_array().unwrap().len(),
        image.layers.len()
    );

    let manifest: Value = serde_json::from_slice(&image.manifest.data).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
}

#[test]
fn base_layer_has_the_user_tmp_and_certificates() {
    let image = assemble(&spec()).unwrap();
    let tar = flate2::read::GzDecoder::new(image.layers[0].data.as_ref());
    let mut archive = tar::Archive::new(tar);
    let mut seen = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let header = entry.header().clone();
        assert_eq!(header.mtime().unwrap(), 1_700_000_000, "{path}");
        let mut body = String::new();
        if path == "etc/passwd" {
            std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
        }
        seen.insert(path, (header.mode().unwrap(), header.uid().unwrap(), body));
    }
    assert_eq!(seen["tmp/"].0, 0o1777);
    assert!(seen["etc/passwd"].2.contains("nonroot:x:65532:65532:"));
    assert!(seen.contains_key("etc/group"));
    assert_eq!(seen["home/nonroot/"].1, 65532, "home belongs to the user");
    if std::path::Path::new(ocibuild::CA_BUNDLE_PATH).is_file() {
        assert!(seen.contains_key("etc/ssl/certs/ca-certificates.crt"));
    }
}

#[test]
fn a_dynamically_linked_binary_is_refused_with_the_fix() {
    let err = assemble(&ImageSpec::for_binary("/bin/sh")).unwrap_err();
    assert!(err.to_string().contains("+crt-static"), "{err}");
}

#[test]
fn root_user_is_refused() {
    let mut spec = spec();
    spec.user.uid = 0;
    let err = assemble(&spec).unwrap_err();
    assert!(err.to_string().contains("root"), "{err}");
}
