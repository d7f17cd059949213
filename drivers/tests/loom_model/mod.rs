//! What the loom model tests (`loom_*.rs`) share.

/// Run `f` under loom with at most `bound` preemptions (or the
/// environment's `LOOM_MAX_PREEMPTIONS` when set).
pub fn check<F>(bound: usize, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    builder.check(f);
}
