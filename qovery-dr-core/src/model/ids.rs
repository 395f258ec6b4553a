//! Typed identifiers: a cluster id cannot be passed where an environment id is expected.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier as given by the platform.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A Qovery cluster (or any platform's cluster) identifier.
    ClusterId
);
id_type!(
    /// A Qovery environment identifier.
    EnvironmentId
);
id_type!(
    /// A service (application, container, job) identifier within an environment.
    ServiceId
);
id_type!(
    /// A database identifier as named in the plan (e.g. `orders-db`).
    DatabaseId
);
id_type!(
    /// A DNS record, by its fully-qualified name (e.g. `shop.example.com`).
    DnsRecordId
);
id_type!(
    /// A Qovery project identifier (used when cloning environments).
    ProjectId
);
id_type!(
    /// A deployment request identifier, as returned when a deployment starts.
    DeploymentId
);
id_type!(
    /// Where a DNS record points: an address, a hostname, an alias target or a
    /// load-balancer pool, as the DNS provider names it.
    DnsTarget
);
id_type!(
    /// A DNS change identifier, as returned by a switch, to poll for propagation.
    ChangeId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_display_and_serialize_transparently() {
        let id = ClusterId::new("c-1");
        assert_eq!(id.to_string(), "c-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"c-1\"");
        let back: ClusterId = serde_json::from_str("\"c-1\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(EnvironmentId::from("e").as_str(), "e");
    }
}
