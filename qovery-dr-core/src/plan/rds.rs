//! `rds = { … }` on a site's databases: which pairs the RDS API fails over, and what such a
//! pair needs from the rest of the plan.

use crate::model::{RdsDatabase, ResilienceLevel, Site};
use crate::provider::{FenceKind, ReplicationMode};

use super::validate::Check;

/// Why `id` is not an RDS identifier (1-63 letters, digits or hyphens, starting with a
/// letter, without two hyphens in a row or one at the end), if it is not.
fn identifier_problem(id: &str) -> Option<&'static str> {
    let first_is_letter = id.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if id.len() > 63 {
        Some("at most 63 characters")
    } else if !first_is_letter {
        Some("starting with a letter")
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some("letters, digits and hyphens only")
    } else if id.contains("--") || id.ends_with('-') {
        Some("no two hyphens in a row, none at the end")
    } else {
        None
    }
}

fn identifiers(field: &str, rds: &RdsDatabase, check: &mut Check) {
    let named = [("instance", Some(&rds.instance)), ("cluster", rds.cluster.as_ref())];
    for (key, value) in named {
        if let Some(value) = value
            && let Some(problem) = identifier_problem(value)
        {
            check.error(format!("{field}.rds.{key}"), format!("expected an RDS identifier ({problem}), got {value:?}"));
        }
    }
}

/// Every pair whose databases state `rds`: a physical pair needs it on both sides (the
/// standby is an RDS read replica or an Aurora reader, promoted through the API, which
/// SQL cannot do); both in one Aurora cluster or neither; the `read-only` fence needs the
/// primary's own parameter group (and, for Aurora, the DR's for the failback).
pub(super) fn pairs(
    primary: &Site,
    dr: &Site,
    mode: Option<ReplicationMode>,
    fence: FenceKind,
    resilience: Option<ResilienceLevel>,
    check: &mut Check,
) {
    for site in [primary, dr] {
        for (n, d) in site.databases().enumerate() {
            if let Some(rds) = &d.rds {
                identifiers(&site.database_field(n), rds, check);
            }
        }
    }
    for (n, p) in primary.databases().enumerate() {
        let Some((m, d)) = dr.databases().enumerate().find(|(_, d)| d.id == p.id) else { continue };
        let (pf, df) = (primary.database_field(n), dr.database_field(m));
        match (mode, &p.rds, &d.rds) {
            (_, None, None) => {}
            (Some(ReplicationMode::Physical), Some(a), Some(b)) => {
                physical_pair((&pf, a), (&df, b), fence, resilience, check)
            }
            (Some(ReplicationMode::Physical), Some(_), None) | (Some(ReplicationMode::Physical), None, Some(_)) => {
                let (missing, stated) = if p.rds.is_none() { (&pf, &df) } else { (&df, &pf) };
                check.error(
                    format!("{missing}.rds"),
                    format!(
                        "expected rds = {{ region, instance }} here too: {stated} is an RDS instance, and physical \
                         replication with RDS is a read replica (or an Aurora reader) promoted through the RDS API"
                    ),
                );
            }
            (Some(other), _, _) => {
                let side = if p.rds.is_some() { &pf } else { &df };
                check.warn(
                    format!("{side}.rds"),
                    format!(
                        "not used for replication mode {other}: it replicates over SQL (the rds block serves physical \
                         replication, promoted through the RDS API)"
                    ),
                );
            }
            (None, _, _) => {}
        }
    }
}

fn physical_pair(
    (pf, a): (&str, &RdsDatabase),
    (df, b): (&str, &RdsDatabase),
    fence: FenceKind,
    resilience: Option<ResilienceLevel>,
    check: &mut Check,
) {
    match (&a.cluster, &b.cluster) {
        (Some(x), Some(y)) if x != y => check.error(
            format!("{df}.rds.cluster"),
            format!(
                "expected the primary's cluster {x:?}, got {y:?}: FailoverDBCluster moves the writer within one \
                 Aurora cluster (a global database across regions is not supported)"
            ),
        ),
        (Some(_), None) | (None, Some(_)) => {
            let at = if a.cluster.is_none() { pf } else { df };
            check.error(
                format!("{at}.rds.cluster"),
                "expected a cluster on both databases of the pair or on neither: an Aurora reader and its writer are \
                 members of one cluster; a read replica of an instance is in none",
            );
        }
        (Some(cluster), Some(_)) => {
            if a.region != b.region {
                check.error(
                    format!("{df}.rds.region"),
                    format!("expected {} as the primary's: cluster {cluster} lives in one region", a.region),
                );
            }
            if resilience == Some(ResilienceLevel::CrossRegion) {
                check.error(
                    "resilience",
                    format!(
                        "expected cross-az: both databases are in Aurora cluster {cluster}, in {}; a failover within it \
                         survives the loss of an availability zone, not of the region",
                        a.region
                    ),
                );
            }
        }
        (None, None) => {}
    }
    if a.region == b.region && a.instance == b.instance {
        check.error(
            format!("{df}.rds.instance"),
            format!("expected another instance than the primary's {:?}", a.instance),
        );
    }
    if fence != FenceKind::ReadOnly {
        return;
    }
    let Some(group) = &a.parameter_group else {
        check.error(
            format!("{pf}.rds.parameter_group"),
            "expected the primary's DB parameter group for fence read-only (RDS has no ALTER SYSTEM: the fence sets \
             default_transaction_read_only in the group), or fence = \"logins\"",
        );
        return;
    };
    match &b.parameter_group {
        Some(g) if g == group && a.region == b.region => check.error(
            format!("{df}.rds.parameter_group"),
            format!("expected a group of its own: fencing the primary by {group:?} would make the promoted DR database read-only too"),
        ),
        None if a.cluster.is_some() => check.error(
            format!("{df}.rds.parameter_group"),
            "expected the DR instance's own DB parameter group for fence read-only: a failback fences it by its group",
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::identifier_problem;

    #[test]
    fn rds_identifiers_follow_the_api_rules() {
        assert_eq!(identifier_problem("shop-db-1"), None);
        assert!(identifier_problem("1shop").is_some());
        assert!(identifier_problem("shop--db").is_some());
        assert!(identifier_problem("shop-").is_some());
        assert!(identifier_problem("shop_db").is_some());
        assert!(identifier_problem(&"a".repeat(64)).is_some());
    }
}
