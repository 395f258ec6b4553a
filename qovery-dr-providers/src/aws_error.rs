//! AWS SDK errors to `ProviderError`s that say what to do, shared by the AWS providers
//! (Route53, RDS): the SDK's error taxonomy, the codes some endpoints nest where the SDK
//! does not look, and "a lost answer to a write may mean it was applied".

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use qovery_dr_core::{ErrorKind, ProviderError};

/// What differs between the AWS services.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    /// The provider's name in errors.
    pub provider: &'static str,
    /// The service's name in hints.
    pub name: &'static str,
    /// Its own error codes (`None`: the codes every AWS service shares, else unexpected).
    pub by_code: fn(&str) -> Option<(ErrorKind, &'static str)>,
    /// The code an HTTP 404 without a code means.
    pub not_found_code: &'static str,
}

/// Maps an SDK error. `write` marks requests that change state: a lost answer
/// to one of those may mean it was applied.
pub(crate) fn map<E>(service: &Service, operation: &str, write: bool, e: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (mut code, mut message) = (e.code().unwrap_or_default().to_owned(), e.message().unwrap_or_default().to_owned());
    if code.is_empty() {
        // Some endpoints (moto, proxies) nest the error as <ErrorResponse><Errors><Error>, which the
        // SDK does not parse: read the code from the raw body, else go by the HTTP status.
        if let Some(raw) = e.raw_response() {
            let body = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
            code = between(&body, "<Code>", "</Code>").unwrap_or_default().to_owned();
            message = between(&body, "<Message>", "</Message>").unwrap_or_default().to_owned();
            if code.is_empty() {
                code = match raw.status().as_u16() {
                    401 => "InvalidClientTokenId",
                    403 => "AccessDenied",
                    404 => service.not_found_code,
                    429 => "Throttling",
                    _ => "",
                }
                .to_owned();
            }
        }
    }
    let by_code = |code: &str| match ((service.by_code)(code), code) {
        (Some(known), _) => known,
        (None, "Throttling" | "ThrottlingException" | "RequestLimitExceeded") => {
            (ErrorKind::RateLimited, "throttled on every attempt; wait and retry")
        }
        (
            None,
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "UnrecognizedClientException"
            | "MissingAuthenticationToken"
            | "IncompleteSignature",
        ) => (ErrorKind::Unauthenticated, "the AWS credentials were rejected: check the access key, secret and clock"),
        (None, "AccessDenied" | "AccessDeniedException") => {
            (ErrorKind::PermissionDenied, "the credentials lack a permission this call needs (see the message)")
        }
        (None, _) => (ErrorKind::Transient, "unexpected error code; retry, and report it if it persists"),
    };
    let (kind, hint): (ErrorKind, String) = match &e {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) if !code.is_empty() => {
            let (k, h) = by_code(&code);
            (k, h.to_owned())
        }
        SdkError::ServiceError(_) => {
            let (k, h) = by_code(&code);
            (k, h.to_owned())
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) if write => (
            ErrorKind::Indeterminate,
            "the request was sent but no answer came back: it may have been applied; read the state before retrying"
                .to_owned(),
        ),
        SdkError::TimeoutError(_) => {
            (ErrorKind::Timeout, format!("no answer in time; check the network path to {}", service.name))
        }
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            ErrorKind::Transient,
            format!("could not reach {}; check the endpoint and network, then retry", service.name),
        ),
        SdkError::ConstructionFailure(_) => (
            ErrorKind::InvalidConfig,
            "the request could not be built: check region and credentials configuration".to_owned(),
        ),
        _ => (ErrorKind::Transient, "unexpected SDK failure; retry".to_owned()),
    };
    let detail = if code.is_empty() { format!("{}", DisplayChain(&e)) } else { format!("{code}: {message}") };
    ProviderError::new(kind, service.provider, operation, format!("{detail}: {hint}")).with_source(e)
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// The error and its sources on one line.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
