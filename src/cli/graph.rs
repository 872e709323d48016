//! `gantry graph FILE --format dot|json|mermaid`.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::graph::EdgeReason;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum Format {
    Dot,
    Json,
    Mermaid,
}

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The pipeline file.
    file: PathBuf,
    #[arg(long, value_enum, default_value = "dot")]
    format: Format,
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    pipeline: &'a str,
    steps: Vec<JsonStep<'a>>,
    edges: Vec<JsonEdge<'a>>,
}

#[derive(Serialize)]
struct JsonStep<'a> {
    name: &'a str,
    kind: &'a str,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonEdge<'a> {
    from: &'a str,
    to: &'a str,
    #[serde(flatten)]
    reason: &'a EdgeReason,
}

pub(super) fn run(args: &Args, environment: &crate::cli::Environment) -> Result<u8> {
    let pipeline = environment.load(&args.file)?;
    let graph = crate::run::plan(&pipeline, &[])?;
    let name = |id: usize| pipeline.steps[id].name.as_str();
    let mut edges: Vec<_> = graph.edges.iter().collect();
    edges.sort_by_key(|edge| (edge.from, edge.to));
    edges.dedup_by(|left, right| {
        left.from == right.from && left.to == right.to && left.reason == right.reason
    });
    let text = match args.format {
        Format::Dot => {
            let mut text = format!("digraph \"{}\" {{\n  rankdir=LR;\n", escape(&pipeline.name));
            for step in &pipeline.steps {
                let _ = writeln!(
                    text,
                    "  \"{}\" [shape=box, label=\"{}\\n({})\"];",
                    escape(&step.name),
                    escape(&step.name),
                    step.kind.name()
                );
            }
            for edge in &edges {
                let label = match &edge.reason {
                    EdgeReason::Needs => "needs".to_owned(),
                    EdgeReason::Reads { output, .. } => output.clone(),
                };
                let _ = writeln!(
                    text,
                    "  \"{}\" -> \"{}\" [label=\"{}\"];",
                    escape(name(edge.from)),
                    escape(name(edge.to)),
                    escape(&label)
                );
            }
            text.push_str("}\n");
            text
        }
        Format::Mermaid => {
            let mut text = "flowchart LR\n".to_owned();
            for (id, step) in pipeline.steps.iter().enumerate() {
                let _ = writeln!(text, "  s{id}[\"{} ({})\"]", step.name, step.kind.name());
            }
            for edge in &edges {
                let label = match &edge.reason {
                    EdgeReason::Needs => "needs".to_owned(),
                    EdgeReason::Reads { output, .. } => output.replace('"', "'"),
                };
                let _ = writeln!(text, "  s{} -->|\"{label}\"| s{}", edge.from, edge.to);
            }
            text
        }
        Format::Json => {
            let graph = JsonGraph {
                pipeline: &pipeline.name,
                steps: pipeline
                    .steps
                    .iter()
                    .map(|step| JsonStep {
                        name: &step.name,
                        kind: step.kind.name(),
                        inputs: step
                            .inputs
                            .iter()
                            .map(|input| input.pattern.as_str())
                            .collect(),
                        outputs: step
                            .outputs
                            .iter()
                            .map(|output| output.path.as_str())
                            .collect(),
                    })
                    .collect(),
                edges: edges
                    .iter()
                    .map(|edge| JsonEdge {
                        from: name(edge.from),
                        to: name(edge.to),
                        reason: &edge.reason,
                    })
                    .collect(),
            };
            let mut text = serde_json::to_string_pretty(&graph).unwrap_or_default();
            text.push('\n');
            text
        }
    };
    print!("{text}");
    Ok(0)
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
