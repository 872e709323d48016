//! The step DAG: edges from `needs` and from inputs that name another step's outputs. Pure:
//! takes the validated pipeline and the list of source files, returns the graph or
//! diagnostics (output clashes, inputs that match nothing, cycles with their path).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use globset::{GlobSet, GlobSetBuilder};
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use crate::pipeline::path::is_within;
use crate::pipeline::{Diagnostic, Diagnostics, Pipeline, StepId};
use crate::workspace::SourceFiles;

/// Why one step depends on another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EdgeReason {
    /// `needs = [...]`.
    Needs,
    /// The dependent's input `pattern` names the producer's output `output`.
    Reads { pattern: String, output: String },
}

#[derive(Clone, Debug)]
pub struct Edge {
    pub from: StepId,
    pub to: StepId,
    pub reason: EdgeReason,
}

/// What one step reads.
#[derive(Clone, Debug, Default)]
pub struct StepInputs {
    /// Source files matched by the step's patterns (sorted, unique).
    pub sources: Vec<String>,
    /// Outputs of earlier steps the step reads: (producer, output index, input pattern index).
    pub upstream: Vec<Upstream>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub step: StepId,
    pub output: usize,
    pub pattern: usize,
}

#[derive(Clone, Debug)]
pub struct Graph {
    /// Steps in an order where every step comes after all it depends on.
    pub order: Vec<StepId>,
    pub dependencies: Vec<Vec<StepId>>,
    pub dependents: Vec<Vec<StepId>>,
    pub edges: Vec<Edge>,
    pub inputs: Vec<StepInputs>,
}

impl Graph {
    /// The run's release artifacts as (step, output index), in file order: outputs no other
    /// step makes something of, and every output of a step marked `publish`. Signing an
    /// artifact or describing it in an SBOM leaves it a release artifact.
    #[must_use]
    pub fn final_outputs(&self, pipeline: &Pipeline) -> Vec<(StepId, usize)> {
        let read: std::collections::HashSet<(StepId, usize)> = self
            .inputs
            .iter()
            .enumerate()
            .filter(|(reader, _)| pipeline.steps[*reader].kind.consumes_inputs())
            .flat_map(|(_, inputs)| inputs.upstream.iter().map(|up| (up.step, up.output)))
            .collect();
        pipeline
            .steps
            .iter()
            .enumerate()
            .flat_map(|(id, step)| (0..step.outputs.len()).map(move |output| (id, output, step)))
            .filter(|(id, output, step)| step.publish || !read.contains(&(*id, *output)))
            .map(|(id, output, _)| (id, output))
            .collect()
    }
}

/// Builds and checks the graph.
pub fn build(pipeline: &Pipeline, sources: &SourceFiles) -> Result<Graph, Diagnostics> {
    analyse(pipeline, sources, Whole::Yes)
}

/// The graph's mistakes in a pipeline some of whose steps were left out for mistakes of
/// their own (`gantry check` reports both at once). An input that matches nothing is not
/// reported here: it may be the output of a step that was left out.
#[must_use]
pub fn mistakes_of_partial(pipeline: &Pipeline, sources: &SourceFiles) -> Vec<Diagnostic> {
    analyse(pipeline, sources, Whole::No)
        .err()
        .map_or_else(Vec::new, |diagnostics| diagnostics.items)
}

/// Whether the pipeline holds every step its file declares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Whole {
    Yes,
    No,
}

fn analyse(pipeline: &Pipeline, sources: &SourceFiles, whole: Whole) -> Result<Graph, Diagnostics> {
    let mut errors = Vec::new();
    let owners = claim_outputs(pipeline, &mut errors);
    let (inputs, mut edges) = resolve_inputs(pipeline, sources, &owners, whole, &mut errors);
    for (to, step) in pipeline.steps.iter().enumerate() {
        for need in &step.needs {
            if let Some(from) = pipeline.step_id(&need.name) {
                edges.push(Edge {
                    from,
                    to,
                    reason: EdgeReason::Needs,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics {
            file: pipeline.source.clone(),
            items: errors,
            more: Vec::new(),
        });
    }
    let count = pipeline.steps.len();
    let mut dag: DiGraph<StepId, ()> = DiGraph::with_capacity(count, edges.len());
    for id in 0..count {
        dag.add_node(id);
    }
    let mut dependencies = vec![BTreeSet::new(); count];
    for edge in &edges {
        if dependencies[edge.to].insert(edge.from) {
            dag.add_edge(NodeIndex::new(edge.from), NodeIndex::new(edge.to), ());
        }
    }
    let order = match toposort(&dag, None) {
        Ok(order) => order.into_iter().map(NodeIndex::index).collect(),
        Err(_) => {
            return Err(Diagnostics {
                file: pipeline.source.clone(),
                items: vec![cycle_diagnostic(pipeline, &dag, &edges)],
                more: Vec::new(),
            });
        }
    };
    let dependencies: Vec<Vec<StepId>> = dependencies
        .into_iter()
        .map(|set| set.into_iter().collect())
        .collect();
    let mut dependents = vec![Vec::new(); count];
    for (to, froms) in dependencies.iter().enumerate() {
        for &from in froms {
            dependents[from].push(to);
        }
    }
    Ok(Graph {
        order,
        dependencies,
        dependents,
        edges,
        inputs,
    })
}

/// Output path → (step, output index), with clashes reported.
fn claim_outputs(
    pipeline: &Pipeline,
    errors: &mut Vec<Diagnostic>,
) -> HashMap<String, (StepId, usize)> {
    let mut owners: HashMap<String, (StepId, usize)> = HashMap::new();
    let mut sorted: Vec<(&str, StepId, usize)> = Vec::new();
    for (id, step) in pipeline.steps.iter().enumerate() {
        for (index, output) in step.outputs.iter().enumerate() {
            if let Some(&(other, _)) = owners.get(&output.path) {
                errors.push(
                    Diagnostic::at(
                        format!(
                            "output `{}` is also produced by step `{}`",
                            output.path, pipeline.steps[other].name
                        ),
                        output.span.clone(),
                    )
                    .hint("each output belongs to exactly one step"),
                );
                continue;
            }
            owners.insert(output.path.clone(), (id, index));
            sorted.push((&output.path, id, index));
        }
    }
    // A folder output of one step may not contain another step's output: neighbours in sorted
    // order are enough to find every such pair.
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        let (outer, outer_step, _) = pair[0];
        let (inner, inner_step, inner_index) = pair[1];
        if outer_step != inner_step && is_within(inner, outer) {
            errors.push(Diagnostic::at(
                format!(
                    "output `{inner}` lies inside output folder `{outer}` of step `{}`",
                    pipeline.steps[outer_step].name
                ),
                pipeline.steps[inner_step].outputs[inner_index].span.clone(),
            ));
        }
    }
    owners
}

/// Which (step, input pattern) pairs each glob pattern belongs to, compiled into one set so
/// that every path is matched once against all of them.
struct Globs {
    set: GlobSet,
    owners: Vec<(StepId, usize)>,
}

impl Globs {
    fn new(pipeline: &Pipeline) -> Self {
        let mut owners = Vec::new();
        let mut builder = GlobSetBuilder::new();
        for (id, step) in pipeline.steps.iter().enumerate() {
            for (index, pattern) in step.inputs.iter().enumerate() {
                if pattern.is_glob
                    && let Ok(glob) = crate::pipeline::path::glob(&pattern.pattern)
                {
                    builder.add(glob);
                    owners.push((id, index));
                }
            }
        }
        Self {
            set: builder.build().unwrap_or_else(|_| GlobSet::empty()),
            owners,
        }
    }

    fn matches(&self, path: &str, hits: &mut Vec<usize>) -> impl Iterator<Item = (StepId, usize)> {
        self.set.matches_into(path, hits);
        hits.iter().map(|&hit| self.owners[hit])
    }
}

/// A producer found for one input pattern: (producing step, its output index, output path).
type Producer<'a> = (StepId, usize, &'a str);

fn resolve_inputs(
    pipeline: &Pipeline,
    sources: &SourceFiles,
    owners: &HashMap<String, (StepId, usize)>,
    whole: Whole,
    errors: &mut Vec<Diagnostic>,
) -> (Vec<StepInputs>, Vec<Edge>) {
    let mut inputs = vec![StepInputs::default(); pipeline.steps.len()];
    let outputs: BTreeMap<&str, (StepId, usize)> = owners
        .iter()
        .map(|(path, &owner)| (path.as_str(), owner))
        .collect();
    let source_set: BTreeSet<&str> = sources.files.iter().map(String::as_str).collect();
    let globs = Globs::new(pipeline);
    let mut matched: Vec<Vec<bool>> = pipeline
        .steps
        .iter()
        .map(|step| vec![false; step.inputs.len()])
        .collect();
    let mut producers: Vec<Vec<Vec<Producer<'_>>>> = pipeline
        .steps
        .iter()
        .map(|step| vec![Vec::new(); step.inputs.len()])
        .collect();
    let mut hits = Vec::new();
    for file in &sources.files {
        for (id, index) in globs.matches(file, &mut hits) {
            inputs[id].sources.push(file.clone());
            matched[id][index] = true;
        }
    }
    for (&path, &(owner, output)) in &outputs {
        for (id, index) in globs.matches(path, &mut hits) {
            producers[id][index].push((owner, output, path));
        }
    }
    glob_producers_in_folders(pipeline, &outputs, &mut producers);
    for (id, step) in pipeline.steps.iter().enumerate() {
        for (index, pattern) in step
            .inputs
            .iter()
            .enumerate()
            .filter(|(_, pattern)| !pattern.is_glob)
        {
            let literal = pattern.pattern.as_str();
            // The input is an output, or lies inside a folder output.
            let mut ancestor = Some(literal);
            while let Some(candidate) = ancestor {
                if let Some(&(owner, output)) = outputs.get(candidate) {
                    producers[id][index].push((owner, output, candidate));
                }
                ancestor = candidate.rfind('/').map(|slash| &candidate[..slash]);
            }
            // The input is a folder that holds outputs or source files.
            let folder = format!("{literal}/");
            for (&path, &(owner, output)) in outputs
                .range::<str, _>((Bound::Included(folder.as_str()), Bound::Unbounded))
                .take_while(|(path, _)| path.starts_with(&folder))
            {
                producers[id][index].push((owner, output, path));
            }
            if source_set.contains(literal) {
                inputs[id].sources.push(literal.to_owned());
                matched[id][index] = true;
            }
            for file in source_set
                .range(folder.as_str()..)
                .take_while(|file| file.starts_with(&folder))
            {
                inputs[id].sources.push((*file).to_owned());
                matched[id][index] = true;
            }
        }
    }
    let edges = connect(pipeline, &producers, &mut matched, &mut inputs, errors);
    for (id, step) in pipeline.steps.iter().enumerate() {
        for (index, pattern) in step.inputs.iter().enumerate() {
            if !matched[id][index] && whole == Whole::Yes {
                errors.push(unmatched(pipeline, pattern, &sources.escaping));
            }
        }
    }
    (inputs, edges)
}

/// Turns producers into edges and upstream inputs; reports patterns that matched nothing.
fn connect(
    pipeline: &Pipeline,
    producers: &[Vec<Vec<Producer<'_>>>],
    matched: &mut [Vec<bool>],
    inputs: &mut [StepInputs],
    errors: &mut Vec<Diagnostic>,
) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (id, step) in pipeline.steps.iter().enumerate() {
        for (index, pattern) in step.inputs.iter().enumerate() {
            for &(owner, output, path) in &producers[id][index] {
                if owner == id {
                    errors.push(Diagnostic::at(
                        format!("step `{}` reads its own output `{path}`", step.name),
                        pattern.span.clone(),
                    ));
                    continue;
                }
                matched[id][index] = true;
                inputs[id].upstream.push(Upstream {
                    step: owner,
                    output,
                    pattern: index,
                });
                edges.push(Edge {
                    from: owner,
                    to: id,
                    reason: EdgeReason::Reads {
                        pattern: pattern.pattern.clone(),
                        output: path.to_owned(),
                    },
                });
            }
        }
        inputs[id].sources.sort_unstable();
        inputs[id].sources.dedup();
        inputs[id].upstream.dedup();
    }
    edges
}

/// A glob may match files inside a folder output whose contents are unknown until it runs:
/// depend on every folder output the glob's literal prefix overlaps. Folder outputs are few,
/// so this pairwise check stays cheap.
fn glob_producers_in_folders<'a>(
    pipeline: &Pipeline,
    outputs: &BTreeMap<&'a str, (StepId, usize)>,
    producers: &mut [Vec<Vec<Producer<'a>>>],
) {
    let folders: Vec<(&str, StepId, usize)> = outputs
        .iter()
        .filter(|(_, (owner, output))| pipeline.steps[*owner].outputs[*output].directory)
        .map(|(&path, &(owner, output))| (path, owner, output))
        .collect();
    if folders.is_empty() {
        return;
    }
    for (id, step) in pipeline.steps.iter().enumerate() {
        for (index, pattern) in step
            .inputs
            .iter()
            .enumerate()
            .filter(|(_, pattern)| pattern.is_glob)
        {
            for &(path, owner, output) in &folders {
                if crate::pipeline::path::could_match_inside(&pattern.pattern, path)
                    && !producers[id][index]
                        .iter()
                        .any(|&(known, known_output, _)| (known, known_output) == (owner, output))
                {
                    producers[id][index].push((owner, output, path));
                }
            }
        }
    }
}

/// An input that matched nothing; says so plainly when a symlink gantry refused is the reason.
fn unmatched(
    pipeline: &Pipeline,
    pattern: &crate::pipeline::InputPattern,
    escaping: &[String],
) -> Diagnostic {
    let matcher = crate::pipeline::path::glob(&pattern.pattern)
        .map(|glob| glob.compile_matcher())
        .ok();
    let refused = escaping.iter().find(|link| {
        is_within(link, &pattern.pattern)
            || matcher
                .as_ref()
                .is_some_and(|matcher| matcher.is_match(link.as_str()))
    });
    let diagnostic = Diagnostic::at(
        format!(
            "input `{}` matches no file and no step's output",
            pattern.pattern
        ),
        pattern.span.clone(),
    );
    match refused {
        Some(link) => diagnostic.hint(format!(
            "`{link}` is a symlink that leads outside the workspace or to a folder; gantry does not follow it"
        )),
        None => diagnostic.hint(format!("paths are relative to the workspace root `{}`", pipeline.root.display())),
    }
}

fn cycle_diagnostic(pipeline: &Pipeline, dag: &DiGraph<StepId, ()>, edges: &[Edge]) -> Diagnostic {
    let component = tarjan_scc(dag)
        .into_iter()
        .find(|component| component.len() > 1)
        .unwrap_or_default();
    let members: BTreeSet<usize> = component.iter().map(|node| node.index()).collect();
    let start = members.iter().next().copied().unwrap_or(0);
    // Walk inside the component until a step repeats: that walk is a cycle.
    let mut path = vec![start];
    let mut reasons = Vec::new();
    loop {
        let current = *path.last().unwrap_or(&start);
        let Some(edge) = edges
            .iter()
            .find(|edge| edge.from == current && members.contains(&edge.to))
        else {
            break;
        };
        reasons.push(edge.clone());
        if let Some(position) = path.iter().position(|&step| step == edge.to) {
            path.drain(..position);
            reasons.drain(..position);
            path.push(edge.to);
            break;
        }
        path.push(edge.to);
    }
    let names: Vec<&str> = path
        .iter()
        .map(|&id| pipeline.steps[id].name.as_str())
        .collect();
    let first = path.first().copied().unwrap_or(start);
    let mut diagnostic = Diagnostic::at(
        format!("dependency cycle: {}", names.join(" → ")),
        pipeline.steps[first].name_span.clone(),
    );
    for edge in reasons {
        let (from, to) = (
            &pipeline.steps[edge.from].name,
            &pipeline.steps[edge.to].name,
        );
        diagnostic = diagnostic.hint(match edge.reason {
            EdgeReason::Needs => format!("`{to}` needs `{from}`"),
            EdgeReason::Reads { pattern, output } => {
                format!("`{to}` reads `{pattern}`, which `{from}` produces as `{output}`")
            }
        });
    }
    diagnostic
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::*;
    use crate::pipeline::validate::parse_test_text;

    /// A pipeline where step `i` writes `out/i` and reads the outputs of `reads[i]`.
    fn pipeline(reads: &[Vec<usize>], needs: &[Vec<usize>]) -> Pipeline {
        let mut text = "[pipeline]\nname = \"p\"\n".to_owned();
        for (index, (reads, needs)) in reads.iter().zip(needs).enumerate() {
            let inputs: Vec<String> = reads.iter().map(|read| format!("\"out/{read}\"")).collect();
            let needs: Vec<String> = needs.iter().map(|need| format!("\"s{need}\"")).collect();
            let _ = write!(
                text,
                "[steps.s{index}]\nrun = \"true\"\noutputs = [\"out/{index}\"]\ninputs = [{}]\nneeds = [{}]\n",
                inputs.join(", "),
                needs.join(", ")
            );
        }
        parse_test_text(&text).expect("generated pipelines are valid")
    }

    /// For each step, a few distinct earlier steps.
    fn earlier(count: usize) -> impl Strategy<Value = Vec<Vec<usize>>> {
        (0..count)
            .map(|index| {
                prop::collection::btree_set(0..index.max(1), 0..=index.min(3))
                    .prop_map(move |set| set.into_iter().filter(|&other| other < index).collect())
            })
            .collect::<Vec<_>>()
    }

    proptest! {
        #[test]
        fn every_edge_goes_forward_in_the_order(
            (reads, needs) in (2usize..25).prop_flat_map(|count| (earlier(count), earlier(count)))
        ) {
            let pipeline = pipeline(&reads, &needs);
            let graph = build(&pipeline, &SourceFiles::default()).expect("acyclic");
            let mut position = vec![usize::MAX; pipeline.steps.len()];
            for (index, &id) in graph.order.iter().enumerate() {
                position[id] = index;
            }
            prop_assert!(position.iter().all(|&index| index != usize::MAX), "the order holds every step");
            for edge in &graph.edges {
                prop_assert!(position[edge.from] < position[edge.to]);
            }
            for (id, read) in reads.iter().enumerate() {
                prop_assert_eq!(graph.inputs[id].upstream.len(), read.len());
            }
        }

        #[test]
        fn a_back_edge_is_reported_as_a_cycle(count in 2usize..25, back in 0usize..1000) {
            // A chain s0 → s1 → ... and one step that also reads a later step's output.
            let mut reads: Vec<Vec<usize>> = (0..count).map(|index| if index == 0 { vec![] } else { vec![index - 1] }).collect();
            let from = back % count;
            reads[from].push(count - 1);
            let pipeline = pipeline(&reads, &vec![Vec::new(); count]);
            let error = build(&pipeline, &SourceFiles::default()).expect_err("cyclic");
            let message = &error.items[0].message;
            prop_assert!(message.starts_with("dependency cycle: ") || message.contains("reads its own output"), "{}", message);
        }
    }
}
