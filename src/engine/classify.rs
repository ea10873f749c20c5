//! What each error class means for the engine: retry on the same target, fail over, or neither.
//! These are the defaults; the engine issue makes them a table the config can override.

use crate::provider::ErrorClass;

/// Whether a failure of this class is worth retrying on the same target.
pub fn retryable(class: ErrorClass) -> bool {
    use ErrorClass::*;
    match class {
        RateLimited | Overloaded | ServerError | Timeout | Connect | Stalled | StreamCut
        | Malformed | Conflict => true,
        Auth | Permission | BadRequest | ContextLength | ContentFilter | NotFound | TooLarge
        | Quota | Unavailable | Cancelled => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classes_are_retryable_and_request_faults_are_not() {
        assert!(retryable(ErrorClass::RateLimited));
        assert!(retryable(ErrorClass::StreamCut));
        assert!(!retryable(ErrorClass::BadRequest));
        assert!(!retryable(ErrorClass::Quota));
        assert!(!retryable(ErrorClass::Auth));
    }
}
