use reqwest::dns::Name;

use super::*;

fn targets(allowed: &[&str], allow_private: bool) -> PushTargets {
    PushTargets {
        allowed_hosts: allowed.iter().map(|h| h.to_string()).collect(),
        allow_private,
    }
}

fn check(t: &PushTargets, url: &str) -> Result<(), &'static str> {
    t.check(&url::Url::parse(url).unwrap())
}

#[test]
fn internal_addresses_are_named() {
    let cases = [
        ("127.0.0.1", true),
        ("10.1.2.3", true),
        ("172.16.0.1", true),
        ("192.168.1.1", true),
        ("169.254.169.254", true),
        ("100.64.0.1", true),
        ("0.0.0.0", true),
        ("224.0.0.1", true),
        ("::1", true),
        ("::", true),
        ("fd00::1", true),
        ("fe80::1", true),
        ("::ffff:127.0.0.1", true),
        ("::ffff:10.0.0.1", true),
        ("93.184.216.34", false),
        ("2606:4700::1111", false),
        ("100.128.0.1", false),
    ];
    let wrong: Vec<_> = cases
        .iter()
        .filter(|(ip, internal)| is_internal(ip.parse().unwrap()) != *internal)
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn by_default_internal_literals_are_refused_and_names_pass_to_the_resolver() {
    let t = targets(&[], false);
    for url in [
        "http://127.0.0.1:8080/events",
        "http://[::1]/",
        "https://10.0.0.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:192.168.0.1]/",
    ] {
        assert!(check(&t, url).is_err(), "{url}");
    }
    assert_eq!(check(&t, "https://receiver.example.com/events"), Ok(()));
    assert_eq!(check(&t, "https://93.184.216.34/events"), Ok(()));
    assert_eq!(check(&targets(&[], true), "http://127.0.0.1:8080/"), Ok(()));
}

#[test]
fn an_allow_list_admits_only_its_hosts_internal_or_not() {
    let t = targets(&["receiver.internal", "127.0.0.1"], false);
    assert_eq!(check(&t, "http://receiver.internal:9000/set"), Ok(()));
    assert_eq!(check(&t, "http://RECEIVER.internal./set"), Ok(()));
    assert_eq!(check(&t, "http://127.0.0.1:9/"), Ok(()));
    assert!(check(&t, "https://receiver.example.com/").is_err());
    assert!(check(&t, "http://10.0.0.1/").is_err());
}

#[tokio::test]
async fn the_resolver_drops_internal_addresses_unless_allowed() {
    let name = |n: &str| n.parse::<Name>().unwrap();
    assert!(targets(&[], false).resolver().resolve(name("localhost")).await.is_err());
    let allowed: Vec<_> = targets(&[], true)
        .resolver()
        .resolve(name("localhost"))
        .await
        .unwrap()
        .collect();
    assert!(allowed.iter().all(|a| a.ip().is_loopback()) && !allowed.is_empty());
    let listed: Vec<_> = targets(&["localhost"], false)
        .resolver()
        .resolve(name("localhost"))
        .await
        .unwrap()
        .collect();
    assert!(!listed.is_empty());
}
