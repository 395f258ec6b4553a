//! Replacing a value already reported as invalid, so that loading can go on and
//! report the plan's other problems in the same pass.

use serde_json::Value;
use serde_path_to_error::Segment;

use super::fields::invalid_marker;

/// Changes `root` so that the error at `path` does not happen again: an unknown
/// field is removed, a missing field is set to the marker, any other value is
/// replaced by the marker. Returns false when the path cannot be followed.
pub(crate) fn repair(root: &mut Value, path: &[Segment], message: &str) -> bool {
    if let Some(name) = quoted_after(message, "unknown field `") {
        // The path may or may not end with the unknown key itself.
        if let Some(Value::Object(map)) = follow(root, path)
            && map.remove(&name).is_some()
        {
            return true;
        }
        return match path.split_last() {
            Some((Segment::Map { key }, parent)) if key == &name => match follow(root, parent) {
                Some(Value::Object(map)) => map.remove(&name).is_some(),
                _ => false,
            },
            _ => false,
        };
    }
    if let Some(name) = quoted_after(message, "missing field `") {
        return match follow(root, path) {
            Some(Value::Object(map)) if !map.contains_key(&name) => {
                map.insert(name, invalid_marker());
                true
            }
            _ => false,
        };
    }
    match follow(root, path) {
        Some(slot) if *slot != invalid_marker() => {
            *slot = invalid_marker();
            true
        }
        _ => false,
    }
}

/// The text between `prefix` and the next backtick.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_owned())
}

fn follow<'a>(root: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    let mut at = root;
    for segment in path {
        at = match segment {
            Segment::Map { key } => at.as_object_mut()?.get_mut(key)?,
            Segment::Seq { index } => at.as_array_mut()?.get_mut(*index)?,
            Segment::Enum { .. } => at,
            Segment::Unknown => return None,
        };
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removes_unknown_fields_fills_missing_ones_and_marks_bad_values() {
        let mut v = json!({"a": {"b": 1, "zzz": 2}, "list": [1, "x"]});
        let at = |k: &str| Segment::Map { key: k.to_owned() };
        assert!(repair(&mut v, &[at("a")], "unknown field `zzz`, expected `b`"));
        assert_eq!(v["a"], json!({"b": 1}));
        assert!(repair(&mut v, &[at("a")], "missing field `c`"));
        assert_eq!(v["a"]["c"], invalid_marker());
        assert!(repair(&mut v, &[at("list"), Segment::Seq { index: 1 }], "expected an integer"));
        assert_eq!(v["list"][1], invalid_marker());
        // Already the marker: no progress possible, stop.
        assert!(!repair(&mut v, &[at("list"), Segment::Seq { index: 1 }], "expected an integer"));
        assert!(!repair(&mut v, &[at("nope"), at("deeper")], "expected a string"));
    }
}
