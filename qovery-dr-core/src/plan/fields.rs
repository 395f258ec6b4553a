//! Scalar field types whose deserialisation errors say what was expected and what was found.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::model::SecretRef;

/// The key of the marker object that replaces a value already reported as invalid, so
/// that loading can go on and report every other problem too (see `DrPlan::from_value`).
pub(crate) const INVALID: &str = "$qdr_already_reported";

/// The marker that replaces an invalid value.
pub(crate) fn invalid_marker() -> serde_json::Value {
    serde_json::json!({ INVALID: true })
}

fn is_marker(v: &serde_json::Value) -> bool {
    v.get(INVALID).is_some()
}

fn describe(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Null => "nothing".to_owned(),
        other => other.to_string(),
    }
}

/// A TCP port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if is_marker(&v) {
            return Ok(Port(1));
        }
        v.as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(Port)
            .ok_or_else(|| D::Error::custom(format!("expected an integer 1-65535, got {}", describe(&v))))
    }
}

/// A DNS TTL in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TtlSeconds(pub Duration);

impl<'de> Deserialize<'de> for TtlSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if is_marker(&v) {
            return Ok(TtlSeconds(Duration::ZERO));
        }
        v.as_u64().filter(|n| *n <= 2_147_483_647).map(|n| TtlSeconds(Duration::from_secs(n))).ok_or_else(|| {
            D::Error::custom(format!(
                "expected a TTL as an integer number of seconds 0-2147483647, got {}",
                describe(&v)
            ))
        })
    }
}

/// A duration written like `15m`, `1h 30m`, `250ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if is_marker(&v) {
            return Ok(HumanDuration(Duration::from_secs(1)));
        }
        v.as_str().and_then(|s| humantime::parse_duration(s).ok()).map(HumanDuration).ok_or_else(|| {
            D::Error::custom(format!("expected a duration like \"15m\", \"1h 30m\" or \"30s\", got {}", describe(&v)))
        })
    }
}

/// A secret reference; an inline secret is refused without being echoed.
#[derive(Debug, Clone)]
pub(crate) struct SecretField(pub SecretRef);

impl<'de> Deserialize<'de> for SecretField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if is_marker(&v) {
            return Ok(SecretField(SecretRef::Env("ALREADY_REPORTED".to_owned())));
        }
        match v.as_str() {
            Some(s) => s.parse().map(SecretField).map_err(D::Error::custom),
            None => Err(D::Error::custom(format!(
                "expected a secret reference string `env:NAME` or `file:PATH`, got {}",
                if v.is_number() || v.is_boolean() {
                    "a non-string value (not shown)".to_owned()
                } else {
                    describe(&v)
                }
            ))),
        }
    }
}

/// A non-empty trimmed string.
#[derive(Debug, Clone)]
pub(crate) struct NonEmpty(pub String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if is_marker(&v) {
            return Ok(NonEmpty("already-reported".to_owned()));
        }
        match v.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(NonEmpty(s.trim().to_owned())),
            _ => Err(D::Error::custom(format!("expected a non-empty string, got {}", describe(&v)))),
        }
    }
}

/// A leaf value of a type with its own `Deserialize` (an enum, a flag): `None`
/// when it was invalid and already reported, so rules that depend on it are skipped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Choice<T>(pub Option<T>);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if is_marker(&v) {
            return Ok(Choice(None));
        }
        serde_json::from_value(v).map(|t| Choice(Some(t))).map_err(D::Error::custom)
    }
}
