//! What `rampart check-config` says about a config it accepts or refuses
//! beyond syntax: an empty file is refused, a policy that can never match
//! is accepted with a warning naming it and the policy that shadows it.

mod common;

use common::*;
use rampart_testkit::configs;

#[test]
fn an_empty_config_is_refused_and_a_shadowed_policy_is_named_with_its_shadow() {
    let dir = TempDir::new();
    let empty = dir.write("empty.toml", "");
    let out = rampart()
        .args(["check-config", empty.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty.toml:1:1: interface: no [[interface]]"),
        "{err}"
    );

    let shadowed = dir.write(
        "shadowed.toml",
        &format!(
            "{interfaces}{zones}[address-book]\nweb = [\"192.0.2.0/24\"]\n{allow}{deny}",
            zones = configs::UNTRUST_AND_TRUST_ZONES,
            allow = configs::policy("allow-web", ("untrust", "trust"))
                .destination("web")
                .application("junos-http")
                .then("permit"),
            deny = configs::policy("deny-one-web-host", ("untrust", "trust"))
                .destination("192.0.2.80/32")
                .application("junos-http")
                .then("deny"),
            interfaces = configs::untrust_trust_pair("net_null0", "net_null1")
        ),
    );
    let out = rampart()
        .args(["check-config", shadowed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "a warning, not an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shadowed.toml: warning: policy \"deny-one-web-host\" can never match: policy \"allow-web\" before it"),
        "{err}"
    );
}
