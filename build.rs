//! One name for "built with a SQL database": `cfg(sql)` is set when the `sqlite` or the `postgres`
//! feature is on, so the code need not repeat `any(feature = "sqlite", feature = "postgres")`; and
//! the crate is rebuilt when a migration is added.

fn main() {
    // sqlx's migrate! embeds the migration files; a new file must rebuild the crate too.
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(sql)");
    // Set by `cargo fuzz` (fuzz/): opens `fuzzing`, the fuzz targets' way into private parsers.
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
    if std::env::var_os("CARGO_FEATURE_SQLITE").is_some()
        || std::env::var_os("CARGO_FEATURE_POSTGRES").is_some()
    {
        println!("cargo::rustc-cfg=sql");
    }
}
