//! The deployment files: Dockerfile, .dockerignore, docker-compose.yml (Docker itself
//! does not run here, so the files are parsed and checked; the same topology runs for
//! real in revocation_flow.rs and revocation_cluster.rs) and the shipped configs.

use serde_norway::Value;

const REPLICAS: [&str; 2] = ["mcp-sts-a", "mcp-sts-b"];

fn compose() -> Value {
    serde_norway::from_str(&std::fs::read_to_string("docker-compose.yml").unwrap()).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn compose_runs_two_replicas_on_one_key_volume_and_one_durable_redis() {
    let compose = compose();
    let services = &compose["services"];
    let redis = &services["redis"];
    assert!(redis["image"].as_str().unwrap().starts_with("redis"));
    let command = strings(&redis["command"]).join(" ");
    assert!(command.contains("--appendonly yes"), "{command}");
    // The comment promises acknowledged revocations survive a power loss: only
    // `always` keeps that promise.
    assert!(command.contains("--appendfsync always"), "{command}");
    let text = read("docker-compose.yml");
    assert!(
        text.contains("power loss") && text.contains("everysec"),
        "the durability comment"
    );
    assert!(
        strings(&redis["volumes"])
            .iter()
            .any(|v| v.starts_with("redis-data:/data"))
    );

    let mut ports = Vec::new();
    for name in REPLICAS {
        let sts = &services[name];
        assert_eq!(sts["build"].as_str(), Some("."), "{name}");
        let command = strings(&sts["command"]);
        assert_eq!(
            command[..3],
            ["serve", "--config", "/etc/mcp-sts/mcp-sts.toml"],
            "{name}"
        );
        let volumes = strings(&sts["volumes"]);
        assert!(
            volumes
                .iter()
                .any(|v| v == "./config/docker.toml:/etc/mcp-sts/mcp-sts.toml:ro"),
            "{name}: one config for every replica"
        );
        assert!(
            volumes.iter().any(|v| v == "sts-keys:/var/lib/mcp-sts/keys"),
            "{name}: the shared key volume"
        );
        assert_eq!(
            sts["depends_on"]["redis"]["condition"].as_str(),
            Some("service_healthy"),
            "{name}"
        );
        let check = strings(&sts["healthcheck"]["test"]).join(" ");
        assert!(check.contains("/readyz"), "{name}: readiness, not liveness: {check}");
        ports.extend(strings(&sts["ports"]));
    }
    assert_eq!(ports, ["8400:8400", "8401:8400"]);
    assert_eq!(
        services["mcp-sts-b"]["depends_on"]["mcp-sts-a"]["condition"].as_str(),
        Some("service_healthy"),
        "b starts once a has made the first key, so they never race to create one"
    );
    for volume in ["redis-data", "sts-keys"] {
        assert!(
            compose["volumes"].as_mapping().unwrap().contains_key(volume),
            "{volume}"
        );
    }
}

#[test]
fn the_compose_config_uses_the_redis_service_and_requires_a_real_secret() {
    let text = read("config/docker.toml");
    let config = mcp_sts::config::Config::parse(&text).unwrap();
    assert_eq!(config.revocation.backend, mcp_sts::config::RevocationBackend::Redis);
    assert!(config.revocation.redis_url().starts_with("redis://redis:6379"));
    assert_eq!(config.keys.dir, std::path::PathBuf::from("/var/lib/mcp-sts/keys"));
    // No usable development secret: the shipped file stops at start, naming the key...
    let errors: Vec<String> = config
        .problems()
        .into_iter()
        .filter(|p| p.severity == mcp_sts::config::Severity::Error)
        .map(|p| p.key)
        .collect();
    assert_eq!(errors, ["clients[0].secret_sha256"]);
    // ...and starts once a real hash is put in.
    let hash = mcp_sts::client_auth::hash_secret("a secret the operator generated");
    let fixed = text.replace("REPLACE-with-the-output-of-mcp-sts-secret-generate", &hash);
    mcp_sts::config::Config::from_toml(&fixed).unwrap();
    assert!(
        config.admin.token_sha256.is_none(),
        "the admin API is off unless configured"
    );
}

#[test]
fn the_image_builds_dependencies_first_and_runs_as_non_root() {
    let dockerfile = read("Dockerfile");
    let manifests = dockerfile
        .find("COPY Cargo.toml Cargo.lock")
        .expect("manifests copied alone");
    let sources = dockerfile.find("COPY src src").expect("sources copied after");
    assert!(manifests < sources, "dependency layer before the sources");
    assert!(!dockerfile.contains("COPY . ."), "never the whole context");
    let runtime = &dockerfile[dockerfile.rfind("FROM ").unwrap()..];
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(!user.starts_with("root") && !user.starts_with("0"), "{user}");
    assert!(runtime.contains("curl"), "the compose health check needs curl");

    let ignored: Vec<String> = read(".dockerignore").lines().map(str::trim).map(String::from).collect();
    for entry in ["target/", "keys/", "**/*.pem", "var/"] {
        assert!(
            ignored.iter().any(|l| l == entry),
            "{entry} must stay out of the build context"
        );
    }
}

#[test]
fn the_example_config_is_valid_and_uses_embedded_defaults() {
    let config = mcp_sts::config::Config::from_toml(&read("config/mcp-sts.toml")).unwrap();
    assert_eq!(config.revocation.backend, mcp_sts::config::RevocationBackend::Embedded);
    assert!(
        config.admin.token_sha256.is_none(),
        "the admin API is off unless configured"
    );
    assert!(config.problems().is_empty(), "{:?}", config.problems());
}
