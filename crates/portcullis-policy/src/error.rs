//! What can go wrong when policies are loaded or facts are turned into Cedar entities (AZ-6):
//! every error says where (file, line, column, policy) and what to do.

use std::fmt;

/// One problem in a policy file, at a position in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiagnostic {
    /// The file the policy came from (a path, or `<baseline>`).
    pub source: String,
    /// 1-based line of the problem, 0 when Cedar gave no position.
    pub line: usize,
    /// 1-based column (in characters), 0 when Cedar gave no position.
    pub column: usize,
    /// The policy concerned, when there is one.
    pub policy: Option<String>,
    /// Cedar's diagnostic, or ours.
    pub message: String,
    /// What to do about it, when Cedar or we know.
    pub help: Option<String>,
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.source, self.line, self.column, self.message
        )?;
        if let Some(p) = &self.policy
            && !self.message.contains(&format!("`{p}`"))
        {
            write!(f, " (policy `{p}`)")?;
        }
        if let Some(h) = &self.help {
            write!(f, "; help: {h}")?;
        }
        Ok(())
    }
}

/// An error from this crate. Loading is all or nothing: on any error nothing is applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// Policy files that do not parse, use templates, repeat an id, or fail schema validation.
    #[error("{} policy error(s):\n{}", .0.len(), render(.0))]
    Policies(Vec<PolicyDiagnostic>),
    /// A fact about a principal, resource or context that cannot stand (empty name, unknown
    /// value...); `field` names it.
    #[error("invalid {field}: {message}")]
    Facts {
        /// Which fact, e.g. `connector.owner`.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A Cedar entity or request that could not be built from valid-looking facts.
    #[error("cannot build the Cedar {what}: {message}")]
    Build {
        /// `entity`, `context` or `request`.
        what: &'static str,
        /// Cedar's message.
        message: String,
    },
}

fn render(d: &[PolicyDiagnostic]) -> String {
    d.iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl PolicyError {
    /// A facts error.
    pub(crate) fn facts(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Facts {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The diagnostics, for a policy error; empty otherwise.
    pub fn diagnostics(&self) -> &[PolicyDiagnostic] {
        match self {
            Self::Policies(d) => d,
            _ => &[],
        }
    }
}

/// 1-based (line, column) of a byte offset in `text`; columns count characters.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // An offset inside a multi-byte character: step back to its start.
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 3), (2, 1));
        assert_eq!(line_column(t, 5), (2, 3));
        assert_eq!(line_column(t, 8), (3, 1));
        assert_eq!(line_column(t, 99), (3, 2));
    }
}
