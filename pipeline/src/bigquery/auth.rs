//! Where BigQuery access tokens come from: a static token (the fakes, or a token minted elsewhere), a
//! service-account key file, or Application Default Credentials. Tokens are never logged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::error::BQError;

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

type TokenFuture = BoxFuture<'static, Result<String, BQError>>;

/// One token source shared by `gcp-bigquery-client` and our own upload request.
#[derive(Clone)]
pub(super) struct TokenSource(Arc<dyn Fn() -> TokenFuture + Send + Sync>);

/// A token source over any yup-oauth2 authenticator (their concrete types differ only by flow).
macro_rules! from_authenticator {
    ($authenticator:expr) => {{
        let authenticator = $authenticator;
        TokenSource(Arc::new(move || {
            let authenticator = authenticator.clone();
            Box::pin(async move {
                let token = authenticator.token(SCOPES).await?;
                token.token().map(str::to_owned).ok_or(BQError::NoToken)
            })
        }))
    }};
}

/// The kind of a Google credentials JSON file (`"type"`).
async fn credentials_type(path: &Path) -> Result<String, BQError> {
    let bytes = tokio::fs::read(path).await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)?;
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
    async fn from_file(path: &Path) -> Result<TokenSource, BQError> {
        use gcp_bigquery_client::yup_oauth2;
        Ok(match credentials_type(path).await?.as_str() {
            "authorized_user" => {
                let secret = yup_oauth2::read_authorized_user_secret(path).await?;
                from_authenticator!(yup_oauth2::AuthorizedUserAuthenticator::builder(secret).build().await?)
            }
            _ => {
                let key = yup_oauth2::read_service_account_key(path).await?;
                from_authenticator!(yup_oauth2::ServiceAccountAuthenticator::builder(key).build().await?)
            }
        })
    }

    pub(super) async fn build(auth: &BigQueryAuth) -> Result<TokenSource, BQError> {
        use gcp_bigquery_client::yup_oauth2;
        Ok(match auth {
            BigQueryAuth::StaticToken(token) => {
                let token = token.expose().to_owned();
                TokenSource(Arc::new(move || {
                    let token = token.clone();
                    Box::pin(async move { Ok(token) })
                }))
            }
            BigQueryAuth::KeyFile(path) => TokenSource::from_file(path).await?,
            // Application Default Credentials, in Google's order: the variable (handled by config as
            // `KeyFile`), gcloud's user credentials, then the metadata server (GCE, GKE, Cloud Run).
            BigQueryAuth::ApplicationDefault => match gcloud_user_credentials() {
                Some(path) => TokenSource::from_file(&path).await?,
                None => {
                    let opts = yup_oauth2::ApplicationDefaultCredentialsFlowOpts::default();
                    match yup_oauth2::ApplicationDefaultCredentialsAuthenticator::builder(opts).await {
                        yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::ServiceAccount(b) => {
                            from_authenticator!(b.build().await?)
                        }
                        yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::InstanceMetadata(b) => {
                            from_authenticator!(b.build().await?)
                        }
                    }
                }
            },
        })
    }

    pub(super) async fn token(&self) -> Result<String, BQError> {
        (self.0)().await
    }
}

#[async_trait::async_trait]
impl Authenticator for TokenSource {
    async fn access_token(&self) -> Result<String, BQError> {
        self.token().await
    }
}
