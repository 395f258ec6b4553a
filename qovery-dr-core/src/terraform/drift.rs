//! Drift: what the plan says of a field against what its Terraform output says now.

use std::collections::BTreeMap;

use super::{OutputRef, TerraformOutputs};

/// A plan field tied to a Terraform output: its value came from the output when the
/// plan was loaded (`tf:…` in the field), or it is a literal the plan states and
/// `[terraform.compare]` ties to an output.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct TerraformBinding {
    /// The plan field (`sites.dr.database.host`).
    pub field: String,
    /// The output.
    pub reference: OutputRef,
    /// The plan's value (`None` for a secret: its value is never held).
    #[serde(skip)]
    pub plan_value: Option<serde_json::Value>,
    /// The value came from the output at load (else: a literal of the plan file).
    pub from_output: bool,
}

/// One difference between the plan and Terraform.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TerraformDrift {
    /// The plan field.
    pub field: String,
    /// What the plan holds.
    pub plan_value: String,
    /// Where the plan's value comes from (`the plan file`, or the output when loaded).
    pub plan_source: String,
    /// What the output says now (`(missing)` when it is gone).
    pub terraform_value: String,
    /// The output (`tf:dr/database_host`).
    pub terraform_source: String,
    /// The failover uses the field (the cluster, a database endpoint, a registry, a DNS
    /// target): readiness fails on it.
    pub failover_critical: bool,
}

impl std::fmt::Display for TerraformDrift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the plan says {} ({}), Terraform says {} ({})",
            self.field, self.plan_value, self.plan_source, self.terraform_value, self.terraform_source
        )
    }
}

/// Every difference found, and the sources that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DriftReport {
    /// The differences.
    pub drifts: Vec<TerraformDrift>,
    /// Sources whose outputs could not be read (then their fields are not compared).
    pub errors: Vec<String>,
    /// How many fields were compared.
    pub compared: usize,
}

impl DriftReport {
    /// A plain-text rendering, one line per difference.
    pub fn to_text(&self) -> String {
        let mut out = format!("terraform drift: {} field(s) compared, {} differ\n", self.compared, self.drifts.len());
        for d in &self.drifts {
            let mark = if d.failover_critical { "DRIFT (used by the failover)" } else { "drift" };
            out.push_str(&format!("  {mark} {d}\n"));
        }
        for e in &self.errors {
            out.push_str(&format!("  NOT READ {e}\n"));
        }
        out
    }
}

/// Whether the failover uses `field`: a site's cluster, databases and registry, and the
/// DNS targets.
pub fn is_failover_critical(field: &str) -> bool {
    let site_field = ["sites.primary.", "sites.dr."].iter().find_map(|p| field.strip_prefix(p));
    if let Some(rest) = site_field {
        return ["cluster", "database", "additional_databases", "registry", "dns_targets"]
            .iter()
            .any(|k| rest == *k || rest.starts_with(&format!("{k}.")) || rest.starts_with(&format!("{k}[")));
    }
    field.starts_with("dns[") && (field.ends_with(".primary_target") || field.ends_with(".dr_target"))
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Compares each binding with the outputs read now (`outputs` by source name; a source
/// missing from it is reported as not read).
pub(crate) fn compare(
    bindings: &[TerraformBinding],
    outputs: &BTreeMap<String, Result<TerraformOutputs, String>>,
) -> DriftReport {
    let mut report = DriftReport::default();
    for (name, r) in outputs {
        if let Err(e) = r {
            report.errors.push(format!("source {name}: {e}"));
        }
    }
    for b in bindings {
        let Some(plan_value) = &b.plan_value else { continue };
        let Some(Ok(now)) = outputs.get(&b.reference.source) else { continue };
        report.compared += 1;
        let sensitive = now.get(&b.reference.output).is_some_and(|o| o.sensitive);
        let terraform_value = match now.lookup(&b.reference) {
            Ok(v) if v == plan_value => continue,
            // A number output and a string field (or the reverse) holding the same text.
            Ok(v) if show(v).trim_matches('"') == show(plan_value).trim_matches('"') => continue,
            Ok(_) if sensitive => "[sensitive, not shown]".to_owned(),
            Ok(v) => show(v),
            Err(_) => "(missing)".to_owned(),
        };
        report.drifts.push(TerraformDrift {
            field: b.field.clone(),
            plan_value: if sensitive { "[sensitive, not shown]".to_owned() } else { show(plan_value) },
            plan_source: if b.from_output {
                format!("{} when the plan was loaded", b.reference)
            } else {
                "the plan file".to_owned()
            },
            terraform_value,
            terraform_source: format!("{} now", b.reference),
            failover_critical: is_failover_critical(&b.field),
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_a_failover_uses_are_critical() {
        for f in [
            "sites.dr.cluster",
            "sites.dr.database.host",
            "sites.primary.additional_databases[0].port",
            "sites.dr.registry.url",
            "dns[1].dr_target",
        ] {
            assert!(is_failover_critical(f), "{f}");
        }
        for f in ["sites.dr.name", "sites.dr.parameters.LOG_LEVEL", "objectives.rto", "dns[0].ttl", "sites.dr.clusters"]
        {
            assert!(!is_failover_critical(f), "{f}");
        }
    }
}
