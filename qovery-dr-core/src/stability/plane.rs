//! What an operation depends on: a plane (control or data) of a service, and where it
//! lives.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::SiteRole;

/// Control plane (the API that changes things: a deploy, a record change, a promotion
/// through a cloud API) or data plane (what serves: a database server, a registry's
/// blobs, DNS answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlaneKind {
    /// An API that changes configuration.
    Control,
    /// What serves requests.
    Data,
}

/// Where a plane lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Location {
    /// One global control plane, hosted in `home` when it is known to live in one region
    /// (Route53's in us-east-1).
    Global {
        /// The region hosting it, when known.
        home: Option<String>,
    },
    /// A cloud region's regional service.
    Region {
        /// The region.
        region: String,
    },
    /// A resource of one of the plan's sites (its database server, its registry): in the
    /// site's region.
    Site {
        /// The site.
        site: SiteRole,
    },
    /// A self-hosted endpoint whose site the plan does not say (a DNS server, an etcd).
    Endpoint {
        /// Its address.
        address: String,
    },
    /// The orchestrator's own machine (a file lock and journal).
    Local,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Global { home: Some(h) } => write!(f, "global (hosted in {h})"),
            Location::Global { home: None } => f.write_str("global"),
            Location::Region { region } => write!(f, "region {region}"),
            Location::Site { site: SiteRole::Primary } => f.write_str("the primary site"),
            Location::Site { site: SiteRole::Dr } => f.write_str("the DR site"),
            Location::Endpoint { address } => write!(f, "endpoint {address}"),
            Location::Local => f.write_str("this machine"),
        }
    }
}

/// One dependency of an operation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Plane {
    /// The service, as an operator names it (`Qovery API`, `Route53 control plane`,
    /// `PostgreSQL server shop-db`).
    pub service: String,
    /// Control or data plane.
    pub kind: PlaneKind,
    /// Where it lives.
    pub location: Location,
}

impl Plane {
    /// A control plane.
    pub fn control(service: impl Into<String>, location: Location) -> Self {
        Self { service: service.into(), kind: PlaneKind::Control, location }
    }

    /// A data plane.
    pub fn data(service: impl Into<String>, location: Location) -> Self {
        Self { service: service.into(), kind: PlaneKind::Data, location }
    }
}

impl fmt::Display for Plane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PlaneKind::Control => "control plane",
            PlaneKind::Data => "data plane",
        };
        write!(f, "{} ({kind}, {})", self.service, self.location)
    }
}

/// What one provider's operations depend on, by operation (the provider trait's method
/// names), as the provider declares it.
///
/// ```
/// use qovery_dr_core::stability::{Location, Plane, Planes};
/// let planes = Planes::new("route53")
///     .op("switch", [Plane::control("Route53 control plane", Location::Global { home: Some("us-east-1".into()) })]);
/// assert_eq!(planes.of("switch")[0].service, "Route53 control plane");
/// assert!(planes.of("current").is_empty(), "not declared");
/// assert!(!Planes::undeclared("my-dns").is_declared());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Planes {
    /// The provider (`qovery`, `route53`, …).
    pub provider: String,
    /// Whether the provider declared its operations at all.
    declared: bool,
    operations: BTreeMap<String, Vec<Plane>>,
}

impl Planes {
    /// A provider's declaration, to fill with [`op`](Self::op).
    pub fn new(provider: impl Into<String>) -> Self {
        Self { provider: provider.into(), declared: true, operations: BTreeMap::new() }
    }

    /// A provider that declares nothing: the lint lists its steps as unknown.
    pub fn undeclared(provider: impl Into<String>) -> Self {
        Self { provider: provider.into(), declared: false, operations: BTreeMap::new() }
    }

    /// Declares what `operation` depends on.
    pub fn op(mut self, operation: &str, planes: impl IntoIterator<Item = Plane>) -> Self {
        self.operations.entry(operation.to_owned()).or_default().extend(planes);
        self
    }

    /// The same planes for several operations.
    pub fn ops(mut self, operations: &[&str], planes: impl IntoIterator<Item = Plane>) -> Self {
        let planes: Vec<Plane> = planes.into_iter().collect();
        for op in operations {
            self = self.op(op, planes.iter().cloned());
        }
        self
    }

    /// What `operation` depends on (empty when not declared).
    pub fn of(&self, operation: &str) -> &[Plane] {
        self.operations.get(operation).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether the provider declared its operations.
    pub fn is_declared(&self) -> bool {
        self.declared
    }

    /// Every declared operation and its planes.
    pub fn operations(&self) -> impl Iterator<Item = (&str, &[Plane])> {
        self.operations.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}
