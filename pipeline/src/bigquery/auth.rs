//! Where BigQuery access tokens come from: a static token (the fakes, or a token minted elsewhere), a
//! service-account key file, gcloud's user credentials, or the metadata server, through `yup-oauth2`, which
//! caches each token and refreshes it before it expires. Tokens are never logged, and no error carries one.

use std::fmt;
use std::path::{Path, PathBuf};

use yup_oauth2::authenticator::{ApplicationDefaultCredentialsTypes, Authenticator};
use yup_oauth2::{DefaultHyperClientBuilder, HyperClientBuilder};

use super::error::BigQueryError;

const SCOPES: &[&str] = &["https://www.googleapis.com/auth/bigquery"];

/// A bearer token. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: &str) -> AccessToken {
        AccessToken(token.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BigQueryAuth {
    /// Sent as is: for the fakes (which accept any token) or a token from `gcloud auth print-access-token`.
    StaticToken(AccessToken),
    /// A credentials file (`GOOGLE_APPLICATION_CREDENTIALS`): a service-account key, or the user
    /// credentials `gcloud auth application-default login` writes.
    KeyFile(PathBuf),
    /// Application Default Credentials: gcloud's user credentials file if present, else the metadata server.
    ApplicationDefault,
}

/// Every flow's authenticator has this one type: they differ in what they hold, not in their connector.
type GoogleAuthenticator = Authenticator<<DefaultHyperClientBuilder as HyperClientBuilder>::Connector>;

/// The token source of one client, shared by every request it sends.
#[derive(Clone)]
pub(super) enum TokenSource {
    Static(AccessToken),
    Google(GoogleAuthenticator),
}

fn auth_error(what: &str, path: &Path, err: impl fmt::Display) -> BigQueryError {
    BigQueryError::Auth(format!("{what} {}: {err}", path.display()))
}

/// The kind of a Google credentials JSON file (`"type"`).
async fn credentials_type(path: &Path) -> Result<String, BigQueryError> {
    let bytes = tokio::fs::read(path).await.map_err(|e| auth_error("cannot read", path, e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| auth_error("no credentials JSON in", path, e))?;
    Ok(value.get("type").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned())
}

/// Where `gcloud auth application-default login` writes user credentials.
fn gcloud_user_credentials() -> Option<PathBuf> {
    let base = std::env::var_os("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/gcloud")))?;
    Some(base.join("application_default_credentials.json")).filter(|p| p.is_file())
}

impl TokenSource {
    /// A source for a credentials file: a service-account key or gcloud user credentials.
    async fn from_file(path: &Path) -> Result<TokenSource, BigQueryError> {
        let authenticator = match credentials_type(path).await?.as_str() {
            "authorized_user" => {
                let secret = yup_oauth2::read_authorized_user_secret(path)
                    .await
                    .map_err(|e| auth_error("unreadable user credentials in", path, e))?;
                yup_oauth2::AuthorizedUserAuthenticator::builder(secret).build().await
            }
            _ => {
                let key = yup_oauth2::read_service_account_key(path)
                    .await
                    .map_err(|e| auth_error("unreadable service-account key in", path, e))?;
                yup_oauth2::ServiceAccountAuthenticator::builder(key).build().await
            }
        };
        Ok(TokenSource::Google(authenticator.map_err(|e| auth_error("no authenticator for", path, e))?))
    }

    pub(super) async fn build(auth: &BigQueryAuth) -> Result<TokenSource, BigQueryError> {
        Ok(match auth {
            BigQueryAuth::StaticToken(token) => TokenSource::Static(token.clone()),
            BigQueryAuth::KeyFile(path) => TokenSource::from_file(path).await?,
            // Application Default Credentials, in Google's order: the variable (handled by config as
            // `KeyFile`), gcloud's user credentials, then the metadata server (GCE, GKE, Cloud Run).
            BigQueryAuth::ApplicationDefault => match gcloud_user_credentials() {
                Some(path) => TokenSource::from_file(&path).await?,
                None => {
                    let opts = yup_oauth2::ApplicationDefaultCredentialsFlowOpts::default();
                    let authenticator =
                        match yup_oauth2::ApplicationDefaultCredentialsAuthenticator::builder(opts).await {
                            ApplicationDefaultCredentialsTypes::ServiceAccount(builder) => builder.build().await,
                            ApplicationDefaultCredentialsTypes::InstanceMetadata(builder) => builder.build().await,
                        };
                    TokenSource::Google(authenticator.map_err(|e| {
                        BigQueryError::Auth(format!("no authenticator for application default credentials: {e}"))
                    })?)
                }
            },
        })
    }

    /// A token valid for a while yet (yup-oauth2 refreshes a cached one shortly before it expires).
    pub(super) async fn token(&self) -> Result<AccessToken, BigQueryError> {
        match self {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::Google(authenticator) => {
                let token = authenticator
                    .token(SCOPES)
                    .await
                    .map_err(|e| BigQueryError::Auth(format!("no access token from Google: {e}")))?;
                token.token().map(AccessToken::new).ok_or_else(|| {
                    BigQueryError::Auth("Google's token endpoint answered without an access token".to_owned())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_never_shows_in_debug_output() {
        let auth = BigQueryAuth::StaticToken(AccessToken::new("ya29.secret"));
        let shown = format!("{auth:?} {:?}", AccessToken::new("ya29.secret"));
        assert!(!shown.contains("ya29"), "{shown}");
        assert!(shown.contains("AccessToken(***)"), "{shown}");
    }

    #[tokio::test]
    async fn a_missing_or_malformed_credentials_file_is_an_auth_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let missing = dir.path().join("missing.json");
        let garbled = dir.path().join("garbled.json");
        std::fs::write(&garbled, b"{\"type\": \"service_account\", \"private_key\": 1}").expect("written");
        for path in [missing, garbled] {
            let Err(err) = TokenSource::build(&BigQueryAuth::KeyFile(path.clone())).await else {
                panic!("{} gave a token source", path.display());
            };
            assert!(matches!(err, BigQueryError::Auth(_)), "{err:?}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }
    }
}
