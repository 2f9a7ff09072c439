//! The bench's floor: relays datagrams between the callers and one callee
//! without parsing or keeping anything, so its CPU per call is what the
//! kernel's UDP path alone costs an element in the middle. It is not a SIP
//! element (a second caller's answers go to the last caller heard).
//!
//! Usage: floor LISTEN CALLEE

use std::net::{SocketAddr, UdpSocket};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(callee)) = (args.next(), args.next()) else {
        eprintln!("usage: floor LISTEN CALLEE");
        std::process::exit(2);
    };
    let callee: SocketAddr = callee
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let sock = UdpSocket::bind(listen)?;
    let mut caller = None;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        let to = if from == callee {
            caller
        } else {
            caller = Some(from);
            Some(callee)
        };
        if let Some(to) = to {
            let _ = sock.send_to(&buf[..n], to);
        }
    }
}
