//! The `flatc-fork` API (one function) over a flatc built elsewhere.

/// Path of the flatc executable found at build time.
pub fn flatc() -> &'static std::path::Path {
    std::path::Path::new(env!("RAMPART_FUZZ_FLATC"))
}
