//! Where BigQuery access tokens come from: a static token (the fakes, or a token minted elsewhere), a
//! service-account key file, or Application Default Credentials. Tokens are never logged.

use std::fmt;
use std::path::PathBuf;
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
    /// A service-account JSON key (`GOOGLE_APPLICATION_CREDENTIALS`).
    ServiceAccountKeyFile(PathBuf),
    /// Application Default Credentials (gcloud user credentials or the metadata server).
    ApplicationDefault,
}

type TokenFuture = BoxFuture<'static, Result<String, BQError>>;

/// One token source shared by `gcp-bigquery-client` and our own upload request.
#[derive(Clone)]
pub(super) struct TokenSource(Arc<dyn Fn() -> TokenFuture + Send + Sync>);

impl TokenSource {
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
            BigQueryAuth::ServiceAccountKeyFile(path) => {
                let key = yup_oauth2::read_service_account_key(path).await?;
                let authenticator = yup_oauth2::ServiceAccountAuthenticator::builder(key).build().await?;
                TokenSource(Arc::new(move || {
                    let authenticator = authenticator.clone();
                    Box::pin(async move {
                        let token = authenticator.token(SCOPES).await?;
                        token.token().map(str::to_owned).ok_or(BQError::NoToken)
                    })
                }))
            }
            BigQueryAuth::ApplicationDefault => {
                let opts = yup_oauth2::ApplicationDefaultCredentialsFlowOpts::default();
                let authenticator = match yup_oauth2::ApplicationDefaultCredentialsAuthenticator::builder(opts).await {
                    yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::ServiceAccount(b) => {
                        b.build().await?
                    }
                    yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::InstanceMetadata(b) => {
                        b.build().await?
                    }
                };
                TokenSource(Arc::new(move || {
                    let authenticator = authenticator.clone();
                    Box::pin(async move {
                        let token = authenticator.token(SCOPES).await?;
                        token.token().map(str::to_owned).ok_or(BQError::NoToken)
                    })
                }))
            }
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
