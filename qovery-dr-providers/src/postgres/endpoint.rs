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
/// let e = PgEndpoint::new("127.0.0.1", 5432, "dr", "shop").password("s3cr3t");
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
        }
    }

    /// Sets the password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(SecretString::new(password));
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
        let connect = tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), cfg.connect(NoTls));
        let (client, connection) = match connect.await {
            Ok(r) => r.map_err(|e| pg_error(op, &self.label(), e))?,
            Err(_) => {
                return Err(ProviderError::new(
                    ErrorKind::Timeout,
                    PROVIDER,
                    op,
                    format!("{}: no connection within {:?}", self.label(), self.connect_timeout),
                ));
            }
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(client)
    }
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
        None => (ErrorKind::Transient, format!("{server}: {e}")),
    };
    ProviderError::new(kind, PROVIDER, op, message).with_source(e)
}
