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
