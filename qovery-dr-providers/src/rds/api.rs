//! The RDS API calls the manager makes, one client per region, errors mapped.

use aws_sdk_rds::Client;
use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::{ApplyMethod, Parameter};
use qovery_dr_core::provider::LinkState;
use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult};

use crate::aws_error::Service;

/// The provider's name in errors.
pub(crate) const PROVIDER: &str = "rds";

const RDS: Service = Service { provider: PROVIDER, name: "the RDS API", by_code, not_found_code: "DBInstanceNotFound" };

fn by_code(code: &str) -> Option<(ErrorKind, &'static str)> {
    Some(match code {
        "DBInstanceNotFound" | "DBInstanceNotFoundFault" => {
            (ErrorKind::NotFound, "check the instance identifier and its region")
        }
        "DBClusterNotFoundFault" => (ErrorKind::NotFound, "check the cluster identifier and its region"),
        "DBParameterGroupNotFound" | "DBParameterGroupNotFoundFault" => {
            (ErrorKind::NotFound, "check the parameter group's name (the primary must use that custom group)")
        }
        "InvalidDBClusterStateFault" => (
            ErrorKind::Conflict,
            "the cluster is busy (failing over, modifying…) or has no other available instance: wait until it is available",
        ),
        "InvalidDBInstanceState" | "InvalidDBInstanceStateFault" => (
            ErrorKind::Conflict,
            "the instance is busy (modifying, backing-up, rebooting…) or not a read replica: wait until it is available",
        ),
        "InvalidDBParameterGroupState" | "InvalidDBParameterGroupStateFault" => {
            (ErrorKind::Conflict, "the parameter group is being modified: retry in a moment")
        }
        "InvalidParameterValue" | "InvalidParameterCombination" => {
            (ErrorKind::InvalidInput, "RDS rejected an argument")
        }
        _ => return None,
    })
}

fn map<E>(operation: &str, write: bool, e: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    crate::aws_error::map(&RDS, operation, write, e)
}

/// What the API says of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceFacts {
    /// `DBInstanceStatus` (`available`, `modifying`, `rebooting`, `backing-up`, …).
    pub status: String,
    /// `ReadReplicaSourceDBInstanceIdentifier` (an ARN across regions): `None` once promoted.
    pub source: Option<String>,
    /// The `read replication` status info: (status, normal, message).
    pub replication: Option<(String, bool, String)>,
    /// The DB parameter groups it uses.
    pub parameter_groups: Vec<String>,
}

/// What the API says of an Aurora cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterFacts {
    /// The cluster's `Status` (`available`, `failing-over`, `modifying`, …).
    pub status: String,
    /// Its instances: (identifier, is the writer).
    pub members: Vec<(String, bool)>,
}

impl ClusterFacts {
    /// Whether `instance` is the cluster's writer (`None`: not a member).
    pub(crate) fn is_writer(&self, instance: &str) -> Option<bool> {
        self.members.iter().find(|(id, _)| id == instance).map(|(_, writer)| *writer)
    }
}

impl InstanceFacts {
    /// The replication link as the API sees it: `None` when it has nothing against it
    /// (the SQL facts then decide), else why it is not streaming.
    pub(crate) fn link(&self) -> Option<LinkState> {
        if self.source.is_none() {
            return Some(LinkState::NotApplicable);
        }
        if let Some((status, normal, message)) = &self.replication {
            let why = if message.is_empty() {
                format!("read replication {status}")
            } else {
                format!("read replication {status}: {message}")
            };
            match status.as_str() {
                "error" | "terminated" => return Some(LinkState::Broken(why)),
                "stopped" => return Some(LinkState::Down(why)),
                _ if !normal => return Some(LinkState::Down(why)),
                _ => {}
            }
        }
        match self.status.as_str() {
            // Busy but replicating: the SQL facts say how far behind.
            "available" | "backing-up" | "modifying" | "configuring-log-exports" | "storage-optimization" => None,
            other => Some(LinkState::Down(format!("the replica is {other}"))),
        }
    }
}

/// The RDS API in one region.
#[derive(Debug, Clone)]
pub(crate) struct RdsApi {
    client: Client,
}

impl RdsApi {
    pub(crate) fn new(sdk: &aws_config::SdkConfig, region: &str, endpoint_url: Option<&str>) -> Self {
        let mut builder =
            aws_sdk_rds::config::Builder::from(sdk).region(aws_sdk_rds::config::Region::new(region.to_owned()));
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Self { client: Client::from_conf(builder.build()) }
    }

    /// `DescribeDBInstances` of one instance.
    pub(crate) async fn describe(&self, identifier: &str) -> ProviderResult<InstanceFacts> {
        const OP: &str = "describe_db_instances";
        let out = self
            .client
            .describe_db_instances()
            .db_instance_identifier(identifier)
            .send()
            .await
            .map_err(|e| map(OP, false, e))?;
        let Some(i) = out.db_instances().first() else {
            return Err(ProviderError::new(ErrorKind::NotFound, PROVIDER, OP, format!("no instance {identifier}")));
        };
        let replication = i.status_infos().iter().find(|s| s.status_type() == Some("read replication")).map(|s| {
            (
                s.status().unwrap_or_default().to_owned(),
                s.normal().unwrap_or(true),
                s.message().unwrap_or_default().to_owned(),
            )
        });
        Ok(InstanceFacts {
            status: i.db_instance_status().unwrap_or("unknown").to_owned(),
            source: i.read_replica_source_db_instance_identifier().map(str::to_owned),
            replication,
            parameter_groups: i
                .db_parameter_groups()
                .iter()
                .filter_map(|g| g.db_parameter_group_name().map(str::to_owned))
                .collect(),
        })
    }

    /// `DescribeDBClusters` of one Aurora cluster.
    pub(crate) async fn describe_cluster(&self, identifier: &str) -> ProviderResult<ClusterFacts> {
        const OP: &str = "describe_db_clusters";
        let out = self
            .client
            .describe_db_clusters()
            .db_cluster_identifier(identifier)
            .send()
            .await
            .map_err(|e| map(OP, false, e))?;
        let Some(c) = out.db_clusters().first() else {
            return Err(ProviderError::new(ErrorKind::NotFound, PROVIDER, OP, format!("no cluster {identifier}")));
        };
        Ok(ClusterFacts {
            status: c.status().unwrap_or("unknown").to_owned(),
            members: c
                .db_cluster_members()
                .iter()
                .filter_map(|m| {
                    m.db_instance_identifier().map(|id| (id.to_owned(), m.is_cluster_writer().unwrap_or(false)))
                })
                .collect(),
        })
    }

    /// `FailoverDBCluster` to `target`: a lost answer is `Indeterminate` (it may have been
    /// applied).
    pub(crate) async fn failover_cluster(&self, cluster: &str, target: &str) -> ProviderResult<()> {
        self.client
            .failover_db_cluster()
            .db_cluster_identifier(cluster)
            .target_db_instance_identifier(target)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map("failover_db_cluster", true, e))
    }

    /// `PromoteReadReplica`: a lost answer is `Indeterminate` (it may have been applied).
    pub(crate) async fn promote(&self, identifier: &str) -> ProviderResult<()> {
        self.client
            .promote_read_replica()
            .db_instance_identifier(identifier)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map("promote_read_replica", true, e))
    }

    /// `ModifyDBParameterGroup` with one parameter, applied immediately.
    pub(crate) async fn set_parameter(&self, group: &str, name: &str, value: &str) -> ProviderResult<()> {
        const OP: &str = "modify_db_parameter_group";
        let parameter = Parameter::builder()
            .parameter_name(name)
            .parameter_value(value)
            .apply_method(ApplyMethod::Immediate)
            .build();
        self.client
            .modify_db_parameter_group()
            .db_parameter_group_name(group)
            .parameters(parameter)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map(OP, true, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: &str, source: Option<&str>, replication: Option<(&str, bool, &str)>) -> InstanceFacts {
        InstanceFacts {
            status: status.into(),
            source: source.map(str::to_owned),
            replication: replication.map(|(s, n, m)| (s.into(), n, m.into())),
            parameter_groups: Vec::new(),
        }
    }

    #[test]
    fn the_api_facts_name_the_link_state() {
        let src = Some("arn:aws:rds:eu-west-1:1:db:shop");
        assert_eq!(facts("available", src, Some(("replicating", true, ""))).link(), None);
        assert_eq!(facts("modifying", src, None).link(), None, "busy but replicating");
        assert_eq!(facts("available", None, None).link(), Some(LinkState::NotApplicable), "promoted");
        assert_eq!(
            facts("available", src, Some(("error", false, "IO error"))).link(),
            Some(LinkState::Broken("read replication error: IO error".into()))
        );
        assert_eq!(
            facts("available", src, Some(("stopped", false, ""))).link(),
            Some(LinkState::Down("read replication stopped".into()))
        );
        assert_eq!(facts("rebooting", src, None).link(), Some(LinkState::Down("the replica is rebooting".into())));
        assert_eq!(
            facts("storage-full", src, None).link(),
            Some(LinkState::Down("the replica is storage-full".into()))
        );
    }

    #[test]
    fn rds_codes_say_what_to_do() {
        assert_eq!(by_code("InvalidDBInstanceState").map(|c| c.0), Some(ErrorKind::Conflict));
        assert_eq!(by_code("DBInstanceNotFound").map(|c| c.0), Some(ErrorKind::NotFound));
        assert_eq!(by_code("SomethingNew"), None);
    }
}
