//! One table of each provider trait's methods, from which every wrapper's impl is
//! generated: the forwarding impls for `Arc` and `Box`, and the impl for
//! [`Layered`](super::Layered) that sends each call through a [`Layer`](super::Layer).
//! A method added to a trait is added here once, with whether it mutates, and every
//! wrapper follows; a wrapper can no longer forget a method or call a write a read.
//!
//! Each table calls `$emit! { (args) Trait, "family"; sync { … } async { … } }`:
//! `sync` methods are forwarded as they are (names, capabilities, pure mappings);
//! `async` methods are `read` or `write` and return `ProviderResult<T>`.

macro_rules! cluster_provider_methods {
    ($emit:ident ! ( $($args:tt)* )) => {
        $emit! { ($($args)*) ClusterProvider, "cluster";
            sync {
                fn name() -> &str;
                fn capabilities() -> ClusterCapabilities;
                fn planes() -> crate::stability::Planes;
            }
            async {
                read cluster_status(c: &ClusterId) -> ClusterStatus;
                read environment_status(e: &EnvironmentId) -> EnvironmentStatus;
                read list_environments(p: &ProjectId) -> Vec<EnvironmentSummary>;
                read list_services(e: &EnvironmentId) -> Vec<ServiceInfo>;
                write deploy_environment(e: &EnvironmentId) -> DeploymentId;
                write redeploy_environment(e: &EnvironmentId) -> DeploymentId;
                write deploy_services(e: &EnvironmentId, s: &DeployServices) -> DeploymentId;
                write stop_environment(e: &EnvironmentId) -> DeploymentId;
                read deployment_status(e: &EnvironmentId, d: &DeploymentId) -> DeploymentStatus;
                read list_variables(s: &VariableScope) -> Vec<Variable>;
                write set_variable(s: &VariableScope, k: &str, v: &VariableValue) -> ();
                write delete_variable(s: &VariableScope, k: &str) -> ();
                write set_service_image(e: &EnvironmentId, s: &ServiceId, i: &ImageRef) -> ();
                write clone_environment(s: &EnvironmentId, r: &CloneRequest) -> EnvironmentId;
                write delete_environment(e: &EnvironmentId) -> ();
                read image_source_ready(i: &ImageRef) -> ();
                write start_cluster(c: &ClusterId) -> ();
                write set_service_scale(e: &EnvironmentId, s: &ServiceId, x: &ServiceScale) -> ();
            }
        }
    };
}

macro_rules! dns_switcher_methods {
    ($emit:ident ! ( $($args:tt)* )) => {
        $emit! { ($($args)*) DnsSwitcher, "dns";
            sync {
                fn name() -> &str;
                fn capabilities() -> DnsCapabilities;
                fn capabilities_for(r: &DnsRecordId) -> DnsCapabilities;
                fn planes() -> crate::stability::Planes;
                fn planes_for(r: &DnsRecordId) -> crate::stability::Planes;
            }
            async {
                read current(r: &DnsRecordId) -> DnsRecordState;
                write switch(r: &SwitchRequest) -> ChangeId;
                read change_status(c: &ChangeId) -> ChangeStatus;
                read target_health(t: &DnsTarget) -> TargetHealth;
                read failover_epoch(r: &DnsRecordId) -> Option<u64>;
                write publish_failover_epoch(r: &DnsRecordId, e: &FailoverEpoch) -> ChangeId;
            }
        }
    };
}

macro_rules! replication_manager_methods {
    ($emit:ident ! ( $($args:tt)* )) => {
        $emit! { ($($args)*) ReplicationManager, "replication";
            sync {
                fn name() -> &str;
                fn capabilities() -> ReplicationCapabilities;
                fn planes() -> crate::stability::Planes;
                fn planes_for(d: &DatabaseId) -> crate::stability::Planes;
            }
            async {
                read status(d: &DatabaseId) -> ReplicationStatus;
                read primary_writability(d: &DatabaseId) -> Writability;
                write fence_primary(d: &DatabaseId) -> FenceOutcome;
                read wait_for_catch_up(d: &DatabaseId, c: &CatchUp) -> Lsn;
                write promote_standby(d: &DatabaseId) -> PromoteOutcome;
                read promotion_state(d: &DatabaseId) -> PromotionState;
                write post_promotion_fixups(d: &DatabaseId, s: &PromotionState) -> FixupReport;
                write write_heartbeat(d: &DatabaseId) -> Heartbeat;
                read last_heartbeat(d: &DatabaseId, n: Node) -> Option<Heartbeat>;
                write reprotect(d: &DatabaseId) -> ReprotectReport;
                read failover_epoch(d: &DatabaseId, n: Node) -> Option<FailoverEpoch>;
                write record_failover_epoch(d: &DatabaseId, e: &FailoverEpoch) -> ();
            }
        }
    };
}

macro_rules! registry_sync_methods {
    ($emit:ident ! ( $($args:tt)* )) => {
        $emit! { ($($args)*) RegistrySync, "registry";
            sync {
                fn name() -> &str;
                fn capabilities() -> RegistryCapabilities;
                fn planes() -> crate::stability::Planes;
                fn remap(i: &ImageRef) -> ProviderResult<ImageRef>;
            }
            async {
                read parity(i: &ImageRef) -> ImageParity;
                write copy(i: &ImageRef) -> CopyReport;
                write copy_all(i: &[ImageRef]) -> Vec<ImageCopy>;
            }
        }
    };
}

/// `impl Trait for $wrapper<T>` forwarding every method to `T` (for `Arc` and `Box`).
macro_rules! emit_forwarding {
    (
        ($wrapper:ident) $Trait:ident, $family:literal;
        sync { $( fn $sfn:ident ( $($sarg:ident : $sty:ty),* ) -> $sret:ty; )* }
        async { $( $kind:ident $afn:ident ( $($aarg:ident : $aty:ty),* ) -> $aret:ty; )* }
    ) => {
        #[async_trait::async_trait]
        impl<T: $Trait + ?Sized> $Trait for $wrapper<T> {
            $(
                fn $sfn(&self $(, $sarg: $sty)*) -> $sret {
                    (**self).$sfn($($sarg),*)
                }
            )*
            $(
                async fn $afn(&self $(, $aarg: $aty)*) -> $crate::ProviderResult<$aret> {
                    (**self).$afn($($aarg),*).await
                }
            )*
        }
    };
}

/// `impl Trait for Layered<P, L>`: each async method goes through the layer, described
/// by a [`CallInfo`](super::CallInfo).
macro_rules! emit_layered {
    (
        () $Trait:ident, $family:literal;
        sync { $( fn $sfn:ident ( $($sarg:ident : $sty:ty),* ) -> $sret:ty; )* }
        async { $( $kind:ident $afn:ident ( $($aarg:ident : $aty:ty),* ) -> $aret:ty; )* }
    ) => {
        #[async_trait::async_trait]
        impl<P: $Trait, L: Layer + 'static> $Trait for Layered<P, L> {
            $(
                fn $sfn(&self $(, $sarg: $sty)*) -> $sret {
                    self.inner.$sfn($($sarg),*)
                }
            )*
            $(
                async fn $afn(&self $(, $aarg: $aty)*) -> $crate::ProviderResult<$aret> {
                    let call = CallInfo {
                        provider: self.inner.name(),
                        operation: concat!($family, ".", stringify!($afn)),
                        mutating: emit_layered!(@mutating $kind),
                        args: &($($aarg,)*),
                    };
                    let next = || {
                        let attempt: CallFuture<'_, $aret> = Box::pin(self.inner.$afn($($aarg),*));
                        attempt
                    };
                    self.layer.around(&call, &next).await
                }
            )*
        }
    };
    (@mutating read) => { false };
    (@mutating write) => { true };
}

/// `with_*` setters for a struct providers build (a `#[non_exhaustive]` struct cannot be
/// built with a literal outside this crate): `set` fields take their type, `some`
/// fields (`Option<T>`) take a `T` or an `Option<T>`.
macro_rules! with_setters {
    (
        $ty:ident {
            $(set { $($with:ident => $field:ident : $fty:ty),* $(,)? })?
            $(some { $($with_some:ident => $field_some:ident : $fty_some:ty),* $(,)? })?
        }
    ) => {
        impl $ty {
            $($(
                #[doc = concat!("The same value with [`", stringify!($field), "`](Self::", stringify!($field), ") set.")]
                #[must_use]
                pub fn $with(mut self, value: $fty) -> Self {
                    self.$field = value;
                    self
                }
            )*)?
            $($(
                #[doc = concat!("The same value with [`", stringify!($field_some), "`](Self::", stringify!($field_some), ") set.")]
                #[must_use]
                pub fn $with_some(mut self, value: impl Into<Option<$fty_some>>) -> Self {
                    self.$field_some = value.into();
                    self
                }
            )*)?
        }
    };
}
