//! Binds the system DPDK found through pkg-config. The same compiler flags
//! (pkg-config's `-include rte_config.h -march=...` plus
//! `-DALLOW_EXPERIMENTAL_API`) feed bindgen and `cc`, so the Rust layouts and
//! the compiled static-inline wrappers agree with the installed headers.

use std::env;
use std::path::PathBuf;

fn main() {
    let dpdk = pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(true)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "libdpdk >= 22.11 not found through pkg-config ({e}); run meson-scripts/setup.sh"
            )
        });

    // pkg-config's cflags beyond include paths: `-include rte_config.h`, `-march=...`.
    let mut extra: Vec<String> = Vec::new();
    let raw = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config --cflags libdpdk");
    let raw = String::from_utf8_lossy(&raw.stdout).to_string();
    let mut words = raw.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(f) = words.next() {
                extra.push("-include".into());
                extra.push(f.into());
            }
        } else if w.starts_with("-march") || w.starts_with("-mcpu") || w.starts_with("-D") {
            extra.push(w.into());
        }
    }
    extra.push("-DALLOW_EXPERIMENTAL_API".into());

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let wrappers = out.join("static_fns.c");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());

    let mut builder = bindgen::Builder::default()
        .header(manifest.join("wrapper.h").to_string_lossy())
        .clang_args(
            dpdk.include_paths
                .iter()
                .map(|p| format!("-I{}", p.display())),
        )
        .clang_args(&extra)
        .allowlist_function("rte_.*|rampart_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|RING_F_.*|rte_.*|rampart_.*")
        .wrap_static_fns(true)
        .wrap_static_fns_path(out.join("static_fns"))
        .clang_macro_fallback()
        .generate_comments(false)
        .layout_tests(false)
        .derive_default(true)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        // Packed structs that contain aligned members cannot be represented in
        // Rust; nothing in Rampart reads their fields.
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_gtp_psc_type0_hdr")
        .opaque_type("rte_gtp_psc_type1_hdr")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    // Only the inline functions Rampart calls get wrappers (keeps build time down).
    for f in [
        "rte_eth_rx_burst",
        "rte_eth_tx_burst",
        "rte_pktmbuf_alloc",
        "rte_pktmbuf_free",
        "rte_pktmbuf_alloc_bulk",
        "rte_pktmbuf_free_bulk",
        "rte_pktmbuf_append",
        "rte_pktmbuf_reset",
        "rte_pktmbuf_pool_create",
        "rte_mempool_avail_count",
        "rte_mempool_in_use_count",
        "rte_ring_.*elem.*",
        "rte_ring_count",
        "rte_ring_free_count",
        "rte_ring_empty",
        "rte_lcore_id",
        "rte_get_tsc_cycles",
        "rte_get_tsc_hz",
        "rte_rdtsc",
        "rte_socket_id",
        "rte_prefetch0",
        "rte_pause",
        "rte_rcu_qsbr_.*",
    ] {
        builder = builder.allowlist_function(f);
    }
    let bindings = builder.generate().expect("bindgen failed on DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");

    let mut cc = cc::Build::new();
    cc.file(&wrappers)
        .file(manifest.join("shim.c"))
        .include(&manifest)
        .includes(&dpdk.include_paths)
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .opt_level(3);
    for f in &extra {
        cc.flag(f);
    }
    cc.compile("rampart_dpdk_shim");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
}
