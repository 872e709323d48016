//! User-facing errors that point into a source file: `FILE:LINE:COL: error: ...`, the
//! offending line, and a caret under the span.

mod closest;
mod unknown_keys;

pub use closest::{closest, syntax_diagnostic};
pub use unknown_keys::read as read_reporting_unknown;

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// A file gantry read, kept whole so diagnostics can quote it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SourceFile {
    /// The path as the user gave it (shown in messages).
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    /// 1-based line and column (in characters) of a byte offset.
    #[must_use]
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line - 1).unwrap_or("")
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// One problem found in a source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Byte range in the file; `None` when the problem has no place (an empty file).
    pub span: Option<Range<usize>>,
    pub hints: Vec<String>,
}

impl Diagnostic {
    #[must_use]
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Self {
            message: message.into(),
            span,
            hints: Vec::new(),
        }
    }

    #[must_use]
    pub fn at(message: impl Into<String>, span: Range<usize>) -> Self {
        Self::new(message, Some(span))
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

/// Every problem found in one file, rendered together.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    pub file: SourceFile,
    pub items: Vec<Diagnostic>,
    /// Problems found in other files read with this one (a template a pipeline uses).
    pub more: Vec<Diagnostics>,
}

impl Diagnostics {
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // In the file's order, whichever check found them first; the file-wide ones first.
        let mut items: Vec<&Diagnostic> = self.items.iter().collect();
        items.sort_by_key(|item| item.span.as_ref().map(|span| span.start));
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            self.render_one(item, &mut out);
        }
        for more in &self.more {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&more.render());
        }
        out
    }

    fn render_one(&self, item: &Diagnostic, out: &mut String) {
        let path = self.file.path.display();
        let Some(span) = &item.span else {
            let _ = writeln!(out, "{path}: error: {}", item.message);
            for hint in &item.hints {
                let _ = writeln!(out, "  = hint: {hint}");
            }
            return;
        };
        let (line, column) = self.file.line_column(span.start);
        let _ = writeln!(out, "{path}:{line}:{column}: error: {}", item.message);
        let text = self.file.line_text(line);
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {text}");
        let (end_line, end_column) = self.file.line_column(span.end.max(span.start + 1) - 1);
        let width = if end_line == line {
            (end_column + 1).saturating_sub(column).max(1)
        } else {
            text.chars().count().saturating_sub(column - 1).max(1)
        };
        let _ = writeln!(
            out,
            "{pad} | {}{}",
            " ".repeat(column - 1),
            "^".repeat(width)
        );
        for hint in &item.hints {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile {
            path: PathBuf::from("p.toml"),
            text: Arc::from(text),
        }
    }

    #[test]
    fn line_and_column_are_one_based() {
        let source = file("a = 1\nbé = 2\n");
        assert_eq!(source.line_column(0), (1, 1));
        assert_eq!(source.line_column(6), (2, 1));
        assert_eq!(source.line_column(10), (2, 4));
    }

    #[test]
    fn renders_file_line_column_and_caret() {
        let diagnostics = Diagnostics {
            file: file("[steps.a]\nkind = \"nope\"\n"),
            items: vec![
                Diagnostic::at("unknown step kind `nope`", 17..23).hint("known kinds: `exec`"),
            ],
            more: Vec::new(),
        };
        assert_eq!(
            diagnostics.render(),
            "p.toml:2:8: error: unknown step kind `nope`\n  |\n2 | kind = \"nope\"\n  |        ^^^^^^\n  = hint: known kinds: `exec`\n"
        );
    }
}
