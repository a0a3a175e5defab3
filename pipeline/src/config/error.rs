//! Config errors: every problem found, each with its place in the file.

use std::fmt;

/// One problem in a config file.
///
/// Displays as `file:line:column: field: message` (lines and columns count
/// from 1; columns in characters). An error about the file as a whole (it
/// cannot be read) has line 0 and displays as `file: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Dotted path of the setting, e.g. `policy[allow-web].destination-address`
    /// or `interface[ge-0/0/1].peer`; empty for TOML syntax errors.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut s = self.file.clone();
        if self.line > 0 {
            s.push_str(&format!(":{}:{}", self.line, self.column));
        }
        s.push_str(": ");
        if !self.field.is_empty() {
            s.push_str(&self.field);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s
    }
}

/// `s` with control characters escaped (`\n`, `\r`, `\t`, `\u{..}`), so
/// a name quoted from the file (a TOML string may hold a newline) cannot
/// split an error over several lines.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Every error found in a config, in file order. Displays one error per
/// line, each line ending in a newline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Maps byte offsets of a text to 1-based line and column (in characters).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> LineIndex<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column).unwrap_or(u32::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let idx = LineIndex::new("ab\nçd\n\nx");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(1), (1, 2));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(5), (2, 2)); // after the two-byte 'ç'
        assert_eq!(idx.position(7), (3, 1));
        assert_eq!(idx.position(8), (4, 1));
        assert_eq!(idx.position(100), (4, 2));
        assert_eq!(LineIndex::new("").position(0), (1, 1));
    }

    #[test]
    fn display_formats() {
        let e = ConfigError {
            file: "a.toml".into(),
            line: 3,
            column: 7,
            field: "policy[p].then".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.toml:3:7: policy[p].then: bad");
        let io = ConfigError {
            line: 0,
            column: 0,
            field: String::new(),
            ..e.clone()
        };
        assert_eq!(io.to_string(), "a.toml: bad");
        let all = ConfigErrors {
            errors: vec![e.clone(), e],
        };
        assert_eq!(all.to_string().lines().count(), 2);
        assert!(all.to_string().ends_with('\n'));
    }
}
