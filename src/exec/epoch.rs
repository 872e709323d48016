//! A step's `SOURCE_DATE_EPOCH`: when what it reads last changed. The newest last-change time
//! (`git::last_change`) of its source files and the epochs of the steps whose outputs it
//! reads; for a step that reads no tracked file, when the pipeline file last changed. So a
//! commit that touches nothing a step reads (a CI file, a README) leaves its environment and
//! action key as they were, and its cached result stands; the time stays a fact of history
//! that every clone of the commit computes alike. Outside git a step gets none.

use crate::exec::context::Context;
use crate::pipeline::StepId;

/// The epoch of step `id` (memoised per run).
pub fn of_step(context: &Context, id: StepId) -> Option<i64> {
    if let Some(known) = context.epochs[id].get() {
        return *known;
    }
    let changes = context.last_changes.as_ref()?;
    let inputs = &context.graph.inputs[id];
    let root = &context.pipeline.root;
    let sources = (inputs.sources.iter()).filter_map(|source| changes.of(&root.join(source)));
    let upstream = (inputs.upstream.iter()).filter_map(|upstream| of_step(context, upstream.step));
    let newest = sources
        .chain(upstream)
        .max()
        .or_else(|| changes.of(&context.pipeline.file))
        .unwrap_or(changes.head_time);
    let _ = context.epochs[id].set(Some(newest));
    Some(newest)
}
