//! Text from outside (paths, step output, pipeline lines) reaches a terminal only with its
//! control characters escaped: a file named `\x1b]0;...` must not retitle the terminal, clear
//! the screen or hide the line before it. Newlines and tabs stay, for layout.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character but `\n` and `\t` written as `\u{..}`.
#[must_use]
pub fn controls(text: &str) -> Cow<'_, str> {
    let unsafe_char =
        |character: char| character.is_control() && character != '\n' && character != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        if unsafe_char(character) {
            let _ = write!(escaped, "\\u{{{:x}}}", u32::from(character));
        } else {
            escaped.push(character);
        }
    }
    Cow::Owned(escaped)
}

/// Text for HTML element content and attribute values: the five special characters as
/// entities, and control characters and bidirectional overrides dropped (a name must not
/// reorder what a reader sees around it).
#[must_use]
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            character if invisible(character) => {}
            character => out.push(character),
        }
    }
    out
}

/// A control character or a bidirectional mark or override: shown, it would hide or reorder
/// the text around it.
#[must_use]
pub fn invisible(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            controls("a\u{1b}[2Jb\rc\u{7}\u{9b}d\u{7f}"),
            "a\\u{1b}[2Jb\\u{d}c\\u{7}\\u{9b}d\\u{7f}"
        );
    }
}
