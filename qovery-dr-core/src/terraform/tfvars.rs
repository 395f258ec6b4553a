//! The `.tfvars` (JSON form) a site's Terraform needs for the values a plan owns.

use crate::model::Site;
use crate::plan::DrPlan;

/// The values `plan` holds for `site` (usually the DR site), as a `.tfvars.json` object:
/// `site_name`, `cloud`, `region`, `cluster_id`, `project_id` (when stated),
/// `environment_ids`, `databases` (by id: `host`, `port`, `dbname`, `user`), `registry`
/// (`host`, and `url` when stated), `dns_targets` (record → this site's target),
/// `parameters`, and `scale` (`min_instances`, `max_instances` when stated). Secrets are
/// never written: a Terraform that needs one reads it from its own secret store.
///
/// The same names are the outputs a plan can reference (`tf:dr/cluster_id`,
/// `tf:dr/databases.shop-db.host`), so a configuration that declares them as variables and
/// outputs them round-trips.
pub fn site_tfvars(plan: &DrPlan, site: &Site) -> serde_json::Value {
    let mut v = serde_json::json!({
        "site_name": site.name,
        "cloud": site.cloud,
        "region": site.region,
        "cluster_id": site.cluster.as_str(),
        "environment_ids": site.environments.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "databases": site.databases().map(|d| (d.id.as_str().to_owned(), serde_json::json!({
            "host": d.host, "port": d.port, "dbname": d.dbname, "user": d.user,
        }))).collect::<serde_json::Map<_, _>>(),
        "registry": { "host": site.registry.host },
        "dns_targets": plan.dns().iter().map(|r| {
            let target = if site.role == crate::model::SiteRole::Primary { &r.primary_target } else { &r.dr_target };
            (r.record.as_str().to_owned(), serde_json::Value::String(target.as_str().to_owned()))
        }).collect::<serde_json::Map<_, _>>(),
        "parameters": site.parameters,
    });
    if let Some(p) = &site.project {
        v["project_id"] = serde_json::Value::String(p.as_str().to_owned());
    }
    if let Some(url) = &site.registry.url {
        v["registry"]["url"] = serde_json::Value::String(url.clone());
    }
    let scale = &site.scale;
    if let Some(d) = scale.default {
        v["scale"] = serde_json::json!({ "min_instances": d.min_instances, "max_instances": d.max_instances });
    }
    v
}
