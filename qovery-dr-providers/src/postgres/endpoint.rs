//! How to reach one PostgreSQL server, and errors mapped to provider kinds.

use std::time::Duration;

use qovery_dr_core::{ErrorKind, ProviderError, SecretString};
use tokio_postgres::{Client, NoTls};

/// The provider name in errors.
pub const PROVIDER: &str = "postgres";

/// One server: host, port, user, password (a secret), database.
///
/// ```
/// use qovery_dr_providers::postgres::PgEndpoint;
/// use qovery_dr_core::SecretString;
/// let e = PgEndpoint::new("127.0.0.1", 5432, "dr", "shop").with_password(SecretString::new("s3cr3t"));
/// assert!(!format!("{e:?}").contains("s3cr3t"));
/// ```
#[derive(Debug, Clone)]
pub struct PgEndpoint {
    /// Host name, address, or a Unix socket directory.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password (redacted in `Debug`).
    pub password: Option<SecretString>,
    /// Database.
    pub dbname: String,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Verify the server with TLS against this CA bundle (PEM) instead of a
    /// plain connection (feature `postgres-tls`).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl PgEndpoint {
    /// An endpoint without password, 5 s connection timeout.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>, dbname: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
            dbname: dbname.into(),
            connect_timeout: Duration::from_secs(5),
            tls_ca_file: None,
        }
    }

    /// The server libpq's environment names: `PGHOST` (default `localhost`), `PGPORT`
    /// (5432), `PGUSER` (`postgres`), `PGDATABASE` (the user), `PGPASSWORD` (none),
    /// `PGSSLROOTCERT` (TLS against that CA when set). `InvalidConfig` on a port that is
    /// not a number.
    pub fn from_env() -> qovery_dr_core::ProviderResult<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> qovery_dr_core::ProviderResult<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let port = match var("PGPORT") {
            None => 5432,
            Some(p) => p.parse().map_err(|_| {
                qovery_dr_core::ProviderError::new(
                    qovery_dr_core::ErrorKind::InvalidConfig,
                    "postgres",
                    "configure",
                    format!("PGPORT={p:?} is not a port number"),
                )
            })?,
        };
        let user = var("PGUSER").unwrap_or_else(|| "postgres".to_owned());
        let dbname = var("PGDATABASE").unwrap_or_else(|| user.clone());
        let mut endpoint = Self::new(var("PGHOST").unwrap_or_else(|| "localhost".to_owned()), port, user, dbname);
        if let Some(password) = var("PGPASSWORD") {
            endpoint = endpoint.with_password(SecretString::new(password));
        }
        if let Some(ca) = var("PGSSLROOTCERT") {
            endpoint = endpoint.with_tls(ca);
        }
        Ok(endpoint)
    }

    /// Requires TLS, verifying the server's certificate against `ca_file`
    /// (PEM); needs the `postgres-tls` feature (without it, connecting fails
    /// with `InvalidConfig` rather than falling back to plain text).
    pub fn with_tls(mut self, ca_file: impl Into<std::path::PathBuf>) -> Self {
        self.tls_ca_file = Some(ca_file.into());
        self
    }

    /// Sets the password.
    pub fn with_password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// The same server, another database.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        Self { dbname: dbname.to_owned(), ..self.clone() }
    }

    /// `host:port/dbname`, for messages (never the password).
    pub fn label(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.dbname)
    }

    /// A libpq connection string for `primary_conninfo` or `CREATE
    /// SUBSCRIPTION … CONNECTION` (a secret: it holds the password).
    pub fn conninfo(&self) -> SecretString {
        SecretString::new(self.conninfo_text())
    }

    fn conninfo_text(&self) -> String {
        let mut s = format!("host={} port={} user={} dbname={}", self.host, self.port, self.user, self.dbname);
        if let Some(p) = &self.password {
            s.push_str(&format!(" password='{}'", p.expose().replace('\\', "\\\\").replace('\'', "\\'")));
        }
        s
    }

    /// Connects; the connection task runs on the current runtime.
    pub(crate) async fn connect(&self, op: &str) -> Result<Client, ProviderError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .connect_timeout(self.connect_timeout);
        if let Some(p) = &self.password {
            cfg.password(p.expose());
        }
        cfg.application_name("qovery-dr");
        let timeout = self.connect_timeout + Duration::from_secs(1);
        let timed_out = || {
            ProviderError::new(
                ErrorKind::Timeout,
                PROVIDER,
                op,
                format!("{}: no connection within {:?}", self.label(), self.connect_timeout),
            )
        };
        let client = match &self.tls_ca_file {
            None => {
                let (client, connection) = tokio::time::timeout(timeout, cfg.connect(NoTls))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| pg_error(op, &self.label(), e))?;
                spawn_connection(connection);
                client
            }
            #[cfg(feature = "postgres-tls")]
            Some(ca) => {
                let tls = super::tls::connector(ca, op)?;
                cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
                let (client, connection) = tokio::time::timeout(timeout, cfg.connect(tls))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| pg_error(op, &self.label(), e))?;
                spawn_connection(connection);
                client
            }
            #[cfg(not(feature = "postgres-tls"))]
            Some(_) => {
                return Err(ProviderError::new(
                    ErrorKind::InvalidConfig,
                    PROVIDER,
                    op,
                    format!(
                        "{}: TLS is requested but this build lacks the postgres-tls feature; not connecting in plain text",
                        self.label()
                    ),
                ));
            }
        };
        Ok(client)
    }
}

fn spawn_connection<C: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static>(
    connection: C,
) {
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
}

/// Maps a tokio-postgres error to a provider error with a kind the engine acts on.
pub(crate) fn pg_error(op: &str, server: &str, e: tokio_postgres::Error) -> ProviderError {
    let (kind, message) = match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let kind = match &code[..2] {
                "28" => ErrorKind::Unauthenticated,
                "42" if code == "42501" => ErrorKind::PermissionDenied,
                "42" if code == "42P01" || code == "42704" => ErrorKind::NotFound,
                "25" if code == "25006" => ErrorKind::Conflict,
                "25" | "40" | "53" | "55" | "57" | "58" => ErrorKind::Transient,
                "08" => ErrorKind::Transient,
                _ => ErrorKind::InvalidInput,
            };
            (kind, format!("{server}: {} (SQLSTATE {code})", db.message()))
        }
        None if e.is_closed() => (ErrorKind::Transient, format!("{server}: connection closed")),
        None => {
            // The driver's own words are terse; its sources say why (TLS, DNS, refused…).
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            let tls = text.to_lowercase().contains("certificate");
            let kind = if tls { ErrorKind::InvalidConfig } else { ErrorKind::Transient };
            (kind, format!("{server}: {text}"))
        }
    };
    ProviderError::new(kind, PROVIDER, op, message).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn from_env_reads_libpq_variables_with_libpq_defaults() {
        let e = PgEndpoint::from_vars(vars(&[])).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.user.as_str(), e.dbname.as_str()),
            ("localhost", 5432, "postgres", "postgres")
        );
        assert!(e.password.is_none() && e.tls_ca_file.is_none());
        let e = PgEndpoint::from_vars(vars(&[
            ("PGHOST", "db.internal"),
            ("PGPORT", "6432"),
            ("PGUSER", "dr"),
            ("PGPASSWORD", "s3cr3t"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
        ]))
        .unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.dbname.as_str()),
            ("db.internal", 6432, "dr"),
            "PGDATABASE defaults to the user"
        );
        assert_eq!(e.password.as_ref().map(|p| p.expose().to_owned()).as_deref(), Some("s3cr3t"));
        assert!(e.tls_ca_file.is_some());
        assert!(!format!("{e:?}").contains("s3cr3t"));
        let bad = PgEndpoint::from_vars(vars(&[("PGPORT", "five")])).unwrap_err();
        assert!(bad.message().contains("PGPORT"), "{bad}");
    }
}
