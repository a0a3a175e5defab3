//! `config_load`: arbitrary text as a config file through the loader and
//! validator (`rampart check-config`, reload) and, when it loads, the
//! ruleset compiler. Every refusal is a list of errors, each with its
//! place in the file; nothing panics.

use std::sync::Arc;

use rampart_pipeline::config::Config;
use rampart_pipeline::engine::Ruleset;

pub fn config_load(data: &[u8]) {
    // Config::load reads the file as UTF-8 (and refuses other bytes); the
    // lossy text keeps fuzzing the parser with whatever the bytes hold.
    let text = String::from_utf8_lossy(data);
    match Config::from_str_named(&text, "fuzz.toml") {
        Ok(config) => {
            // What the dataplane derives from a config it accepted.
            assert!(config.dataplane.workers >= 1);
            assert!(config.flow.session_capacity >= 1);
            for i in &config.interfaces {
                assert!(i.zone < config.zones.len());
                let _ = (i.is_pci(), i.port_name());
            }
            let rules = Ruleset::compile(Arc::new(config), 1);
            let _ = rules.policy_name(rampart_pipeline::engine::RuleRef::DefaultPolicy);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal says why");
            for e in &errors {
                assert!(e.line >= 1 && e.column >= 1, "error without a place: {e}");
                assert!(!e.message.is_empty());
                let shown = e.to_string();
                assert!(shown.starts_with("fuzz.toml:"), "{shown}");
            }
            let all = errors.to_string();
            assert_eq!(
                all.lines().count(),
                errors.len(),
                "one line per error:\n{all}"
            );
        }
    }
}
