//! `[terraform]` in a plan and `tf:SOURCE/OUTPUT` in its fields: the sources declared
//! once, each reference replaced by its output's value before validation (so it is typed
//! and checked like a literal), secrets kept as references, every problem at the field
//! that holds the reference, with the output's name.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::FieldIssue;
use crate::model::TerraformSecret;
use crate::terraform::{OutputRef, TerraformBinding, TerraformOutputs, TerraformSource};

/// What a plan says about Terraform: its sources, and which of its fields are tied to
/// which outputs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TerraformPlan {
    /// The sources, by name.
    pub sources: Vec<TerraformSource>,
    /// The fields tied to outputs (references, and `[terraform.compare]`).
    pub bindings: Vec<TerraformBinding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerraform {
    #[serde(default)]
    binary: Option<String>,
    #[serde(default)]
    sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    compare: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    dir: String,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// The `[terraform]` table, taken out of the plan (the rest of validation never sees it).
#[derive(Debug, Default)]
pub(super) struct Config {
    pub sources: Vec<TerraformSource>,
    compare: BTreeMap<String, String>,
}

/// Takes `[terraform]` out of `value`: its sources (a relative `dir` or `state` is taken
/// from `base`, the plan file's folder), or the problems in it.
pub(super) fn take_config(value: &mut Value, base: Option<&Path>) -> Result<Config, Vec<FieldIssue>> {
    let Some(raw) = value.as_object_mut().and_then(|o| o.remove("terraform")) else {
        return Ok(Config::default());
    };
    let raw: RawTerraform = serde_path_to_error::deserialize(&raw)
        .map_err(|e| vec![FieldIssue::new(format!("terraform.{}", e.path()), e.into_inner().to_string())])?;
    let binary = raw.binary.unwrap_or_else(|| "terraform".to_owned());
    let at = |p: &str| match base {
        Some(b) if Path::new(p).is_relative() => b.join(p),
        _ => Path::new(p).to_path_buf(),
    };
    let mut issues = Vec::new();
    let mut sources = Vec::new();
    for (name, s) in raw.sources {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            issues.push(FieldIssue::new(
                format!("terraform.sources.{name}"),
                "expected a name of letters, digits, - and _",
            ));
            continue;
        }
        let mut source = TerraformSource::new(&name, at(&s.dir)).with_binary(&binary);
        if let Some(ws) = s.workspace {
            source = source.with_workspace(ws);
        }
        if let Some(st) = s.state {
            source = source.with_state(at(&st));
        }
        sources.push(source);
    }
    if sources.is_empty() {
        issues.push(FieldIssue::new(
            "terraform.sources",
            "expected at least one source: [terraform.sources.NAME] dir = \"…\"",
        ));
    }
    if issues.is_empty() { Ok(Config { sources, compare: raw.compare }) } else { Err(issues) }
}

/// The keys whose values are secret references (`SecretField` in the raw plan; the
/// values of the top-level `credentials` table too). Checked against the raw plan by a test.
pub(super) const SECRET_KEYS: &[&str] =
    &["token", "password", "tsig_secret", "credentials", "dump_store_access_key_id", "dump_store_secret_access_key"];

fn is_secret(keys: &[&str]) -> bool {
    match keys {
        [.., last] if SECRET_KEYS.contains(last) => true,
        ["credentials", _] => true,
        _ => false,
    }
}

/// What resolving found: the fields tied to outputs, the problems.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    pub bindings: Vec<TerraformBinding>,
    pub issues: Vec<FieldIssue>,
}

/// Replaces every `tf:…` string in `value` by its output's value (a secret field gets a
/// reference that reads the output when resolved), from `outputs` read for `config`'s
/// sources (`Err`: why a source could not be read). A reference that cannot be resolved
/// is reported at its field and replaced by the marker of a value already reported.
pub(super) fn resolve(
    value: &mut Value,
    config: &Config,
    outputs: &BTreeMap<String, Result<TerraformOutputs, String>>,
) -> Resolved {
    let mut out = Resolved::default();
    let mut keys = Vec::new();
    walk(value, &mut String::new(), &mut keys, &mut |path, keys, v| {
        let Value::String(text) = v else { return };
        if !OutputRef::is_reference(text) {
            return;
        }
        match one(text, is_secret(keys), config, outputs) {
            Ok((new, plan_value, reference)) => {
                out.bindings.push(TerraformBinding {
                    field: path.to_owned(),
                    reference,
                    plan_value,
                    from_output: true,
                });
                *v = new;
            }
            Err(message) => {
                out.issues.push(FieldIssue::new(path, message));
                *v = super::fields::invalid_marker();
            }
        }
    });
    for (field, text) in &config.compare {
        let at = format!("terraform.compare.\"{field}\"");
        let reference: OutputRef = match text.parse() {
            Ok(r) => r,
            Err(e) => {
                out.issues.push(FieldIssue::new(at, e));
                continue;
            }
        };
        if !config.sources.iter().any(|s| s.name == reference.source) {
            out.issues.push(FieldIssue::new(at, format!("no source {} under [terraform.sources]", reference.source)));
            continue;
        }
        match lookup(value, field) {
            Some(v) if !v.is_null() => out.bindings.push(TerraformBinding {
                field: field.clone(),
                reference,
                plan_value: Some(v.clone()),
                from_output: false,
            }),
            _ => out.issues.push(FieldIssue::new(at, format!("the plan has no field {field} to compare"))),
        }
    }
    out
}

/// One reference: the value that replaces it, the plan's value to remember (none for a
/// secret), and the reference parsed.
fn one(
    text: &str,
    secret: bool,
    config: &Config,
    outputs: &BTreeMap<String, Result<TerraformOutputs, String>>,
) -> Result<(Value, Option<Value>, OutputRef), String> {
    let reference: OutputRef = text.parse()?;
    let Some(source) = config.sources.iter().find(|s| s.name == reference.source) else {
        let declared: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "{reference}: no Terraform source {} (declared: {}); add [terraform.sources.{}] dir = \"…\"",
            reference.source,
            if declared.is_empty() { "none".to_owned() } else { declared.join(", ") },
            reference.source
        ));
    };
    let read = match outputs.get(&source.name) {
        Some(Ok(o)) => o,
        Some(Err(e)) => {
            return Err(format!("{reference}: the outputs of source {} could not be read: {e}", source.name));
        }
        None => {
            return Err(format!(
                "{reference}: the outputs of source {} were not read (plans with Terraform references are read by \
                 DrPlan::load, or DrPlan::from_value_with_outputs)",
                source.name
            ));
        }
    };
    let found = read.lookup(&reference).map_err(|e| format!("{reference}: {e} ({})", source.command_line()))?;
    let sensitive = read.get(&reference.output).is_some_and(|o| o.sensitive);
    if secret {
        if !(found.is_string() || found.is_number()) {
            return Err(format!("{reference}: expected a string output for a secret, got a list or an object"));
        }
        let secret = TerraformSecret { reference: reference.clone(), source: source.clone() };
        let r = crate::model::SecretRef::Terraform(Box::new(secret));
        return Ok((Value::String(String::from(r)), None, reference));
    }
    if sensitive {
        return Err(format!(
            "{reference} is a sensitive output: it is accepted only where the plan expects a secret (a password, a \
             token…), and its value is not shown"
        ));
    }
    Ok((found.clone(), Some(found.clone()), reference))
}

/// Visits every value with its path as validation prints it (`sites.dr.database.port`,
/// `dns[0].dr_target`) and its object keys.
fn walk<'a>(
    v: &'a mut Value,
    path: &mut String,
    keys: &mut Vec<&'a str>,
    f: &mut impl FnMut(&str, &[&str], &mut Value),
) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                keys.push(k.as_str());
                walk(child, path, keys, f);
                keys.pop();
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(child, path, keys, f);
                path.truncate(len);
            }
        }
        other => f(path, keys, other),
    }
}

/// The value at a validation path (`sites.dr.database.host`, `dns[0].dr_target`).
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = value;
    for part in path.split('.') {
        let (key, indexes) = part.split_once('[').map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            v = v.get(key)?;
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            v = v.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(v)
}

/// Says which output a problem's value came from.
pub(super) fn annotate(issues: &mut [FieldIssue], bindings: &[TerraformBinding]) {
    for issue in issues.iter_mut() {
        if let Some(b) = bindings
            .iter()
            .find(|b| b.from_output && (issue.path == b.field || issue.path.starts_with(&format!("{}.", b.field))))
        {
            issue.message.push_str(&format!(" (the value of Terraform output {})", b.reference));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_field_of_the_raw_plan_is_known() {
        let raw = include_str!("raw.rs");
        for line in raw.lines().filter(|l| l.contains("SecretField") && l.trim_start().starts_with("pub ")) {
            let name = line.trim_start().trim_start_matches("pub ").split(':').next().unwrap_or_default().trim();
            assert!(SECRET_KEYS.contains(&name), "raw.rs has a secret field `{name}` that SECRET_KEYS does not list");
        }
    }

    #[test]
    fn paths_look_up_like_validation_prints_them() {
        let v =
            serde_json::json!({ "dns": [ { "dr_target": "x" } ], "sites": { "dr": { "database": { "port": 5432 } } } });
        assert_eq!(lookup(&v, "dns[0].dr_target"), Some(&serde_json::json!("x")));
        assert_eq!(lookup(&v, "sites.dr.database.port"), Some(&serde_json::json!(5432)));
        assert_eq!(lookup(&v, "sites.dr.nope"), None);
    }
}
