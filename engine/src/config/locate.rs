//! Where in the file an error is: a key path (`instruments[1].tick_size`) mapped back to its
//! line and column through the spans `toml_edit` keeps, and serde's and the TOML parser's own
//! errors placed the same way.

use std::ops::Range;
use std::path::Path;

use super::ConfigFileError;

/// One step of a key path.
#[derive(Clone, Copy, Debug)]
pub(super) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Builds located errors for one file.
pub(super) struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
    doc: toml_edit::ImDocument<&'a str>,
}

impl<'a> Locator<'a> {
    /// A locator for `text`, which serde has already parsed (so it is valid TOML).
    pub(super) fn new(path: &'a Path, text: &'a str) -> Locator<'a> {
        let doc = toml_edit::ImDocument::parse(text).expect("text that serde parsed is valid TOML");
        Locator { path, text, doc }
    }

    fn at_span(&self, span: Option<Range<usize>>, key: String, message: String) -> ConfigFileError {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigFileError::Invalid { path: self.path.to_owned(), line, column, key, message }
    }

    /// An error at `path`: at the key itself when it is present in the file, else at the nearest
    /// enclosing table that is (a missing key is reported where it should have been written).
    pub(super) fn error(&self, path: &[Seg], message: impl Into<String>) -> ConfigFileError {
        self.at_span(self.span_of(path), path_string(path), message.into())
    }

    fn span_of(&self, path: &[Seg]) -> Option<Range<usize>> {
        let root = self.doc.as_table();
        let mut best: Option<Range<usize>> = None;
        let mut current: Option<&toml_edit::Item> = None;
        for seg in path {
            let (next, key_span) = match (current, *seg) {
                (None, Seg::Key(k)) => (root.get(k), root.key(k).and_then(|k| k.span())),
                (Some(item), Seg::Key(k)) => {
                    (item.get(k), item.as_table_like().and_then(|t| t.key(k)).and_then(|k| k.span()))
                }
                (Some(item), Seg::Index(n)) => (item.get(n), None),
                (None, Seg::Index(_)) => (None, None),
            };
            let Some(next) = next else { break };
            best = key_span.or_else(|| next.span()).or(best);
            current = Some(next);
        }
        best
    }
}

/// Places an error of serde's first step: a TOML syntax error, or a value serde refused.
pub(super) fn serde_error(
    text: &str,
    path: &Path,
    e: serde_path_to_error::Error<toml::de::Error>,
) -> ConfigFileError {
    let key = e.path().to_string();
    let key = if key == "." { String::new() } else { key };
    let inner = e.into_inner();
    let doc = toml_edit::ImDocument::parse(text);
    let message = inner.message().trim_end().to_owned();
    match doc {
        // A syntax error: toml_edit's span is the most precise.
        Err(syntax) => {
            let loc = Locator { path, text, doc: toml_edit::ImDocument::parse("").expect("empty document") };
            let message = syntax.message().trim_end().replace('\n', "; ");
            loc.at_span(syntax.span().or(inner.span()), String::new(), message)
        }
        Ok(doc) => {
            let loc = Locator { path, text, doc };
            loc.at_span(inner.span(), key, message)
        }
    }
}
