//! Drill reports: JSON, Markdown, and one self-contained HTML page with an
//! SVG Gantt chart of the stages and steps.

use std::fmt::Write as _;
use std::time::Duration;

use super::escape::{cell, html};
use super::timeline::{AuditEvent, Timeline};
use crate::engine::StepStatus;

fn dur(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

fn opt_dur(ms: Option<u64>) -> String {
    ms.map_or_else(|| "not measured".to_owned(), dur)
}

fn met(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "within objective",
        Some(false) => "OVER OBJECTIVE",
        None => "n/a",
    }
}

impl Timeline {
    /// What the step's output says for the report (a custom step's summary, why a step
    /// did nothing), if anything.
    fn note_of(&self, step: &str) -> &str {
        self.report
            .as_ref()
            .and_then(|r| r.steps.iter().find(|s| s.name == step))
            .and_then(|s| s.note.as_deref())
            .unwrap_or("")
    }

    /// The timeline and report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A Markdown report.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# DR {} report: {}\n", self.mode, cell(&self.plan));
        let _ = writeln!(out, "Run `{}`, started {}.\n", self.run_id, self.started_at);
        if let Some(r) = &self.report {
            let _ = writeln!(out, "| | measured | objective | |\n|---|---|---|---|");
            let _ = writeln!(
                out,
                "| RTO | {} | {} | {} |",
                opt_dur(r.measured_rto_ms),
                dur(r.objectives.rto.as_millis() as u64),
                met(r.rto_met)
            );
            let _ = writeln!(
                out,
                "| RPO | {} | {} | {} |\n",
                opt_dur(r.measured_rpo_ms),
                dur(r.objectives.rpo.as_millis() as u64),
                met(r.rpo_met)
            );
            let _ = writeln!(out, "**Outcome: {}**\n", r.outcome);
            if let Some(ev) = &r.rpo_evidence {
                let _ = writeln!(out, "RPO evidence: {}\n", cell(ev));
            }
            if let Some(s) = &r.safe_state {
                let _ = writeln!(out, "Safe state: {}\n", cell(s));
            }
        } else {
            let _ = writeln!(out, "**The run has not finished.**\n");
        }
        let _ = writeln!(out, "## Approvals, interlocks and overrides\n");
        if self.audit.is_empty() {
            let _ = writeln!(out, "None recorded.\n");
        }
        for a in &self.audit {
            let _ = match a {
                AuditEvent::Approved { at_ms, approval } => writeln!(
                    out,
                    "- +{}: approved by **{}** ({})",
                    dur(*at_ms),
                    cell(&approval.approver),
                    cell(&approval.comment)
                ),
                AuditEvent::Refused { at_ms, step, rule, evidence } => {
                    writeln!(out, "- +{}: interlock `{rule}` **refused** `{step}`: {}", dur(*at_ms), cell(evidence))
                }
                AuditEvent::Overridden { at_ms, step, rule, reason, evidence } => writeln!(
                    out,
                    "- +{}: interlock `{rule}` **overridden** for `{step}`: {} (evidence: {})",
                    dur(*at_ms),
                    cell(reason),
                    cell(evidence)
                ),
            };
        }
        let _ = writeln!(
            out,
            "\n## Timeline\n\n| start | step | stage | duration | attempts | status | note |\n|---|---|---|---|---|---|---|"
        );
        for s in &self.steps {
            let d = s.end_ms.map_or_else(|| "unfinished".to_owned(), |e| dur(e.saturating_sub(s.start_ms)));
            let _ = writeln!(
                out,
                "| +{} | `{}` | {} | {d} | {} | {:?} | {} |",
                dur(s.start_ms),
                cell(&s.step),
                cell(&s.stage),
                s.attempts,
                s.status,
                cell(self.note_of(&s.step))
            );
            for (at, why) in &s.failed_attempts {
                let _ = writeln!(out, "| +{} | ↳ attempt failed | | | | {} | |", dur(*at), cell(why));
            }
        }
        out
    }

    /// One self-contained HTML page (no external assets): summary, Gantt
    /// chart (SVG, one bar per step, retries marked), audit trail, step table.
    pub fn to_html(&self) -> String {
        let total = self.total_ms() as f64;
        let (left, width, row, top) = (260.0_f64, 900.0_f64, 22.0_f64, 30.0_f64);
        let height = top + row * self.steps.len() as f64 + 30.0;
        let x = |ms: u64| left + width * (ms as f64 / total);
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" id="gantt" width="{}" height="{height}" viewBox="0 0 {} {height}" role="img" aria-label="timeline of the run">"#,
            left + width + 20.0,
            left + width + 20.0
        );
        for i in 0..=10 {
            let t = (total * f64::from(i) / 10.0) as u64;
            let xi = x(t);
            let _ = write!(
                svg,
                r##"<line x1="{xi:.1}" y1="{top}" x2="{xi:.1}" y2="{:.1}" stroke="#ddd"/><text x="{xi:.1}" y="{:.1}" class="tick">{}</text>"##,
                height - 20.0,
                top - 8.0,
                html(&dur(t))
            );
        }
        let mut last_stage = String::new();
        for (i, s) in self.steps.iter().enumerate() {
            let y = top + row * i as f64;
            let end = s.end_ms.unwrap_or(self.total_ms());
            let (x0, x1) = (x(s.start_ms), x(end));
            let w = (x1 - x0).max(2.0);
            let color = match s.status {
                StepStatus::Succeeded => "#2e7d32",
                StepStatus::Failed => "#c62828",
                StepStatus::Refused => "#ef6c00",
                StepStatus::NotRun => "#9e9e9e",
            };
            if s.stage != last_stage {
                let _ = write!(
                    svg,
                    r##"<line x1="0" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#999" stroke-dasharray="3,3"/>"##,
                    left + width
                );
                last_stage = s.stage.clone();
            }
            let label: String = format!("{} · {}", s.stage, s.step).chars().take(42).collect();
            let _ = write!(
                svg,
                r#"<text x="4" y="{:.1}" class="label">{}</text><rect class="step-bar" data-step="{}" x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{color}"><title>{} ({}): {}, {} attempt(s)</title></rect>"#,
                y + row * 0.7,
                html(&label),
                html(&s.step),
                y + 3.0,
                row - 6.0,
                html(&s.step),
                html(&s.stage),
                html(&s.end_ms.map_or_else(|| "unfinished".to_owned(), |e| dur(e.saturating_sub(s.start_ms)))),
                s.attempts
            );
            for (at, why) in &s.failed_attempts {
                let _ = write!(
                    svg,
                    r##"<rect class="retry" x="{:.1}" y="{:.1}" width="3" height="{:.1}" fill="#b71c1c"><title>attempt failed: {}</title></rect>"##,
                    x(*at) - 1.5,
                    y + 1.0,
                    row - 2.0,
                    html(why)
                );
            }
        }
        svg.push_str("</svg>");
        let (rto, rpo, objectives, outcome) = match &self.report {
            Some(r) => (
                format!("{} ({})", opt_dur(r.measured_rto_ms), met(r.rto_met)),
                format!("{} ({})", opt_dur(r.measured_rpo_ms), met(r.rpo_met)),
                format!(
                    "RTO {} · RPO {}",
                    dur(r.objectives.rto.as_millis() as u64),
                    dur(r.objectives.rpo.as_millis() as u64)
                ),
                r.outcome.to_string(),
            ),
            None => ("not measured".into(), "not measured".into(), String::new(), "unfinished".into()),
        };
        let mut audit = String::new();
        for a in &self.audit {
            let _ = match a {
                AuditEvent::Approved { at_ms, approval } => write!(
                    audit,
                    "<li>+{}: approved by <b>{}</b> — {}</li>",
                    html(&dur(*at_ms)),
                    html(&approval.approver),
                    html(&approval.comment)
                ),
                AuditEvent::Refused { at_ms, step, rule, evidence } => write!(
                    audit,
                    "<li class=\"refused\">+{}: interlock <code>{rule}</code> refused <code>{}</code>: {}</li>",
                    html(&dur(*at_ms)),
                    html(step),
                    html(evidence)
                ),
                AuditEvent::Overridden { at_ms, step, rule, reason, evidence } => write!(
                    audit,
                    "<li class=\"overridden\">+{}: interlock <code>{rule}</code> overridden for <code>{}</code>: {} (evidence: {})</li>",
                    html(&dur(*at_ms)),
                    html(step),
                    html(reason),
                    html(evidence)
                ),
            };
        }
        if audit.is_empty() {
            audit.push_str("<li>none recorded</li>");
        }
        let mut rows = String::new();
        for s in &self.steps {
            let _ = write!(
                rows,
                "<tr><td>+{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td></tr>",
                html(&dur(s.start_ms)),
                html(&s.step),
                html(&s.stage),
                html(&s.end_ms.map_or_else(|| "unfinished".to_owned(), |e| dur(e.saturating_sub(s.start_ms)))),
                s.attempts,
                s.status,
                html(self.note_of(&s.step))
            );
        }
        let evidence = self.report.as_ref().and_then(|r| r.rpo_evidence.clone()).unwrap_or_default();
        format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DR {mode} report: {plan}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; }} .figures {{ display: flex; gap: 24px; margin: 12px 0; }}
.figure {{ border: 1px solid #ccc; border-radius: 6px; padding: 10px 16px; }}
.figure b {{ display: block; font-size: 20px; }}
#gantt .label {{ font-size: 11px; fill: #333; }} #gantt .tick {{ font-size: 10px; fill: #777; text-anchor: middle; }}
table {{ border-collapse: collapse; margin-top: 12px; }} td, th {{ border: 1px solid #ddd; padding: 3px 8px; font-size: 13px; }}
.refused {{ color: #ef6c00; }} .overridden {{ color: #c62828; }}
</style></head><body>
<h1>DR {mode} report: {plan}</h1>
<p>Run <code>{run}</code>, started {started}. Outcome: <b id="outcome">{outcome}</b>. Objectives: {objectives}.</p>
<div class="figures"><div class="figure">measured RTO<b id="rto">{rto}</b></div><div class="figure">measured RPO<b id="rpo">{rpo}</b></div></div>
<p id="rpo-evidence">{evidence}</p>
<h2>Timeline</h2>
{svg}
<h2>Approvals, interlocks and overrides</h2><ul id="audit">{audit}</ul>
<h2>Steps</h2><table id="steps"><tr><th>start</th><th>step</th><th>stage</th><th>duration</th><th>attempts</th><th>status</th><th>note</th></tr>{rows}</table>
</body></html>
"#,
            mode = self.mode,
            plan = html(&self.plan),
            run = html(&self.run_id),
            started = self.started_at,
            outcome = html(&outcome),
            objectives = html(&objectives),
            rto = html(&rto),
            rpo = html(&rpo),
            evidence = html(&evidence),
        )
    }
}
