//! AWS SDK errors to `ProviderError`s that say what to do.

use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use qovery_dr_core::{ErrorKind, ProviderError};

pub(crate) const PROVIDER: &str = "route53";

/// Maps an SDK error. `write` marks requests that change state: a lost answer
/// to one of those may mean it was applied.
pub(crate) fn map<E>(operation: &str, write: bool, e: SdkError<E, HttpResponse>) -> ProviderError
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
                    404 => "NoSuchHostedZone",
                    429 => "Throttling",
                    _ => "",
                }
                .to_owned();
            }
        }
    }
    let (kind, hint) = match &e {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) if !code.is_empty() => by_code(&code),
        SdkError::ServiceError(_) => by_code(&code),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) if write => (
            ErrorKind::Indeterminate,
            "the request was sent but no answer came back: it may have been applied; read the record before retrying",
        ),
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, "no answer in time; check the network path to Route53"),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (ErrorKind::Transient, "could not reach Route53; check the endpoint and network, then retry")
        }
        SdkError::ConstructionFailure(_) => {
            (ErrorKind::InvalidConfig, "the request could not be built: check region and credentials configuration")
        }
        _ => (ErrorKind::Transient, "unexpected SDK failure; retry"),
    };
    let detail = if code.is_empty() { format!("{}", DisplayChain(&e)) } else { format!("{code}: {message}") };
    ProviderError::new(kind, PROVIDER, operation, format!("{detail}: {hint}")).with_source(e)
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

fn by_code(code: &str) -> (ErrorKind, &'static str) {
    match code {
        "Throttling" | "ThrottlingException" | "PriorRequestNotComplete" => {
            (ErrorKind::RateLimited, "Route53 throttled every attempt; wait and retry (5 requests/s per account)")
        }
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "UnrecognizedClientException"
        | "MissingAuthenticationToken"
        | "IncompleteSignature" => {
            (ErrorKind::Unauthenticated, "the AWS credentials were rejected: check the access key, secret and clock")
        }
        "AccessDenied" | "AccessDeniedException" => {
            (ErrorKind::PermissionDenied, "the credentials lack route53 permissions on this hosted zone")
        }
        "NoSuchHostedZone" | "NoSuchChange" | "NoSuchHealthCheck" => (ErrorKind::NotFound, "check the identifier"),
        "InvalidChangeBatch" => (ErrorKind::Conflict, "Route53 refused the change batch (the record changed?)"),
        "HealthCheckVersionMismatch" => (ErrorKind::Conflict, "the health check changed since it was read"),
        "InvalidInput" | "InvalidArgument" => (ErrorKind::InvalidInput, "Route53 rejected an argument"),
        _ => (ErrorKind::Transient, "unexpected Route53 error; retry, and report it if it persists"),
    }
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
