//! Postgres for the harness and the tests, from the first of these that works:
//! `HARNESS_DATABASE_URL` (an existing server), else a container through `testcontainers` (the locally
//! built image on podman on these machines, else the official image where a registry is reachable), else a
//! throwaway cluster from the local PostgreSQL binaries. Every caller gets its own fresh database, dropped when
//! it goes away. Containers need the `containers` feature (on by default): without it the harness builds
//! without testcontainers and its Docker client, as in the container image, where no engine is reachable.
//!
//! This module does not install anything: `scripts/setup-podman.sh` builds the image and starts the
//! container engine; the error when nothing works says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipeline::env::hide_password;
use rand::Rng;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
#[cfg(feature = "containers")]
use testcontainers::core::{IntoContainerPort, WaitFor};
#[cfg(feature = "containers")]
use testcontainers::runners::AsyncRunner;
#[cfg(feature = "containers")]
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The image `scripts/setup-podman.sh` builds from the host's PostgreSQL 15 binaries.
pub const DEFAULT_IMAGE: &str = "localhost/pg-local:15";
/// The image used when [`DEFAULT_IMAGE`] does not exist and `HARNESS_PG_IMAGE` is unset: the official one,
/// pulled from Docker Hub, with trust authentication like the local image (a throwaway server).
pub const OFFICIAL_IMAGE: &str = "docker.io/library/postgres:15";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "no Postgres available: HARNESS_DATABASE_URL is not set, the container engine failed ({container}), and local binaries failed ({local}); run `bash scripts/setup-podman.sh` (as root) or set HARNESS_DATABASE_URL=postgres://user@host:port/postgres"
    )]
    Nothing { container: String, local: String },
    #[error("Postgres at {url} is not usable: {source}")]
    Unusable {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{0}")]
    Container(String),
    #[error("{0}")]
    Local(String),
}

/// Which mechanism provided the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    External,
    Container,
    LocalBinaries,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::External => "external",
            Backend::Container => "container",
            Backend::LocalBinaries => "local-binaries",
        }
    }
}

/// What keeps the server alive: dropping it removes the container or stops the cluster.
enum Guard {
    External,
    #[cfg(feature = "containers")]
    Container {
        _container: Box<ContainerAsync<GenericImage>>,
    },
    Local {
        _cluster: LocalCluster,
    },
}

/// A running Postgres server; stopped (container removed, cluster deleted) when dropped.
pub struct PostgresServer {
    admin_url: String,
    backend: Backend,
    _guard: Guard,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// Replaces the database name of a Postgres URL.
fn with_database(url: &str, database: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{database}"));
            parsed.to_string()
        }
        Err(_) => format!("{}/{database}", url.trim_end_matches('/')),
    }
}

async fn check(url: &str) -> Result<(), ProvisionError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match PgConnection::connect(url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Err(source) if tokio::time::Instant::now() >= deadline => {
                return Err(ProvisionError::Unusable { url: hide_password(url), source });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

impl PostgresServer {
    /// Provisions a server by the first mechanism that works.
    pub async fn provision() -> Result<PostgresServer, ProvisionError> {
        if let Some(url) = std::env::var("HARNESS_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) {
            check(&url).await?;
            return Ok(PostgresServer { admin_url: url, backend: Backend::External, _guard: Guard::External });
        }
        let container = match PostgresServer::container().await {
            Ok(server) => return Ok(server),
            Err(err) => err.to_string(),
        };
        tracing::info!(reason = %container, "No container engine for Postgres, trying local binaries.");
        let local = match PostgresServer::local_binaries().await {
            Ok(server) => return Ok(server),
            Err(err) => err.to_string(),
        };
        Err(ProvisionError::Nothing { container, local })
    }

    /// A container through testcontainers, of `HARNESS_PG_IMAGE` if set, else [`DEFAULT_IMAGE`] if the engine
    /// has it, else [`OFFICIAL_IMAGE`].
    #[cfg(feature = "containers")]
    pub async fn container() -> Result<PostgresServer, ProvisionError> {
        let image = match std::env::var("HARNESS_PG_IMAGE").ok().filter(|i| !i.trim().is_empty()) {
            Some(image) => image,
            None if local_image_exists().await => DEFAULT_IMAGE.to_owned(),
            None => OFFICIAL_IMAGE.to_owned(),
        };
        let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
        let fail =
            |what: &str, err: &dyn std::fmt::Display| ProvisionError::Container(format!("{what} {image}: {err}"));
        let started = tokio::time::timeout(
            Duration::from_secs(60),
            GenericImage::new(name, tag)
                .with_exposed_port(5432.tcp())
                // The official image logs this line twice (its init server, then the real one); `check` below
                // waits for the server that answers on TCP. The local image ignores the variable.
                .with_wait_for(WaitFor::message_on_stderr("database system is ready to accept connections"))
                .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
                .with_startup_timeout(Duration::from_secs(45))
                .start(),
        )
        .await
        .map_err(|_| fail("timed out starting", &"60 s"))?
        .map_err(|e| fail("failed to start", &e))?;
        let host = started.get_host().await.map_err(|e| fail("no host for", &e))?;
        let port = host_port(&started, 5432).await.map_err(|e| fail("no published port for", &e))?;
        let admin_url = format!("postgres://postgres@{host}:{port}/postgres");
        check(&admin_url).await?;
        Ok(PostgresServer {
            admin_url,
            backend: Backend::Container,
            _guard: Guard::Container { _container: Box::new(started) },
        })
    }

    #[cfg(not(feature = "containers"))]
    pub async fn container() -> Result<PostgresServer, ProvisionError> {
        Err(ProvisionError::Container("this harness was built without the `containers` feature".to_owned()))
    }

    /// A throwaway cluster from the local PostgreSQL binaries, in a temporary directory.
    pub async fn local_binaries() -> Result<PostgresServer, ProvisionError> {
        let cluster = tokio::task::spawn_blocking(LocalCluster::start)
            .await
            .map_err(|e| ProvisionError::Local(e.to_string()))?
            .map_err(ProvisionError::Local)?;
        let admin_url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
        check(&admin_url).await?;
        Ok(PostgresServer { admin_url, backend: Backend::LocalBinaries, _guard: Guard::Local { _cluster: cluster } })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL of the server's maintenance database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Creates an empty database for one caller; it is dropped when the returned value is.
    pub async fn fresh_database(&self) -> Result<TestDatabase, ProvisionError> {
        let unusable = |source| ProvisionError::Unusable { url: hide_password(&self.admin_url), source };
        let mut conn = PgConnection::connect(&self.admin_url).await.map_err(unusable)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Databases of killed runs are named with their creation time: drop the old ones.
        let stale: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'h\\_%'")
            .fetch_all(&mut conn)
            .await
            .map_err(unusable)?;
        for name in stale {
            let created = name.split('_').nth(1).and_then(|t| t.parse::<u64>().ok()).unwrap_or(now);
            if now.saturating_sub(created) > 6 * 3600 {
                let _ = sqlx::query(drop_sql(&name)).execute(&mut conn).await;
            }
        }
        let name = format!("h_{now}_{:08x}", rand::rng().random::<u32>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .map_err(unusable)?;
        let _ = conn.close().await;
        Ok(TestDatabase { url: with_database(&self.admin_url, &name), admin_url: self.admin_url.clone(), name })
    }
}

/// `DROP DATABASE` for one of our databases. Names are ours (`h_<secs>_<hex>`): anything else is refused
/// rather than interpolated into SQL.
fn drop_sql(name: &str) -> sqlx::AssertSqlSafe<String> {
    let ours = name.starts_with("h_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let target = if ours { name } else { "h_refused_name" };
    sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{target}\" WITH (FORCE)"))
}

/// Whether the container engine holds [`DEFAULT_IMAGE`] (an engine that does not answer: no).
#[cfg(feature = "containers")]
async fn local_image_exists() -> bool {
    match testcontainers::bollard::Docker::connect_with_defaults() {
        Ok(docker) => docker.inspect_image(DEFAULT_IMAGE).await.is_ok(),
        Err(_) => false,
    }
}

/// Reads the published port, also on podman 4, whose Docker-compatible API reports `HostIp: ""` and so
/// defeats `get_host_port_ipv4` (podman issue #17780).
#[cfg(feature = "containers")]
async fn host_port(container: &ContainerAsync<GenericImage>, port: u16) -> Result<u16, String> {
    if let Ok(p) = container.get_host_port_ipv4(port).await {
        return Ok(p);
    }
    let docker = testcontainers::bollard::Docker::connect_with_defaults().map_err(|e| e.to_string())?;
    let info = docker.inspect_container(container.id(), None).await.map_err(|e| e.to_string())?;
    info.network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(&format!("{port}/tcp")).cloned().flatten())
        .and_then(|bindings| bindings.iter().find_map(|b| b.host_port.as_ref()?.parse().ok()))
        .ok_or_else(|| format!("port {port}/tcp is not published"))
}

/// One database of a [`PostgresServer`], dropped (with `FORCE`) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any async context we could borrow: use a private runtime on its own thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(drop_sql(&name)).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A PostgreSQL cluster in a temporary directory, run as the `postgres` user when we are root.
struct LocalCluster {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    pg_ctl: PathBuf,
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).collect())
        .unwrap_or_default();
    versioned.sort();
    versioned.reverse();
    on_path.into_iter().chain(versioned).find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

fn run(program: &Path, args: &[&str], as_postgres: bool) -> Result<(), String> {
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let output = command.args(args).output().map_err(|e| format!("failed to run {}: {e}", program.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {} failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl LocalCluster {
    fn start() -> Result<LocalCluster, String> {
        let initdb = find_binary("initdb").ok_or("initdb not found (install postgresql-15)")?;
        let pg_ctl = find_binary("pg_ctl").ok_or("pg_ctl not found (install postgresql-15)")?;
        let as_postgres = is_root();
        let dir =
            std::env::temp_dir().join(format!("harness-pg-{}-{:08x}", std::process::id(), rand::rng().random::<u32>()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if as_postgres {
            // initdb refuses to run as root; the cluster belongs to the postgres user.
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
            if !status.is_ok_and(|s| s.success()) {
                return Err(format!("cannot chown {} to postgres", dir.display()));
            }
        }
        let data = dir.join("data");
        let data_text = data.display().to_string();
        run(
            &initdb,
            &["-D", &data_text, "-A", "trust", "-U", "postgres", "-N", "--encoding=UTF8", "--locale=C"],
            as_postgres,
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port: {e}"))?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.display()
        );
        let log = dir.join("postgres.log").display().to_string();
        let cluster = LocalCluster { dir, port, as_postgres, pg_ctl };
        run(&cluster.pg_ctl, &["-D", &data_text, "-l", &log, "-w", "-t", "30", "-o", &options, "start"], as_postgres)?;
        Ok(cluster)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = run(&self.pg_ctl, &["-D", &data, "-m", "immediate", "-w", "stop"], self.as_postgres);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
