//! Look-ups shared by the commands: paging through collections, distribution sets by id or
//! NAME:VERSION.

use serde_json::Value;

use crate::api::{Api, ApiError, encode_query};
use crate::error::Failure;

/// hawkBit's largest page.
const PAGE: usize = 500;

/// Every item of a collection (`{"content": [...], "total": N}`), page by page. `path` may carry a
/// query already. Plain arrays (a few list endpoints) are returned as they are.
pub fn all(api: &Api, path: &str) -> Result<Vec<Value>, Failure> {
    Ok(pages(api, path, usize::MAX)?)
}

/// [`all`], stopping once `cap` items are in (a page may take it past `cap`).
pub fn pages(api: &Api, path: &str, cap: usize) -> Result<Vec<Value>, ApiError> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    loop {
        let page = api.get(&format!("{path}{sep}offset={}&limit={PAGE}", out.len()))?;
        if let Value::Array(items) = page {
            out.extend(items);
            return Ok(out);
        }
        let items = page
            .get("content")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = page
            .get("total")
            .and_then(Value::as_u64)
            .map_or(usize::MAX, |t| usize::try_from(t).unwrap_or(usize::MAX));
        let n = items.len();
        out.extend(items);
        if n == 0 || out.len() >= total || out.len() >= cap {
            return Ok(out);
        }
    }
}

/// A FIQL term `field==value`, the value quoted when it holds FIQL syntax characters. A value
/// with both quote characters gets `*` (any sequence) in place of its double quotes: callers
/// compare the answers exactly anyway.
pub fn fiql_eq(field: &str, value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '~' | ':'))
    {
        format!("{field}=={value}")
    } else if !value.contains('"') {
        format!("{field}==\"{value}\"")
    } else if !value.contains('\'') {
        format!("{field}=='{value}'")
    } else {
        format!("{field}==\"{}\"", value.replace('"', "*"))
    }
}

/// Items of `collection` whose `name` and `version` are exactly these (the FIQL query narrows it
/// on the server; the exact comparison here makes wildcards in names harmless).
pub fn by_name_version(
    api: &Api,
    collection: &str,
    name: &str,
    version: &str,
) -> Result<Vec<Value>, Failure> {
    let q = format!("{};{}", fiql_eq("name", name), fiql_eq("version", version));
    let items = all(api, &format!("{collection}?q={}", encode_query(&q)))?;
    Ok(items
        .into_iter()
        .filter(|v| str_of(v, "name") == name && str_of(v, "version") == version)
        .collect())
}

/// A string field, or "".
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A numeric id field.
pub fn id_of(v: &Value, what: &str) -> Result<u64, Failure> {
    v.get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| Failure::Other(format!("hawkBit's answer for the {what} has no numeric id")))
}

/// A distribution set given as its id or as NAME:VERSION (the last `:` splits, so names may hold
/// colons). An unknown id is hawkBit's own 404.
pub fn distribution_set(api: &Api, spec: &str) -> Result<Value, Failure> {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(api.get(&format!("/distributionsets/{spec}"))?);
    }
    let Some((name, version)) = spec
        .rsplit_once(':')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
    else {
        return Err(Failure::Usage(format!(
            "distribution set {spec:?}: give its id or NAME:VERSION"
        )));
    };
    let mut found = by_name_version(api, "/distributionsets", name, version)?;
    match found.len() {
        0 => Err(Failure::Other(format!(
            "no distribution set {name}:{version} on the server (eyasctl publish creates it)"
        ))),
        _ => Ok(found.swap_remove(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiql_values_are_quoted_when_needed() {
        assert_eq!(fiql_eq("name", "rootfs"), "name==rootfs");
        assert_eq!(fiql_eq("version", "1.2.0-rc1"), "version==1.2.0-rc1");
        assert_eq!(fiql_eq("name", "my fw;x"), "name==\"my fw;x\"");
        assert_eq!(fiql_eq("name", "a\"b"), "name=='a\"b'");
        assert_eq!(fiql_eq("name", "a\"'b"), "name==\"a*'b\"");
    }
}
