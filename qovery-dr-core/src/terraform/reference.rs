//! `tf:SOURCE/OUTPUT` references, with `.key` and `[n]` steps into object and list outputs.

use std::fmt;
use std::str::FromStr;

/// One step into a structured output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// An object's key (`.host`).
    Key(String),
    /// A list's element (`[0]`).
    Index(usize),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Key(k) => write!(f, ".{k}"),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A plan value taken from a Terraform output: `tf:dr/database_host`, or
/// `tf:dr/database.host` / `tf:dr/hosts[0]` into an object or list output. `SOURCE` is
/// a source declared under `[terraform.sources]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputRef {
    /// The source's name in the plan.
    pub source: String,
    /// The output's name.
    pub output: String,
    /// Steps into the output's value.
    pub steps: Vec<Step>,
}

impl OutputRef {
    /// Whether `text` is meant as a reference (starts with `tf:`).
    pub fn is_reference(text: &str) -> bool {
        text.starts_with("tf:")
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl FromStr for OutputRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected tf:SOURCE/OUTPUT (e.g. tf:dr/database_host, tf:dr/database.host, tf:dr/hosts[0])";
        let rest = s.strip_prefix("tf:").ok_or_else(|| format!("{expected}, got {s:?}"))?;
        let (source, path) = rest.split_once('/').ok_or_else(|| format!("{expected}, got {s:?}"))?;
        if !is_name(source) {
            return Err(format!("{expected}: {source:?} is not a source name"));
        }
        let end = path.find(['.', '[']).unwrap_or(path.len());
        let output = &path[..end];
        if !is_name(output) {
            return Err(format!("{expected}: {output:?} is not an output name"));
        }
        let mut steps = Vec::new();
        let mut rest = &path[end..];
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if r[..end].is_empty() {
                    return Err(format!("{expected}: an empty key in {s:?}"));
                }
                steps.push(Step::Key(r[..end].to_owned()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let (n, after) = r.split_once(']').ok_or_else(|| format!("{expected}: unclosed [ in {s:?}"))?;
                let n = n.parse().map_err(|_| format!("{expected}: [{n}] is not a list index"))?;
                steps.push(Step::Index(n));
                rest = after;
            } else {
                return Err(format!("{expected}: unexpected {rest:?}"));
            }
        }
        Ok(Self { source: source.to_owned(), output: output.to_owned(), steps })
    }
}

impl fmt::Display for OutputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tf:{}/{}", self.source, self.output)?;
        self.steps.iter().try_for_each(|s| write!(f, "{s}"))
    }
}

impl serde::Serialize for OutputRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        for text in ["tf:dr/database_host", "tf:dr/database.host", "tf:dr-site/hosts[0].name", "tf:dr/a[1][2]"] {
            let r: OutputRef = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
        }
        let r: OutputRef = "tf:dr/hosts[0].name".parse().unwrap();
        assert_eq!(r.steps, vec![Step::Index(0), Step::Key("name".into())]);
        for bad in ["tf:dr", "tf:/x", "tf:dr/", "tf:dr/1x", "tf:dr/x.", "tf:dr/x[a]", "tf:dr/x[0", "dr/x"] {
            assert!(bad.parse::<OutputRef>().is_err(), "{bad}");
        }
    }
}
