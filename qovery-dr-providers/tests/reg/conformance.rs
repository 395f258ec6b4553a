//! The RegistrySync conformance suite on real registries.

use qovery_dr_core::provider::{RegistryLocation, RegistryMapping};
use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
use qovery_dr_testkit::conformance::registry::RegistryFixture;

use super::server::{RegistryServer, layer, push_image};

pub fn sync(
    a: &RegistryServer,
    b: &RegistryServer,
    from_prefix: Option<&str>,
    to_prefix: Option<&str>,
) -> OciRegistrySync {
    let mapping = RegistryMapping::new(
        RegistryLocation { host: a.host(), prefix: from_prefix.map(Into::into) },
        RegistryLocation { host: b.host(), prefix: to_prefix.map(Into::into) },
    );
    OciRegistrySync::new(a.url(), RegistryAuth::Anonymous, b.url(), RegistryAuth::Anonymous, mapping)
}

async fn setup() -> RegistryFixture<OciRegistrySync> {
    let (a, b) = (RegistryServer::start(), RegistryServer::start());
    push_image(&a.url(), "team/api", "v1", &[layer(1, 50_000), layer(2, 30_000)]).await;
    let web = push_image(&a.url(), "team/web", "v1", &[layer(3, 40_000)]).await;
    push_image(&b.url(), "dr/api", "v1", &[layer(1, 50_000), layer(2, 30_000)]).await;
    let provider = sync(&a, &b, Some("team"), Some("dr"));
    let fixture = RegistryFixture {
        present: format!("{}/team/api:v1", a.host()).parse().unwrap(),
        missing: format!("{}/team/web:v1", a.host()).parse().unwrap(),
        missing_digest: web.parse().unwrap(),
        absent: format!("{}/team/nope:v1", a.host()).parse().unwrap(),
        foreign: "elsewhere.example.com/team/api:v1".parse().unwrap(),
        provider,
    };
    // The servers live as long as the test process.
    std::mem::forget((a, b));
    fixture
}

qovery_dr_testkit::registry_sync_conformance!(oci_on_docker_registry, setup());
