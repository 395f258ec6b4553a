//! What `terraform output -json` prints, parsed; values never shown by `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use super::reference::{OutputRef, Step};

/// One output: its value, whether Terraform marks it sensitive, and its type.
#[derive(Clone, PartialEq, serde::Deserialize)]
pub struct TerraformOutput {
    /// The value (any JSON: string, number, list, object…).
    pub value: serde_json::Value,
    /// Marked `sensitive = true` in the configuration.
    #[serde(default)]
    pub sensitive: bool,
    /// The type as Terraform states it (`"string"`, `["object", {...}]`…).
    #[serde(default, rename = "type")]
    pub kind: serde_json::Value,
}

impl fmt::Debug for TerraformOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerraformOutput")
            .field("value", &"[not shown]")
            .field("sensitive", &self.sensitive)
            .field("type", &self.kind)
            .finish()
    }
}

/// Every output of one Terraform configuration, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TerraformOutputs(BTreeMap<String, TerraformOutput>);

impl TerraformOutputs {
    /// Parses `terraform output -json` (an object of outputs; `{}` when there are none).
    pub fn parse(json: &str) -> Result<Self, String> {
        serde_json::from_str::<BTreeMap<String, TerraformOutput>>(json)
            .map(Self)
            .map_err(|e| format!("not the JSON of `terraform output -json`: {e}"))
    }

    /// Outputs built in code (tests, embedders that read state themselves).
    pub fn from_map(outputs: BTreeMap<String, TerraformOutput>) -> Self {
        Self(outputs)
    }

    /// The output `name`.
    pub fn get(&self, name: &str) -> Option<&TerraformOutput> {
        self.0.get(name)
    }

    /// The outputs' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// The value a reference names (its output, then its `.key` / `[n]` steps), or why
    /// there is none. The reason never contains a value.
    pub fn lookup(&self, r: &OutputRef) -> Result<&serde_json::Value, String> {
        let Some(out) = self.0.get(&r.output) else {
            let names = self.names();
            return Err(format!(
                "no output `{}` in source {}; its outputs: {}",
                r.output,
                r.source,
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ));
        };
        let mut v = &out.value;
        for step in &r.steps {
            let next = match step {
                Step::Key(k) => v.get(k.as_str()),
                Step::Index(i) => v.get(*i),
            };
            v = next.ok_or_else(|| format!("output `{}` has no {step} (in {r})", r.output))?;
        }
        Ok(v)
    }
}
