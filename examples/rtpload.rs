//! RTP load for the media benchmark (scripts/bench-media.py): G.711-sized
//! packets, 50 per second each way, for each call of a list, through a
//! relay (sipmask's or rtpengine), from one socket per side (the relay
//! latches each call to it). Prints one JSON line: packets sent and
//! received, loss, and the jitter the relay added (|D| of RFC 3550, the
//! change in transit time between consecutive packets of a stream) as
//! percentiles.
//!
//! `rtpload A_ADDR B_ADDR CALLS_FILE SECONDS`: CALLS_FILE has one line per
//! call, "where A sends" and "where B sends", space-separated.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_millis(20);
const PACKET: usize = 172;
const WARMUP: Duration = Duration::from_secs(1);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, a, b, file, secs] = args.as_slice() else {
        anyhow::bail!("usage: rtpload A_ADDR B_ADDR CALLS_FILE SECONDS");
    };
    let secs: f64 = secs.parse()?;
    let calls: Vec<(SocketAddr, SocketAddr)> = std::fs::read_to_string(file)?
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect();
    anyhow::ensure!(!calls.is_empty(), "no calls in {file}");
    let socks = [bind(a)?, bind(b)?];
    let n = calls.len();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    // Stream s = 2 * call + side: its last transit (µs), for |D|.
    let mut last = vec![i64::MIN; 2 * n];
    let mut hist = vec![0u64; 100_001];
    let (mut sent, mut received, mut counted) = (0u64, 0u64, 0u64);
    let mut transit_max = 0i64;
    let mut seq = 0u16;
    let mut round = 0u64;
    let mut next = 0usize;
    let mut pkt = [0u8; PACKET];
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Calls are spread over the 20 ms: call i sends at i/n of it.
        let due = start + PERIOD * round as u32 + PERIOD.mul_f64(next as f64 / n as f64);
        if now >= due {
            let i = next;
            let t = start.elapsed().as_micros() as u64;
            for (side, sock) in socks.iter().enumerate() {
                pkt[0] = 0x80;
                pkt[1] = 0;
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[8..12].copy_from_slice(&(i as u32 * 2 + side as u32).to_be_bytes());
                pkt[12..20].copy_from_slice(&t.to_be_bytes());
                pkt[20..24].copy_from_slice(&(i as u32).to_be_bytes());
                pkt[24] = side as u8;
                let to = if side == 0 { calls[i].0 } else { calls[i].1 };
                if sock.send_to(&pkt, to).is_ok() {
                    sent += 1;
                }
            }
            next += 1;
            if next == n {
                next = 0;
                round += 1;
                seq = seq.wrapping_add(1);
            }
            continue;
        }
        let mut idle = true;
        for sock in &socks {
            while let Ok((len, _)) = sock.recv_from(&mut buf) {
                idle = false;
                if len < 25 {
                    continue;
                }
                received += 1;
                let sent_at = u64::from_be_bytes(buf[12..20].try_into()?) as i64;
                let call = u32::from_be_bytes(buf[20..24].try_into()?) as usize;
                let stream = 2 * call.min(n - 1) + usize::from(buf[24] & 1);
                let now_us = start.elapsed().as_micros() as i64;
                let transit = now_us - sent_at;
                transit_max = transit_max.max(transit);
                if now_us > WARMUP.as_micros() as i64 && last[stream] != i64::MIN {
                    let d = (transit - last[stream]).unsigned_abs().min(100_000);
                    hist[d as usize] += 1;
                    counted += 1;
                }
                last[stream] = transit;
            }
        }
        if idle {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    // Stragglers.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        for sock in &socks {
            while sock.recv_from(&mut buf).is_ok() {
                received += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let pct = |p: f64| -> f64 {
        let want = (counted as f64 * p / 100.0).ceil() as u64;
        let mut acc = 0;
        for (us, c) in hist.iter().enumerate() {
            acc += c;
            if acc >= want.max(1) {
                return us as f64 / 1000.0;
            }
        }
        f64::NAN
    };
    println!(
        "{{\"calls\": {n}, \"sent\": {sent}, \"received\": {received}, \"loss_pct\": {:.3}, \
         \"jitter_p50_ms\": {:.3}, \"jitter_p99_ms\": {:.3}, \"jitter_max_ms\": {:.3}, \
         \"transit_max_ms\": {:.3}, \"rate_pps\": {:.0}}}",
        100.0 * (sent.saturating_sub(received)) as f64 / sent.max(1) as f64,
        pct(50.0),
        pct(99.0),
        pct(100.0),
        transit_max as f64 / 1000.0,
        sent as f64 / secs
    );
    Ok(())
}

fn bind(addr: &str) -> anyhow::Result<UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    // Bursts of thousands of packets must not overflow the receive queue.
    s.set_recv_buffer_size(8 << 20)?;
    s.set_send_buffer_size(8 << 20)?;
    s.bind(&addr.parse::<SocketAddr>()?.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}
