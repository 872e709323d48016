//! Naming the key a user meant: syntax errors with a `did you mean` hint.

use super::Diagnostic;

/// A TOML or shape error; an unknown key gets the nearest known one as a hint.
#[must_use]
pub fn syntax_diagnostic(message: &str, span: Option<std::ops::Range<usize>>) -> Diagnostic {
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once("`, expected one of "));
    let Some((key, expected)) = unknown else {
        return Diagnostic::new(message.to_owned(), span);
    };
    let known: Vec<&str> = (expected.split(", "))
        .map(|name| name.trim_matches('`'))
        .collect();
    let diagnostic = Diagnostic::new(format!("unknown key `{key}`"), span);
    match closest(key, known.iter().copied()) {
        Some(close) => diagnostic.hint(format!("did you mean `{close}`?")),
        None => diagnostic.hint(format!("the keys allowed here: {}", known.join(", "))),
    }
}

/// The candidate nearest to `target` by edit distance, when it is close enough to be a typo.
#[must_use]
pub fn closest<'a>(target: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (edit_distance(target, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min()
        .map(|(_, candidate)| candidate)
}

/// Edit distance with transpositions (optimal string alignment): `outptus` is one edit from
/// `outputs`, as a typist sees it.
fn edit_distance(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    let mut rows = vec![(0..=right.len()).collect::<Vec<usize>>()];
    for row in 1..=left.len() {
        let mut current = vec![row; right.len() + 1];
        for column in 1..=right.len() {
            let cost = usize::from(left[row - 1] != right[column - 1]);
            let above = &rows[row - 1];
            let mut best = (above[column - 1] + cost)
                .min(above[column] + 1)
                .min(current[column - 1] + 1);
            if row > 1
                && column > 1
                && left[row - 1] == right[column - 2]
                && left[row - 2] == right[column - 1]
            {
                best = best.min(rows[row - 2][column - 2] + 1);
            }
            current[column] = best;
        }
        rows.push(current);
    }
    rows[left.len()][right.len()]
}
