//! Retry policy of steps: the shared [`RetryConfig`](crate::resilience::RetryConfig).

/// How a step retries a failed attempt: the shared [`RetryConfig`](crate::resilience::RetryConfig).
pub type RetryPolicy = crate::resilience::RetryConfig;
