//! Which runbook step the current task is running.
//!
//! The engine runs every step's action, verification and retries inside a
//! task-local scope naming the step, so that a provider, a wrapper or a test
//! double can attribute its calls to the step that made them (the testkit's
//! call recorder does, and the `engine_overhead` benchmark sums provider time
//! per step from it). Work a step spawns onto other tasks is not attributed.

use std::future::Future;

tokio::task_local! {
    static CURRENT_STEP: String;
}

/// The id of the runbook step whose action runs on the current task, or
/// `None` outside any step (preflight reads, lock handling, the report).
///
/// ```
/// assert_eq!(qovery_dr_core::engine::current_step(), None);
/// ```
pub fn current_step() -> Option<String> {
    CURRENT_STEP.try_with(Clone::clone).ok()
}

/// Runs `work` with `step` as the current step.
pub(crate) async fn in_step<F: Future>(step: String, work: F) -> F::Output {
    CURRENT_STEP.scope(step, work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_step_is_visible_inside_its_scope_only() {
        assert_eq!(current_step(), None);
        let inside = in_step("promote".to_owned(), async { current_step() }).await;
        assert_eq!(inside.as_deref(), Some("promote"));
        let nested = in_step("outer".to_owned(), in_step("inner".to_owned(), async { current_step() })).await;
        assert_eq!(nested.as_deref(), Some("inner"));
        assert_eq!(current_step(), None);
    }
}
