//! Listing a registry: its repositories (`/v2/_catalog`) and a repository's tags
//! (`/v2/<name>/tags/list`), page by page through `Link: <…>; rel="next"` headers, with
//! the same authentication (bearer-token flow included) as the sync.

use reqwest::Method;
use serde::Deserialize;

use qovery_dr_core::{ErrorKind, ImageRef, ProviderResult};

use super::client::{Registry, err};
use super::sync::{OciRegistrySync, SyncReport};

/// A bound on pages, against a registry whose `Link` never ends.
const MAX_PAGES: usize = 10_000;

#[derive(Debug, Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The `rel="next"` target of a `Link` header: `</v2/_catalog?last=x&n=100>; rel="next"`.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let rel_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        rel_next.then(|| target.to_owned())
    })
}

/// Every page of a listing starting at `path`, each decoded by `decode` into names.
async fn pages(
    reg: &Registry,
    op: &str,
    scope: &str,
    path: String,
    decode: impl Fn(&[u8]) -> Result<Vec<String>, serde_json::Error>,
) -> ProviderResult<Vec<String>> {
    let mut out = Vec::new();
    let mut next = Some(path);
    for _ in 0..MAX_PAGES {
        let Some(path) = next.take() else { return Ok(out) };
        let make = reg.request(Method::GET, &path)?;
        let resp = reg.send(op, scope, make).await?;
        if !resp.status().is_success() {
            return Err(reg.refused(op, resp).await);
        }
        next = resp.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
        let body = crate::http::body(resp, 16 * 1024 * 1024)
            .await
            .map_err(|e| reg.name(err(ErrorKind::Transient, op, format!("listing: {e}")), Some(&path)))?;
        let names = decode(&body).map_err(|e| {
            reg.name(err(ErrorKind::Transient, op, format!("listing: unexpected answer ({e})")), Some(&path))
        })?;
        out.extend(names);
    }
    Err(reg.name(err(ErrorKind::Transient, op, format!("listing: more than {MAX_PAGES} pages")), None))
}

impl OciRegistrySync {
    /// The source registry's repositories whose name starts with `prefix` (all with
    /// `""`), from its catalog, every page.
    ///
    /// Docker Hub and GHCR do not serve the catalog (they refuse it): name the
    /// repositories yourself and list their tags with [`list_tags`](Self::list_tags).
    pub async fn list_repositories(&self, prefix: &str) -> ProviderResult<Vec<String>> {
        const OP: &str = "list";
        let reg = self.source_registry();
        let mut names =
            pages(reg, OP, "registry:catalog:*", format!("/v2/_catalog?n={}", self.list_page_size()), |b| {
                serde_json::from_slice::<Catalog>(b).map(|c| c.repositories)
            })
            .await?;
        names.retain(|n| n.starts_with(prefix));
        Ok(names)
    }

    /// The tags of `repository` in the source registry, every page (empty when it has none).
    pub async fn list_tags(&self, repository: &str) -> ProviderResult<Vec<String>> {
        const OP: &str = "list";
        let reg = self.source_registry();
        let scope = format!("repository:{repository}:pull");
        pages(reg, OP, &scope, format!("/v2/{repository}/tags/list?n={}", self.list_page_size()), |b| {
            serde_json::from_slice::<Tags>(b).map(|t| t.tags.unwrap_or_default())
        })
        .await
    }

    /// Syncs every tag of every source repository under `prefix` (the mapping's source
    /// prefix if you pass it): listing, then one [`sync_all`](Self::sync_all).
    pub async fn sync_prefix(&self, prefix: &str) -> ProviderResult<SyncReport> {
        let host = self.source_host();
        let mut images = Vec::new();
        for repository in self.list_repositories(prefix).await? {
            for tag in self.list_tags(&repository).await? {
                let image: ImageRef = format!("{host}/{repository}:{tag}").parse().map_err(|e| {
                    err(
                        ErrorKind::InvalidInput,
                        "list",
                        format!("{host}/{repository}:{tag} is not an image reference: {e}"),
                    )
                })?;
                images.push(image);
            }
        }
        self.sync_all(&images).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        assert_eq!(next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        assert_eq!(
            next_link(
                r#"<https://r.example/v2/x/tags/list?last=v9>; rel="prev", </v2/x/tags/list?last=v2>; rel="next""#
            )
            .as_deref(),
            Some("/v2/x/tags/list?last=v2")
        );
        assert_eq!(next_link(r#"</v2/_catalog?last=b>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
