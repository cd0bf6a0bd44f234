//! Object keys are relative, `/`-separated paths. Both backends accept the same keys, so that a
//! key that works in the embedded mode also works on S3 and cannot escape the local root.

/// Why a key is refused, for the error message.
pub(super) fn validate(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the key is empty");
    }
    if key.len() > 900 {
        // S3 allows 1024 bytes; leave room for the bucket prefix.
        return Err("the key is longer than 900 bytes");
    }
    if key.contains(['\\', '\0']) {
        return Err("the key contains a backslash or NUL");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err("the key has an empty segment (leading, trailing or double '/')");
        }
        // Dot segments could climb out of the local root; leading dots are reserved for the
        // local backend's temporary files.
        if segment.starts_with('.') {
            return Err("a key segment starts with '.'");
        }
    }
    Ok(())
}

/// The error a backend returns for a key it refuses. Keys come from the service, never from a
/// client, so a bad key is a programming or configuration error.
pub(super) fn checked(key: &str) -> Result<&str, super::StorageError> {
    validate(key)
        .map(|()| key)
        .map_err(|why| super::StorageError::Config(format!("invalid object key {key:?}: {why}")))
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_service_keys() {
        assert!(validate("users/42/files/0b9d1c1e-6a4f-4a51-9f0b-3f1b6f0c1d2e").is_ok());
    }

    #[test]
    fn refuses_keys_that_could_escape_or_collide() {
        for key in [
            "", "/abs", "a//b", "a/", "..", "a/../b", "./a", "a/.tmp-x", "a\\b", "a\0b",
        ] {
            assert!(validate(key).is_err(), "{key:?} was accepted");
        }
    }
}
