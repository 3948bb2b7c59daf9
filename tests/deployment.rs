//! The deployment files: docker-compose.yml (Docker itself does not run in CI, so the
//! file is parsed and checked; the same topology runs for real in revocation_flow.rs)
//! and the configuration files shipped in config/.

use serde_norway::Value;

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

#[test]
fn compose_runs_mcp_sts_with_persistent_redis() {
    let compose = compose();
    let services = &compose["services"];
    let redis = &services["redis"];
    assert!(redis["image"].as_str().unwrap().starts_with("redis"));
    let command = strings(&redis["command"]).join(" ");
    assert!(
        command.contains("--appendonly yes"),
        "append-only persistence must be on: {command}"
    );
    assert!(
        strings(&redis["volumes"])
            .iter()
            .any(|v| v.starts_with("redis-data:/data"))
    );

    let sts = &services["mcp-sts"];
    assert_eq!(sts["build"].as_str(), Some("."));
    assert_eq!(
        strings(&sts["command"]),
        ["serve", "--config", "/etc/mcp-sts/mcp-sts.toml"]
    );
    let volumes = strings(&sts["volumes"]);
    assert!(
        volumes
            .iter()
            .any(|v| v.starts_with("./config/docker.toml:/etc/mcp-sts/mcp-sts.toml")),
        "config mounted"
    );
    assert!(volumes.iter().any(|v| v.starts_with("sts-keys:")), "keys on a volume");
    assert!(sts["depends_on"]["redis"].is_mapping() || sts["depends_on"].is_sequence());
    for volume in ["redis-data", "sts-keys"] {
        assert!(
            compose["volumes"].as_mapping().unwrap().contains_key(volume),
            "{volume}"
        );
    }
}

#[test]
fn the_compose_config_uses_redis_at_the_redis_service_and_keys_on_the_volume() {
    let config = mcp_sts::config::Config::from_toml(&std::fs::read_to_string("config/docker.toml").unwrap()).unwrap();
    assert_eq!(config.revocation.backend, mcp_sts::config::RevocationBackend::Redis);
    assert!(config.revocation.redis_url().starts_with("redis://redis:6379"));
    assert_eq!(config.keys.dir, std::path::PathBuf::from("/var/lib/mcp-sts/keys"));
    let compose = compose();
    let mounted = strings(&compose["services"]["mcp-sts"]["volumes"]);
    assert!(mounted.iter().any(|v| v == "sts-keys:/var/lib/mcp-sts/keys"));
}

#[test]
fn the_example_config_is_valid_and_uses_embedded_defaults() {
    let config = mcp_sts::config::Config::from_toml(&std::fs::read_to_string("config/mcp-sts.toml").unwrap()).unwrap();
    assert_eq!(config.revocation.backend, mcp_sts::config::RevocationBackend::Embedded);
    assert!(
        config.admin.token_sha256.is_none(),
        "the admin API is off unless configured"
    );
}
