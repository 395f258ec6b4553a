//! Terraform (or OpenTofu) outputs as plan values: where they are read from
//! ([`TerraformSource`]), what `terraform output -json` says ([`TerraformOutputs`]), the
//! `tf:SOURCE/OUTPUT` references a plan field may hold ([`OutputRef`]), drift between a
//! plan and the outputs now ([`TerraformDrift`]), and the `.tfvars` a DR site's Terraform
//! needs from a plan ([`site_tfvars`]).
//!
//! Outputs are read with the CLI the team already has (`terraform`, or `tofu`, which
//! takes the same commands): `terraform -chdir=DIR output -json`, with `TF_WORKSPACE` for
//! a workspace and `-state=FILE` for a local state file. Reading needs the cargo feature
//! `terraform` (on by default).
//!
//! ```
//! use qovery_dr_core::terraform::{OutputRef, TerraformOutputs};
//! let outputs = TerraformOutputs::parse(r#"{
//!   "database": {"sensitive": false, "type": ["object", {"host": "string"}], "value": {"host": "db.dr.internal"}},
//!   "db_password": {"sensitive": true, "type": "string", "value": "hunter2"}
//! }"#).unwrap();
//! let r: OutputRef = "tf:dr/database.host".parse().unwrap();
//! assert_eq!(r.source, "dr");
//! assert_eq!(outputs.lookup(&r).unwrap().as_str(), Some("db.dr.internal"));
//! assert!(outputs.get("db_password").unwrap().sensitive);
//! assert!(!format!("{outputs:?}").contains("hunter2"), "Debug never shows a value");
//! ```

#[cfg(feature = "terraform")]
mod cli;
mod drift;
mod outputs;
mod reference;
mod source;
mod tfvars;

#[cfg(feature = "terraform")]
pub use cli::read_outputs;
pub(crate) use drift::compare as compare_bindings;
pub use drift::{DriftReport, TerraformBinding, TerraformDrift, is_failover_critical};
pub use outputs::{TerraformOutput, TerraformOutputs};
pub use reference::OutputRef;
pub use source::{TerraformError, TerraformSource};
pub use tfvars::site_tfvars;
