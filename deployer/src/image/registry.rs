//! Where images go and how to log in: this account's ECR (GetAuthorizationToken), or a registry
//! named in the config with basic-auth credentials from the environment.

use base64::Engine;

use super::ImageError;
use crate::aws::{AwsError, aws_err};
use crate::config::RegistrySection;

/// Why no push target could be resolved. Its own type, not `DeployError`, so the image module
/// stays below `crate::error` in the module graph; the two kinds keep their own exit codes.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// A registry repository plus the credentials to push to it.
#[derive(Clone)]
pub struct RegistryTarget {
    /// `host[:port]`
    pub host: String,
    pub repository: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Plain HTTP (loopback test registries).
    pub insecure: bool,
}

impl RegistryTarget {
    /// `host/repository`, without tag or digest.
    pub fn repository_url(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

/// Never prints the password.
impl std::fmt::Debug for RegistryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryTarget")
            .field("host", &self.host)
            .field("repository", &self.repository)
            .field("username", &self.username)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

#[tracing::instrument(skip_all, fields(url = ?section.url))]
pub async fn resolve_target(
    section: &RegistrySection,
    ecr: &aws_sdk_ecr::Client,
) -> Result<RegistryTarget, TargetError> {
    if let Some(url) = &section.url {
        let var = |name: &Option<String>| -> Result<Option<String>, ImageError> {
            name.as_ref()
                .map(|n| {
                    std::env::var(n).map_err(|_| {
                        ImageError::Credentials(format!(
                            "environment variable {n} (named by registry.*_env) is not set"
                        ))
                    })
                })
                .transpose()
        };
        return Ok(RegistryTarget {
            host: url.trim_end_matches('/').to_string(),
            repository: section.repository.clone(),
            username: var(&section.username_env)?,
            password: var(&section.password_env)?,
            insecure: section.insecure,
        });
    }
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(aws_err("ecr:GetAuthorizationToken"))?;
    let data = out.authorization_data().first().ok_or_else(|| AwsError {
        operation: "ecr:GetAuthorizationToken",
        code: None,
        message: "the answer holds no authorization data".into(),
    })?;
    let (username, password) = decode_ecr_token(data.authorization_token().unwrap_or_default())?;
    let endpoint = data.proxy_endpoint().unwrap_or_default();
    let host = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Ok(RegistryTarget {
        host,
        repository: section.repository.clone(),
        username: Some(username),
        password: Some(password),
        insecure: false,
    })
}

/// ECR tokens are base64 of `user:password` (the user is always `AWS`).
pub fn decode_ecr_token(token: &str) -> Result<(String, String), ImageError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| ImageError::Credentials("ECR authorization token is not base64".into()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ImageError::Credentials("ECR authorization token is not UTF-8".into()))?;
    let (user, password) = text.split_once(':').ok_or_else(|| {
        ImageError::Credentials("ECR authorization token is not user:password".into())
    })?;
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_token_decodes_to_user_and_password() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:secret:with:colons");
        let (u, p) = decode_ecr_token(&token).unwrap();
        assert_eq!(u, "AWS");
        assert_eq!(p, "secret:with:colons");
        assert!(decode_ecr_token("!!!").is_err());
    }
}
