//! Which DR environment stands in for which primary one: stated by the plan
//! (`[[environment_pairs]]`), never guessed from list positions.

use super::raw::RawEnvironmentPair;
use super::validate::Check;
use crate::model::{EnvironmentId, Site};

/// A primary environment and the DR environment that takes its place on failover.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvironmentPair {
    /// On the primary site.
    pub primary: EnvironmentId,
    /// On the DR site.
    pub dr: EnvironmentId,
}

/// The plan's pairs, checked: each names an environment of its site, every environment of
/// both sites is in exactly one pair. Without `[[environment_pairs]]`, one environment on
/// each site is the only pairing that needs no statement.
pub(super) fn pairs(
    raw: Vec<RawEnvironmentPair>,
    primary: &Site,
    dr: &Site,
    check: &mut Check,
) -> Vec<EnvironmentPair> {
    if raw.is_empty() {
        return match (primary.environments.as_slice(), dr.environments.as_slice()) {
            ([], []) => Vec::new(),
            ([p], [d]) => vec![EnvironmentPair { primary: p.clone(), dr: d.clone() }],
            (p, d) => {
                check.error(
                    "environment_pairs",
                    format!(
                        "the sites list {} primary and {} DR environments: state which DR environment stands in for \
                         which primary one, one [[environment_pairs]] entry each (primary = \"<id>\", dr = \"<id>\"); \
                         list positions are not a pairing",
                        p.len(),
                        d.len()
                    ),
                );
                Vec::new()
            }
        };
    }
    let mut out = Vec::new();
    for (i, pair) in raw.into_iter().enumerate() {
        let (p, d) = (EnvironmentId::new(pair.primary.0), EnvironmentId::new(pair.dr.0));
        let mut ok = true;
        for (side, id, site) in [("primary", &p, primary), ("dr", &d, dr)] {
            if !site.environments.contains(id) {
                ok = false;
                check.error(
                    format!("environment_pairs[{i}].{side}"),
                    format!("expected one of sites.{side}.environments, got {:?}", id.as_str()),
                );
            } else if out
                .iter()
                .any(|q: &EnvironmentPair| if side == "primary" { &q.primary == id } else { &q.dr == id })
            {
                ok = false;
                check.error(
                    format!("environment_pairs[{i}].{side}"),
                    format!("{:?} is already in another pair: each environment has one counterpart", id.as_str()),
                );
            }
        }
        if ok {
            out.push(EnvironmentPair { primary: p, dr: d });
        }
    }
    for (side, site) in [("primary", primary), ("dr", dr)] {
        for (i, e) in site.environments.iter().enumerate() {
            let paired = out.iter().any(|q| if side == "primary" { &q.primary == e } else { &q.dr == e });
            if !paired {
                check.error(
                    format!("sites.{side}.environments[{i}]"),
                    format!(
                        "{:?} is in no [[environment_pairs]] entry: {}",
                        e.as_str(),
                        if side == "primary" {
                            "a failover would leave it behind"
                        } else {
                            "nothing says which primary environment it replaces"
                        }
                    ),
                );
            }
        }
    }
    out
}
