// `sqlx::migrate!` embeds the migrations at compile time; without this, a new migration file
// would not rebuild the crate (stable Rust cannot track the directory from the macro).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
