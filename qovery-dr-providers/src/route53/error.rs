//! Route53's error codes; the mapping of SDK errors is shared with the other AWS providers.

use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use qovery_dr_core::{ErrorKind, ProviderError};

use crate::aws_error::Service;

pub(crate) const PROVIDER: &str = "route53";

const ROUTE53: Service = Service { provider: PROVIDER, name: "Route53", by_code, not_found_code: "NoSuchHostedZone" };

/// Maps an SDK error. `write` marks requests that change state: a lost answer
/// to one of those may mean it was applied.
pub(crate) fn map<E>(operation: &str, write: bool, e: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    crate::aws_error::map(&ROUTE53, operation, write, e)
}

fn by_code(code: &str) -> Option<(ErrorKind, &'static str)> {
    Some(match code {
        "Throttling" | "ThrottlingException" | "PriorRequestNotComplete" => {
            (ErrorKind::RateLimited, "Route53 throttled every attempt; wait and retry (5 requests/s per account)")
        }
        "AccessDenied" | "AccessDeniedException" => {
            (ErrorKind::PermissionDenied, "the credentials lack route53 permissions on this hosted zone")
        }
        "NoSuchHostedZone" | "NoSuchChange" | "NoSuchHealthCheck" => (ErrorKind::NotFound, "check the identifier"),
        "InvalidChangeBatch" => (ErrorKind::Conflict, "Route53 refused the change batch (the record changed?)"),
        "HealthCheckVersionMismatch" => (ErrorKind::Conflict, "the health check changed since it was read"),
        "InvalidInput" | "InvalidArgument" => (ErrorKind::InvalidInput, "Route53 rejected an argument"),
        _ => return None,
    })
}
