//! An Aurora PostgreSQL cluster on moto, for the RDS manager's tests and the whole
//! stack's.

/// Creates `cluster` with `writer` (its writer: moto makes the first instance the writer)
/// and `reader`, both in the parameter group `group` when given (created here).
pub async fn create(rds: &aws_sdk_rds::Client, cluster: &str, (writer, reader): (&str, &str), group: Option<&str>) {
    if let Some(g) = group {
        rds.create_db_parameter_group()
            .db_parameter_group_name(g)
            .db_parameter_group_family("aurora-postgresql15")
            .description("one group for every instance")
            .send()
            .await
            .unwrap();
    }
    rds.create_db_cluster()
        .db_cluster_identifier(cluster)
        .engine("aurora-postgresql")
        .master_username("qdr")
        .master_user_password("password1")
        .send()
        .await
        .unwrap();
    for id in [writer, reader] {
        let mut b = rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(cluster)
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large");
        if let Some(g) = group {
            b = b.db_parameter_group_name(g);
        }
        b.send().await.unwrap();
    }
}

/// The cluster's writer as moto shows it (empty when it has none).
pub async fn writer(rds: &aws_sdk_rds::Client, cluster: &str) -> String {
    let out = rds.describe_db_clusters().db_cluster_identifier(cluster).send().await.unwrap();
    out.db_clusters()[0]
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
        .unwrap_or_default()
        .to_owned()
}
