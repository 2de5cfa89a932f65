//! Every SDK failure becomes one [`StoreError`], decided in one place ([`classify`]).

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::store::StoreError;

/// Error codes that mean "too fast, retry with backoff": nothing was written.
const THROTTLING: [&str; 5] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    // The item is in a transaction: nothing was written, a later retry can succeed.
    "TransactionConflictException",
];

/// Error codes of the service failing (a write may have landed).
const SERVICE_FAILURE: [&str; 3] = [
    "InternalServerError",
    "ServiceUnavailable",
    "InternalFailure",
];

/// How a request failed, as far as classifying it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure<'a> {
    /// The request could not be built.
    NotSent,
    /// No answer, or one that could not be read.
    NoAnswer,
    /// The service answered with an error code (empty when it gave none) and an HTTP status.
    Service { code: &'a str, status: u16 },
}

/// What an SDK failure means for the caller:
///
/// - [`StoreError::Throttled`]: a throttling code (`ProvisionedThroughputExceededException`,
///   `ThrottlingException`, `RequestLimitExceeded`, `LimitExceededException`,
///   `TransactionConflictException`).
/// - [`StoreError::Unavailable`]: no answer or a broken one (timeout, connection failure,
///   unreadable response), a 5xx, an error without a code, or a service-failure code; a write
///   may have landed.
/// - [`StoreError::Invalid`]: the request could not be built, or the service refused it
///   (`ValidationException`, `ResourceNotFoundException`, access denied: any other 4xx).
///
/// A condition check failure is not an error here: the callers look for it first.
pub(crate) fn classify<E>(error: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = match error {
        SdkError::ConstructionFailure(_) => Failure::NotSent,
        SdkError::ServiceError(service) => Failure::Service {
            code: service.err().code().unwrap_or_default(),
            status: service.raw().status().as_u16(),
        },
        _ => Failure::NoAnswer,
    };
    judge(failure, DisplayErrorContext(error).to_string())
}

fn judge(failure: Failure<'_>, text: String) -> StoreError {
    match failure {
        Failure::NotSent => StoreError::Invalid(text),
        Failure::NoAnswer => StoreError::Unavailable(text),
        Failure::Service { code, .. } if THROTTLING.contains(&code) => StoreError::Throttled(text),
        Failure::Service { code, status }
            if SERVICE_FAILURE.contains(&code) || status >= 500 || code.is_empty() =>
        {
            StoreError::Unavailable(text)
        }
        Failure::Service { .. } => StoreError::Invalid(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    fn service(code: &str, status: u16) -> StoreError {
        judge(Failure::Service { code, status }, code.to_owned())
    }

    #[test]
    fn codes_and_statuses() {
        for code in THROTTLING {
            assert!(matches!(service(code, 400), StoreError::Throttled(_)));
        }
        for code in [
            "ValidationException",
            "ResourceNotFoundException",
            "AccessDeniedException",
        ] {
            assert!(matches!(service(code, 400), StoreError::Invalid(_)));
        }
        assert!(matches!(
            service("InternalServerError", 500),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(service("", 400), StoreError::Unavailable(_)));
        assert!(matches!(
            service("Whatever", 503),
            StoreError::Unavailable(_)
        ));
        let timeout: SdkError<GetItemError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(matches!(classify(&timeout), StoreError::Unavailable(_)));
        let unbuilt: SdkError<GetItemError, HttpResponse> = SdkError::construction_failure("no");
        assert!(matches!(classify(&unbuilt), StoreError::Invalid(_)));
    }
}
