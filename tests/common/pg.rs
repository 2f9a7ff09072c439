//! A PostgreSQL database of a test's own on the machine's server
//! (`SIPMASK_TEST_POSTGRES`, default postgresql://postgres@127.0.0.1:5432),
//! dropped when the test ends.

pub struct TempDb {
    pub url: String,
    admin: String,
    name: String,
}

impl TempDb {
    pub fn new() -> TempDb {
        let server = std::env::var("SIPMASK_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432".into());
        let name = format!(
            "sipmask_it{}",
            sipmask::ids::short("", 12).to_ascii_lowercase()
        );
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let admin = format!("{server}/postgres");
        let (a, n) = (admin.clone(), name.clone());
        // Off any runtime: the blocking client drives one of its own.
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&a, postgres::NoTls).expect("PostgreSQL");
            c.batch_execute(&format!("CREATE DATABASE {n}"))
                .expect("create database");
        })
        .join()
        .expect("create database");
        TempDb {
            url: format!("{server}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Off any runtime: the blocking client drives one of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}
