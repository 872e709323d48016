//! Coverage reports: LCOV tracefiles (`geninfo`, grcov, coverage.py, c8) and Cobertura XML
//! (coverage.py, gcovr, JaCoCo converters), reduced to covered over coverable lines,
//! branches and functions.

use crate::gauntlet::Reading;

/// Covered and coverable counts, summed over the report's files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub lines: (usize, usize),
    pub branches: (usize, usize),
    /// `None` when the format does not say (Cobertura).
    pub functions: Option<(usize, usize)>,
}

/// An LCOV tracefile. A record's `LF`/`LH` (`BRF`/`BRH`, `FNF`/`FNH`) totals are used when
/// present, else its `DA`/`BRDA`/`FNDA` lines are counted.
pub fn lcov(text: &str) -> Result<Coverage, String> {
    let mut total = Coverage {
        functions: Some((0, 0)),
        ..Coverage::default()
    };
    let mut record = Record::default();
    let mut records = 0;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        let bad = || format!("line {}: `{line}` is not an LCOV line", number + 1);
        let count = |value: &str| value.trim().parse::<usize>().map_err(|_| bad());
        match tag {
            "SF" => record = Record::default(),
            "DA" => {
                let hits = value.split(',').nth(1).ok_or_else(bad)?;
                record.da.1 += 1;
                // Some tools write a checksum after the count; hits can be `-` nowhere here.
                record.da.0 += usize::from(count(hits)? > 0);
            }
            "BRDA" => {
                let taken = value.split(',').nth(3).ok_or_else(bad)?;
                record.brda.1 += 1;
                record.brda.0 += usize::from(taken.trim() != "-" && count(taken)? > 0);
            }
            "FNDA" => {
                let hits = value.split(',').next().ok_or_else(bad)?;
                record.fnda.1 += 1;
                record.fnda.0 += usize::from(count(hits)? > 0);
            }
            "LF" => record.lf = Some(count(value)?),
            "LH" => record.lh = Some(count(value)?),
            "BRF" => record.brf = Some(count(value)?),
            "BRH" => record.brh = Some(count(value)?),
            "FNF" => record.fnf = Some(count(value)?),
            "FNH" => record.fnh = Some(count(value)?),
            "end_of_record" => {
                records += 1;
                record.add_to(&mut total);
                record = Record::default();
            }
            // TN, FN, FNL, FNA, VER and blank lines say nothing about the totals.
            _ => {}
        }
    }
    if records == 0 {
        return Err("no `end_of_record`: not an LCOV tracefile".to_owned());
    }
    Ok(total)
}

#[derive(Default)]
struct Record {
    da: (usize, usize),
    brda: (usize, usize),
    fnda: (usize, usize),
    lf: Option<usize>,
    lh: Option<usize>,
    brf: Option<usize>,
    brh: Option<usize>,
    fnf: Option<usize>,
    fnh: Option<usize>,
}

impl Record {
    fn add_to(&self, total: &mut Coverage) {
        let pick = |hit: Option<usize>, found: Option<usize>, counted: (usize, usize)| match (
            hit, found,
        ) {
            (Some(hit), Some(found)) => (hit, found),
            _ => counted,
        };
        let lines = pick(self.lh, self.lf, self.da);
        let branches = pick(self.brh, self.brf, self.brda);
        let functions = pick(self.fnh, self.fnf, self.fnda);
        total.lines = (total.lines.0 + lines.0, total.lines.1 + lines.1);
        total.branches = (total.branches.0 + branches.0, total.branches.1 + branches.1);
        if let Some(sum) = &mut total.functions {
            *sum = (sum.0 + functions.0, sum.1 + functions.1);
        }
    }
}

/// A Cobertura report: the root's `lines-covered`/`lines-valid` and
/// `branches-covered`/`branches-valid`, which coverage.py and gcovr write; else every
/// `<line>` of every class is counted (`hits`, and `condition-coverage="50% (1/2)"`).
pub fn cobertura(text: &str) -> Result<Coverage, String> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(text, options)
        .map_err(|error| format!("not XML: {error}"))?;
    let root = document.root_element();
    if !root.has_tag_name("coverage") {
        return Err(format!(
            "the root element is `<{}>`, not Cobertura's `<coverage>`",
            root.tag_name().name()
        ));
    }
    let attribute = |name: &str| -> Result<Option<usize>, String> {
        root.attribute(name)
            .map(|value| {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("`{name}=\"{value}\"` is not a count"))
            })
            .transpose()
    };
    if let (Some(covered), Some(valid)) = (attribute("lines-covered")?, attribute("lines-valid")?) {
        let branches = match (attribute("branches-covered")?, attribute("branches-valid")?) {
            (Some(covered), Some(valid)) => (covered, valid),
            _ => (0, 0),
        };
        return Ok(Coverage {
            lines: (covered, valid),
            branches,
            functions: None,
        });
    }
    let mut coverage = Coverage::default();
    for line in root.descendants().filter(|node| {
        node.has_tag_name("line")
            && node
                .parent()
                .is_some_and(|lines| lines.has_tag_name("lines"))
            && node
                .parent()
                .and_then(|lines| lines.parent())
                .is_some_and(|class| class.has_tag_name("class"))
    }) {
        let hits = line.attribute("hits").unwrap_or("0");
        let hits: usize = hits
            .parse()
            .map_err(|_| format!("`hits=\"{hits}\"` is not a count"))?;
        coverage.lines = (
            coverage.lines.0 + usize::from(hits > 0),
            coverage.lines.1 + 1,
        );
        if let Some(condition) = line.attribute("condition-coverage") {
            // `50% (1/2)`
            let counts = condition
                .split_once('(')
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .and_then(|pair| pair.split_once('/'))
                .and_then(|(covered, valid)| {
                    Some((covered.parse::<usize>().ok()?, valid.parse::<usize>().ok()?))
                })
                .ok_or_else(|| format!("`condition-coverage=\"{condition}\"` is not `N% (a/b)`"))?;
            coverage.branches = (
                coverage.branches.0 + counts.0,
                coverage.branches.1 + counts.1,
            );
        }
    }
    Ok(coverage)
}

/// What a coverage gate can require: `line_coverage`, `branch_coverage` and (LCOV)
/// `function_coverage`, each covered over coverable (absent when nothing is coverable), and
/// the counts behind them (`lines_covered`, `lines`, ...).
#[must_use]
pub fn measure(coverage: &Coverage) -> Reading {
    let mut reading = Reading::default();
    let mut add = |plural: &str, singular: &str, (covered, valid): (usize, usize)| {
        reading.set(&format!("{plural}_covered"), covered);
        reading.set(plural, valid);
        if valid > 0 {
            reading.ratio(&format!("{singular}_coverage"), covered, valid);
        }
    };
    add("lines", "line", coverage.lines);
    add("branches", "branch", coverage.branches);
    if let Some(functions) = coverage.functions {
        add("functions", "function", functions);
    }
    reading
}
