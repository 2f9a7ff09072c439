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

impl TempDb {
    /// Binding `id`'s uses in the database: counted (`calls_used`) and
    /// held by calls not yet ended (`calls_live`).
    #[allow(dead_code)]
    pub fn uses(&self, id: i64) -> (i64, i64) {
        let url = self.url.clone();
        // Off any runtime: the blocking client drives one of its own.
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("PostgreSQL");
            let r = c
                .query_one(
                    "SELECT calls_used, calls_live FROM bindings WHERE id = $1",
                    &[&id],
                )
                .expect("binding kept");
            (r.get(0), r.get(1))
        })
        .join()
        .expect("uses")
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

/// A TCP relay to PostgreSQL that a test can cut (every connection through
/// it closed, new ones dropped) and heal.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    pub fn to(upstream: &str) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, o, up) = (cut.clone(), open.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&up) else {
                    continue;
                };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                if let Ok(mut held) = o.lock() {
                    held.extend([c2, s2]);
                }
                pipe(c3, server);
                pipe(s3, client);
            }
        });
        Relay { addr, cut, open }
    }

    /// `url` with its server replaced by this relay.
    pub fn url(&self, url: &str) -> String {
        url.replacen("127.0.0.1:5432", &self.addr.to_string(), 1)
    }

    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut held) = self.open.lock() {
            for s in held.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
