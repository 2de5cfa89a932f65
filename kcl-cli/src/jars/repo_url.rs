//! HTTP(S) repository URLs: credentials are taken out of the URL, never displayed, never sent
//! over plain `http://` to another machine unless asked for, and never sent to another host or
//! port after a redirect. Redirects are resolved here (`kcl` follows them by hand), and an
//! `https://` repository is never redirected to `http://`.

use std::fmt;

use base64::Engine;

use crate::error::{Error, Result};

/// At most this many redirects are followed per download.
pub(super) const MAX_REDIRECTS: usize = 10;

/// A user name and password for HTTP Basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Credentials {
    /// The user name.
    pub username: String,
    /// The password (never displayed).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.username)
    }
}

impl Credentials {
    /// The credentials of `KCL_MAVEN_USERNAME` / `KCL_MAVEN_PASSWORD`, if either is set.
    pub(super) fn from_env() -> Option<Credentials> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (username, password) = (var("KCL_MAVEN_USERNAME"), var("KCL_MAVEN_PASSWORD"));
        if username.is_none() && password.is_none() {
            return None;
        }
        Some(Credentials {
            username: username.unwrap_or_default(),
            password: password.unwrap_or_default(),
        })
    }

    /// The `Authorization` header value.
    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// An `http://` or `https://` URL split into its parts (the fragment dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Parts<'a> {
    /// `http` or `https`, lower-case.
    scheme: String,
    /// `user:password` (still percent-encoded), if any.
    userinfo: Option<&'a str>,
    /// The host as written (IPv6 in brackets), lower-cased.
    host: String,
    /// The port, or the scheme's default.
    port: u16,
    /// Whether the URL named the port.
    explicit_port: bool,
    /// Path and query, starting with `/` (or empty).
    rest: &'a str,
}

impl<'a> Parts<'a> {
    /// Splits `url`; `None` if it is not an `http(s)://` URL with a host and a valid port.
    fn split(url: &'a str) -> Option<Parts<'a>> {
        let (scheme, after) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let rest = rest.split('#').next().unwrap_or("");
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = if host_port.starts_with('[') {
            let close = host_port.find(']')?;
            let (host, tail) = host_port.split_at(close + 1);
            match tail {
                "" => (host, None),
                tail => (host, Some(tail.strip_prefix(':')?)),
            }
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            None | Some("") => None,
            Some(port) => Some(port.parse::<u16>().ok()?),
        };
        Some(Parts {
            scheme,
            userinfo,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default_port),
            explicit_port: port.is_some(),
            rest,
        })
    }

    /// `scheme://host[:port]` (no credentials).
    fn origin(&self) -> String {
        if self.explicit_port {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        } else {
            format!("{}://{}", self.scheme, self.host)
        }
    }

    /// The URL without its credentials.
    fn clean(&self) -> String {
        format!("{}{}", self.origin(), self.rest)
    }

    /// Whether the host is this machine (see [`crate::host::is_loopback`]).
    fn is_loopback(&self) -> bool {
        crate::host::is_loopback(&self.host)
    }
}

/// `url` with any password replaced by `***` (`https://deploy:***@host/...`; a user name alone
/// may be a token, so it becomes `***@host`). Text that is not a URL is returned unchanged.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, after)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    match authority.rsplit_once('@') {
        None => url.to_string(),
        Some((userinfo, host)) => {
            format!("{scheme}://{}@{host}{rest}", redact_userinfo(userinfo))
        }
    }
}

/// `user:***`, or `***` for a user name alone (it may be a token).
fn redact_userinfo(userinfo: &str) -> String {
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    }
}

/// Decodes `%XX` escapes (user names and passwords in URLs are percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP(S) Maven repository: its base URL without credentials, and the credentials apart.
#[derive(Clone, Debug)]
pub(super) struct Repository {
    /// The base URL without credentials, ending in `/`.
    base: String,
    /// The base URL as displayed (password replaced by `***`).
    shown: String,
    /// The scheme, host and port of the base.
    scheme: String,
    host: String,
    port: u16,
    loopback: bool,
    credentials: Option<Credentials>,
}

impl Repository {
    /// Parses an `http(s)://` repository URL. Credentials come from the URL's `user:password@`
    /// or from `env` (`KCL_MAVEN_USERNAME` / `KCL_MAVEN_PASSWORD`), not both.
    pub(super) fn parse(url: &str, env: Option<Credentials>) -> Result<Repository> {
        let parts = Parts::split(url).ok_or_else(|| {
            Error::usage_hint(
                format!("invalid repository URL {}", redact(url)),
                "expected http(s)://HOST[:PORT]/PATH/",
            )
        })?;
        let mut shown_user = parts.userinfo.map(redact_userinfo);
        let in_url = parts.userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            Credentials {
                username: percent_decode(user),
                password: percent_decode(password),
            }
        });
        let credentials = match (in_url, env) {
            (Some(_), Some(_)) => {
                return Err(Error::usage_hint(
                    format!(
                        "the repository URL {} holds credentials, and so do KCL_MAVEN_USERNAME / KCL_MAVEN_PASSWORD",
                        redact(url)
                    ),
                    "give the credentials one way only (the variables keep them out of the URL)",
                ));
            }
            (in_url, env) => in_url.or(env),
        };
        let mut base = parts.clean();
        if !base.ends_with('/') {
            base.push('/');
        }
        if let (None, Some(credentials)) = (&shown_user, &credentials) {
            shown_user = Some(format!("{}:***", credentials.username));
        }
        let shown = match shown_user {
            Some(user) => base.replacen("://", &format!("://{user}@"), 1),
            None => base.clone(),
        };
        Ok(Repository {
            shown,
            scheme: parts.scheme.clone(),
            host: parts.host.clone(),
            port: parts.port,
            loopback: parts.is_loopback(),
            base,
            credentials,
        })
    }

    /// The base URL as displayed: the password replaced by `***`.
    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether the repository is `https://`.
    pub(super) fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// The URL of `path` under the base (without credentials).
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A URL as displayed: under the base it shows the (redacted) user.
    pub(super) fn show(&self, url: &str) -> String {
        match url.strip_prefix(&self.base) {
            Some(path) => format!("{}{path}", self.shown),
            None => redact(url),
        }
    }

    /// Refuses to send credentials over plain `http://` to another machine, unless
    /// `allow_insecure` (`--allow-insecure-auth`).
    pub(super) fn check_transport(&self, allow_insecure: bool) -> Result<()> {
        let Some(credentials) = &self.credentials else {
            return Ok(());
        };
        if self.is_https() || self.loopback || allow_insecure {
            return Ok(());
        }
        Err(Error::usage_hint(
            format!(
                "refusing to send the password of repository user {} over plain http:// to {} \
                 ({}): anyone on the network path could read it",
                credentials.username, self.host, self.shown
            ),
            "use the repository's https:// URL, or pass --allow-insecure-auth if this network is trusted",
        ))
    }

    /// The `Authorization` header for a request to `url`: only to the repository's own host
    /// and port, and only over its scheme or https.
    pub(super) fn authorization(&self, url: &str) -> Option<String> {
        let credentials = self.credentials.as_ref()?;
        let parts = Parts::split(url)?;
        let same_place = parts.host == self.host && parts.port == self.port;
        let scheme_ok = parts.scheme == self.scheme || parts.scheme == "https";
        (same_place && scheme_ok).then(|| credentials.basic())
    }

    /// The URL a redirect from `current` to `location` leads to (credentials in it dropped), or
    /// why it is not followed: not http(s), or http from an https repository.
    pub(super) fn redirect(
        &self,
        current: &str,
        location: &str,
    ) -> std::result::Result<String, String> {
        let current_parts =
            Parts::split(current).ok_or_else(|| format!("cannot parse {}", redact(current)))?;
        let location = location.trim();
        let target = if location.contains("://") {
            location.to_string()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("{}://{rest}", current_parts.scheme)
        } else if location.starts_with('/') {
            format!("{}{location}", current_parts.origin())
        } else {
            let path = current_parts.rest.split('?').next().unwrap_or("");
            let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            let folder = if folder.is_empty() { "/" } else { folder };
            format!("{}{folder}{location}", current_parts.origin())
        };
        let parts = Parts::split(&target).ok_or_else(|| {
            format!(
                "redirected to {}, which is not an http(s) URL; not followed",
                redact(&target)
            )
        })?;
        if self.is_https() && parts.scheme != "https" {
            return Err(format!(
                "redirected from https to plain {}; refusing the downgrade (the repository is https://)",
                parts.clean()
            ));
        }
        Ok(parts.clean())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(url: &str) -> Repository {
        Repository::parse(url, None).unwrap()
    }

    #[test]
    fn credentials_leave_the_url_and_are_redacted() {
        let r = repo("http://deploy:S3cr%40t@127.0.0.1:8081/m2");
        assert_eq!(r.url("a/b.jar"), "http://127.0.0.1:8081/m2/a/b.jar");
        assert_eq!(r.shown(), "http://deploy:***@127.0.0.1:8081/m2/");
        assert_eq!(
            r.show("http://127.0.0.1:8081/m2/a.jar"),
            "http://deploy:***@127.0.0.1:8081/m2/a.jar"
        );
        let header = r.authorization("http://127.0.0.1:8081/m2/a.jar").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"deploy:S3cr@t");
        assert!(!format!("{r:?}").contains("S3cr"));
    }

    #[test]
    fn the_header_goes_only_to_the_same_host_and_port() {
        let r = repo("http://u:p@127.0.0.1:8081/m2/");
        assert!(r.authorization("http://127.0.0.1:8081/other").is_some());
        assert!(r.authorization("https://127.0.0.1:8081/other").is_some());
        assert!(r.authorization("http://localhost:8081/m2/").is_none());
        assert!(r.authorization("http://127.0.0.1:8082/m2/").is_none());
        let r = repo("https://u:p@Nexus.example.com/m2/");
        assert!(r.authorization("https://nexus.example.com/x").is_some());
        assert!(r.authorization("http://nexus.example.com:443/x").is_none());
        assert!(repo("https://h/").authorization("https://h/").is_none());
    }

    #[test]
    fn plain_http_credentials_only_to_loopback_or_when_allowed() {
        for ok in [
            "http://u:p@127.0.0.1/",
            "http://u:p@127.1.2.3:9/",
            "http://u:p@localhost/",
            "http://u:p@[::1]:8080/",
            "https://u:p@192.0.2.1/",
            "http://192.0.2.1/",
        ] {
            assert!(repo(ok).check_transport(false).is_ok(), "{ok}");
        }
        let error = repo("http://deploy:S3cret@192.0.2.1/m2/")
            .check_transport(false)
            .unwrap_err();
        assert!(error.to_string().contains("plain http://"), "{error}");
        assert!(!error.to_string().contains("S3cret"), "{error}");
        assert!(error.hint().unwrap().contains("--allow-insecure-auth"));
        assert!(repo("http://u:p@192.0.2.1/").check_transport(true).is_ok());
        let env = Some(Credentials {
            username: "u".into(),
            password: "p".into(),
        });
        let from_env = Repository::parse("http://192.0.2.1/", env.clone()).unwrap();
        assert!(from_env.check_transport(false).is_err());
        assert!(Repository::parse("http://a:b@h/", env).is_err());
    }

    #[test]
    fn redirects_resolve_and_https_is_never_downgraded() {
        let r = repo("http://u:p@127.0.0.1:81/m2/");
        let from = "http://127.0.0.1:81/m2/g/a/1/a-1.jar";
        assert_eq!(
            r.redirect(from, "/good/a-1.jar").unwrap(),
            "http://127.0.0.1:81/good/a-1.jar"
        );
        assert_eq!(
            r.redirect(from, "b.jar").unwrap(),
            "http://127.0.0.1:81/m2/g/a/1/b.jar"
        );
        assert_eq!(
            r.redirect(from, "http://x:y@localhost:81/z").unwrap(),
            "http://localhost:81/z"
        );
        assert_eq!(r.redirect(from, "//h2/z").unwrap(), "http://h2/z");
        assert!(r.redirect(from, "ftp://h/z").is_err());
        let r = repo("https://repo.example.com/m2/");
        let from = "https://repo.example.com/m2/a.jar";
        assert_eq!(
            r.redirect(from, "https://cdn.example.com/a.jar").unwrap(),
            "https://cdn.example.com/a.jar"
        );
        let error = r
            .redirect(from, "http://cdn.example.com/a.jar")
            .unwrap_err();
        assert!(error.contains("refusing the downgrade"), "{error}");
        assert!(r.redirect(from, "//cdn.example.com/a.jar").is_ok());
    }

    #[test]
    fn odd_urls() {
        assert!(Repository::parse("http://", None).is_err());
        assert!(Repository::parse("http://h:notaport/", None).is_err());
        let error = Repository::parse("http://u:S3cret@:99999/", None).unwrap_err();
        assert!(!error.to_string().contains("S3cret"), "{error}");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }

    #[test]
    fn redact_examples() {
        assert_eq!(
            redact("http://deploy:S3cret@h:81/m2/"),
            "http://deploy:***@h:81/m2/"
        );
        assert_eq!(redact("https://TOKEN@h/"), "https://***@h/");
        assert_eq!(redact("https://h/"), "https://h/");
    }
}
