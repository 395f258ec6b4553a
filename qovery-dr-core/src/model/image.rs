//! Container image references, following the Docker reference grammar
//! (`distribution/reference`): `[registry[:port]/]path[:tag][@digest]`.

use std::fmt;
use std::str::FromStr;

/// The registry Docker uses when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why an image reference or digest could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRefError {
    /// The reference is empty.
    #[error("image reference is empty")]
    Empty,
    /// The registry host (or its port) is malformed.
    #[error("invalid registry host {host:?} in image reference {input:?}: expected a hostname with an optional :port")]
    InvalidRegistry {
        /// The whole input.
        input: String,
        /// The offending host part.
        host: String,
    },
    /// A repository path component breaks the grammar.
    #[error(
        "invalid repository path component {component:?} in image reference {input:?}: expected lowercase letters, digits and separators (., _, __, -) between them"
    )]
    InvalidPathComponent {
        /// The whole input.
        input: String,
        /// The offending component.
        component: String,
    },
    /// The repository name is longer than 255 characters.
    #[error("repository name in image reference {input:?} is {len} characters long; the maximum is 255")]
    NameTooLong {
        /// The whole input.
        input: String,
        /// Its length.
        len: usize,
    },
    /// The tag breaks the grammar.
    #[error(
        "invalid tag {tag:?} in image reference {input:?}: expected 1-128 of [A-Za-z0-9_.-], not starting with . or -"
    )]
    InvalidTag {
        /// The whole input.
        input: String,
        /// The offending tag.
        tag: String,
    },
    /// The digest breaks the grammar.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The offending digest.
        digest: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A content digest such as `sha256:…` (64 lowercase hex digits for sha256).
///
/// ```
/// use qovery_dr_core::Digest;
/// let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
/// assert_eq!(d.algorithm(), "sha256");
/// assert!("sha256:abc".parse::<Digest>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    algorithm: String,
    hex: String,
}

impl Digest {
    /// The `sha256:` digest of a 32-byte hash (infallible).
    pub fn from_sha256(hash: [u8; 32]) -> Self {
        let hex = hash.iter().map(|b| format!("{b:02x}")).collect();
        Self { algorithm: "sha256".to_owned(), hex }
    }

    /// The algorithm part (`sha256`).
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The encoded part (lowercase hex for sha256/sha512).
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ImageRefError::InvalidDigest { digest: s.to_owned(), reason };
        let (algorithm, hex) = s.split_once(':').ok_or_else(|| err("expected <algorithm>:<hex>"))?;
        let alg_ok = !algorithm.is_empty()
            && algorithm
                .split(['+', '.', '_', '-'])
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if !alg_ok {
            return Err(err("the algorithm must be lowercase alphanumeric (e.g. sha256)"));
        }
        let expected_len = match algorithm {
            "sha256" => Some(64),
            "sha512" => Some(128),
            _ => None,
        };
        match expected_len {
            Some(n) if hex.len() != n => {
                return Err(err(if n == 64 {
                    "a sha256 digest has exactly 64 hex digits"
                } else {
                    "a sha512 digest has exactly 128 hex digits"
                }));
            }
            None if hex.len() < 32 => {
                return Err(err("the encoded part must be at least 32 characters"));
            }
            _ => {}
        }
        if expected_len.is_some() && !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(err("the encoded part must be lowercase hex"));
        }
        if !hex.bytes().all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b)) {
            return Err(err("the encoded part has characters outside [a-zA-Z0-9=_-]"));
        }
        Ok(Self { algorithm: algorithm.to_owned(), hex: hex.to_owned() })
    }
}

impl TryFrom<String> for Digest {
    type Error = ImageRefError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// A parsed, normalised container image reference.
///
/// Normalisation follows Docker: a reference without a registry is on
/// `docker.io`, and a single-component Docker Hub repository is under
/// `library/`. [`Display`](fmt::Display) prints the fully-qualified form, which
/// parses back to the same value.
///
/// ```
/// use qovery_dr_core::ImageRef;
/// let img: ImageRef = "nginx:1.27".parse().unwrap();
/// assert_eq!(img.registry(), "docker.io");
/// assert_eq!(img.repository(), "library/nginx");
/// assert_eq!(img.to_string(), "docker.io/library/nginx:1.27");
///
/// let ecr: ImageRef = "123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/api:v42".parse().unwrap();
/// let dr = ecr.with_registry("123456789012.dkr.ecr.eu-central-1.amazonaws.com").unwrap();
/// assert_eq!(dr.to_string(), "123456789012.dkr.ecr.eu-central-1.amazonaws.com/shop/api:v42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// The registry host, with its port if any (e.g. `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (e.g. `library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What a registry is asked for: the digest if pinned, else the tag, else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same image in another registry (same repository, tag and digest).
    pub fn with_registry(&self, registry: &str) -> Result<Self, ImageRefError> {
        let input = format!("{registry}/{}", self.repository);
        validate_registry(registry, &input)?;
        Ok(Self { registry: registry.to_owned(), ..self.clone() })
    }

    /// The same image under another repository path (same registry, tag and digest).
    pub fn with_repository(&self, repository: &str) -> Result<Self, ImageRefError> {
        let input = format!("{}/{repository}", self.registry);
        validate_path(repository, &input)?;
        Ok(Self { repository: repository.to_owned(), ..self.clone() })
    }

    /// The same image pinned to `digest`.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self { digest: Some(digest), ..self.clone() }
    }

    /// The short form Docker prints (`nginx:1.27` rather than `docker.io/library/nginx:1.27`).
    pub fn familiar(&self) -> String {
        let mut out = if self.registry == DEFAULT_REGISTRY {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_owned()
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        push_suffix(&mut out, self.tag.as_deref(), self.digest.as_ref());
        out
    }
}

fn push_suffix(out: &mut String, tag: Option<&str>, digest: Option<&Digest>) {
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(&d.to_string());
    }
}

fn is_domain_like(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.starts_with('[')
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn validate_registry(host: &str, input: &str) -> Result<(), ImageRefError> {
    let err = || ImageRefError::InvalidRegistry { input: input.to_owned(), host: host.to_owned() };
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: [addr]:port
        let (addr, after) = rest.split_once(']').ok_or_else(err)?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(err());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(err)?),
        };
        (None, port)
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if p.parse::<u32>().map_or(true, |n| n == 0 || n > 65535) {
            return Err(err());
        }
    }
    if let Some(name) = name {
        let ok = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(err());
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    // alnum ( (\.|_|__|-+) alnum )*  with lowercase letters
    let bytes = c.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_alnum(b) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn validate_path(path: &str, input: &str) -> Result<(), ImageRefError> {
    for component in path.split('/') {
        if !valid_component(component) {
            return Err(ImageRefError::InvalidPathComponent {
                input: input.to_owned(),
                component: component.to_owned(),
            });
        }
    }
    Ok(())
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>()?)),
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(ImageRefError::InvalidTag { input: input.to_owned(), tag: tag.to_owned() });
                }
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, remainder)) if is_domain_like(first) => (first.to_owned(), remainder.to_owned()),
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        validate_registry(&registry, input)?;
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY.to_owned()
        } else {
            registry
        };
        validate_path(&path, input)?;
        let repository =
            if registry == DEFAULT_REGISTRY && !path.contains('/') { format!("library/{path}") } else { path };
        let full_len = registry.len() + 1 + repository.len();
        if full_len > MAX_NAME_LEN {
            return Err(ImageRefError::NameTooLong { input: input.to_owned(), len: full_len });
        }
        Ok(Self { registry, repository, tag, digest })
    }
}

impl TryFrom<String> for ImageRef {
    type Error = ImageRefError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ImageRef> for String {
    fn from(value: ImageRef) -> Self {
        value.to_string()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = format!("{}/{}", self.registry, self.repository);
        push_suffix(&mut out, self.tag.as_deref(), self.digest.as_ref());
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn p(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    #[test]
    fn docker_hub_normalisation() {
        assert_eq!(p("nginx").to_string(), "docker.io/library/nginx");
        assert_eq!(p("nginx").reference(), "latest");
        assert_eq!(p("bitnami/redis:7").repository(), "bitnami/redis");
        assert_eq!(p("docker.io/nginx:1").repository(), "library/nginx");
        assert_eq!(p("index.docker.io/library/nginx").registry(), "docker.io");
        assert_eq!(p("docker.io/library/nginx:1").familiar(), "nginx:1");
    }

    #[test]
    fn registries_with_ports_and_nested_paths() {
        let r = p("localhost:5000/team/app/api:v1.2-rc_3");
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "team/app/api");
        assert_eq!(r.tag(), Some("v1.2-rc_3"));
        let r = p("rg.fr-par.scw.cloud/ns/app");
        assert_eq!(r.registry(), "rg.fr-par.scw.cloud");
        let r = p(&format!("ghcr.io/o/r:t@{D}"));
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.reference(), D);
        let r = p("[::1]:5000/app:1");
        assert_eq!(r.registry(), "[::1]:5000");
        let r = p("localhost/app");
        assert_eq!(r.registry(), "localhost");
    }

    #[test]
    fn clear_errors() {
        assert_eq!("".parse::<ImageRef>(), Err(ImageRefError::Empty));
        let e = "Nginx".parse::<ImageRef>().unwrap_err().to_string();
        assert!(e.contains("\"Nginx\""), "{e}");
        let e = "app:-bad".parse::<ImageRef>().unwrap_err();
        assert!(matches!(e, ImageRefError::InvalidTag { .. }), "{e}");
        let e = "host:99999/app".parse::<ImageRef>().unwrap_err();
        assert!(matches!(e, ImageRefError::InvalidRegistry { .. }), "{e}");
        let e = "app@sha256:abc".parse::<ImageRef>().unwrap_err();
        assert!(e.to_string().contains("64 hex"), "{e}");
        let e = "a//b".parse::<ImageRef>().unwrap_err();
        assert!(matches!(e, ImageRefError::InvalidPathComponent { .. }), "{e}");
        let e = "a--__b".parse::<ImageRef>().unwrap_err();
        assert!(matches!(e, ImageRefError::InvalidPathComponent { .. }), "{e}");
        let long = format!("r.io/{}", "a".repeat(260));
        assert!(matches!(long.parse::<ImageRef>(), Err(ImageRefError::NameTooLong { .. })));
        let e = format!("app:{}", "t".repeat(129)).parse::<ImageRef>().unwrap_err();
        assert!(matches!(e, ImageRefError::InvalidTag { .. }));
    }

    #[test]
    fn separators() {
        assert!(p("a__b/c.d/e-f/g---h").repository() == "a__b/c.d/e-f/g---h");
        assert!("a___b".parse::<ImageRef>().is_err());
        assert!("a..b".parse::<ImageRef>().is_err());
        assert!("-a".parse::<ImageRef>().is_err());
    }

    #[test]
    fn remap_keeps_everything_but_the_registry() {
        let r = p(&format!("r1.io/team/api:v3@{D}"));
        let m = r.with_registry("r2.io:443").unwrap();
        assert_eq!(m.to_string(), format!("r2.io:443/team/api:v3@{D}"));
        assert!(r.with_registry("bad host").is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}((\\.|_|__|-{1,2})[a-z0-9]{1,4}){0,2}"
    }

    prop_compose! {
        fn image_ref()(
            registry in prop::option::of("[a-z][a-z0-9]{0,6}(\\.[a-z]{2,4}){1,2}(:[1-9][0-9]{0,3})?"),
            path in prop::collection::vec(component(), 1..4),
            tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in prop::option::of("[0-9a-f]{64}"),
        ) -> String {
            let mut s = String::new();
            let mut path = path;
            match registry {
                Some(r) => { s.push_str(&r); s.push('/'); }
                // Without a registry, a first component with a '.' would be read as a host.
                None => path[0] = path[0].replace('.', "_"),
            }
            s.push_str(&path.join("/"));
            if let Some(t) = tag { s.push(':'); s.push_str(&t); }
            if let Some(d) = digest { s.push_str("@sha256:"); s.push_str(&d); }
            s
        }
    }

    proptest! {
        #[test]
        fn parse_display_round_trips(s in image_ref()) {
            let parsed: ImageRef = s.parse().unwrap();
            let shown = parsed.to_string();
            let reparsed: ImageRef = shown.parse().unwrap();
            prop_assert_eq!(&reparsed, &parsed);
            // the familiar form also denotes the same image
            let familiar: ImageRef = parsed.familiar().parse().unwrap();
            prop_assert_eq!(familiar, parsed);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<ImageRef>();
        }

        #[test]
        fn serde_round_trips(s in image_ref()) {
            let parsed: ImageRef = s.parse().unwrap();
            let json = serde_json::to_string(&parsed).unwrap();
            let back: ImageRef = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, parsed);
        }
    }
}
