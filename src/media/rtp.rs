//! RTP and RTCP packets rebuilt for the leg they go to. Of RTP only the
//! fixed header and the payload cross: the SSRC, sequence number and
//! timestamp become the leg's own (an SSRC made for it, offsets made for
//! it), CSRCs and header extensions are dropped. Of RTCP only sender and
//! receiver reports, SDES (rebuilt: the leg's SSRC and CNAME, nothing
//! else), BYE (without its reason), NACK and PLI cross, with every SSRC and
//! sequence number in them mapped; APP, XR and anything unknown stay
//! behind.

/// What one leg is shown of the media sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The SSRC the leg sees.
    pub ssrc: u32,
    /// Added to every sequence number.
    pub seq: u16,
    /// Added to every timestamp.
    pub ts: u32,
    /// The CNAME the leg sees.
    pub cname: String,
}

impl Shown {
    /// A fresh identity for a leg: nothing in it comes from a party.
    pub fn new() -> Shown {
        Shown {
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            cname: cname(rand::random()),
        }
    }
}

/// `n` as 16 hex digits, then `@sipmask` (what `{:016x}@sipmask` gives).
fn cname(n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(24);
    for i in (0..16).rev() {
        s.push(HEX[((n >> (i * 4)) & 15) as usize] as char);
    }
    s.push_str("@sipmask");
    s
}

impl Default for Shown {
    fn default() -> Self {
        Shown::new()
    }
}

/// Whether a datagram on an RTP port is RTCP (RFC 5761 4: payload types
/// 192-223 are RTCP's when multiplexed).
pub fn is_rtcp(p: &[u8]) -> bool {
    p.len() >= 8 && (192..=223).contains(&p[1])
}

/// What an RTP packet said before it was rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heard {
    /// The sender's own SSRC.
    pub ssrc: u32,
    /// Payload type.
    pub pt: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub ts: u32,
    /// Where the payload starts after the rewrite.
    pub payload: usize,
}

/// Rewrites the RTP packet in `buf[..len]` in place for the leg `to`;
/// returns its new length and what it said, or `None` when it is not RTP.
pub fn rewrite_rtp(buf: &mut [u8], len: usize, to: &Shown) -> Option<(usize, Heard)> {
    let p = buf.get_mut(..len)?;
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(p[0] & 0x0f);
    let mut header = 12 + 4 * cc;
    if p[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*p.get(header + 2)?, *p.get(header + 3)?]);
        header += 4 + 4 * usize::from(words);
    }
    if header > p.len() {
        return None;
    }
    let seq = u16::from_be_bytes([p[2], p[3]]);
    let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    let heard = Heard {
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        pt: p[1] & 0x7f,
        marker: p[1] & 0x80 != 0,
        seq,
        ts,
        payload: 12,
    };
    // CSRCs and extensions name sources and carry what we cannot vouch for.
    p[0] &= 0xe0;
    p.copy_within(header.., 12);
    let len = len - (header - 12);
    let p = &mut buf[..len];
    p[2..4].copy_from_slice(&seq.wrapping_add(to.seq).to_be_bytes());
    p[4..8].copy_from_slice(&ts.wrapping_add(to.ts).to_be_bytes());
    p[8..12].copy_from_slice(&to.ssrc.to_be_bytes());
    Some((len, heard))
}

/// How RTCP from one party is mapped for the other.
pub struct RtcpMap<'a> {
    /// The identity the receiving leg is shown.
    pub to: &'a Shown,
    /// The identity the sending leg was shown (what its reports name).
    pub from: &'a Shown,
    /// The receiving party's own SSRC, as last heard, which the sender's
    /// reports name by `from.ssrc`.
    pub their_ssrc: Option<u32>,
    /// Our clock now, as a 64-bit NTP timestamp: a sender report carries
    /// it instead of the sending device's clock.
    pub ntp: u64,
    /// The receiving party's last sender report as the sender saw it and
    /// as the party sent it (middle 32 bits of each NTP timestamp, ours in
    /// the high half): the sender's report blocks name ours (LSR), the
    /// party is given back its own.
    pub to_sr: u64,
    /// Where this packet's own sender report is noted, the same way.
    pub from_sr: &'a std::sync::atomic::AtomicU64,
}

/// The middle 32 bits of a 64-bit NTP timestamp (what LSR holds).
fn mid(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Now as a 64-bit NTP timestamp (seconds since 1900 and a binary fraction).
pub fn ntp_now() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs().wrapping_add(2_208_988_800);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;
const RTPFB: u8 = 205;
const PSFB: u8 = 206;

/// Rebuilds the compound RTCP packet `p` into `out` for the receiving leg;
/// returns the length written, 0 when nothing may cross.
pub fn rewrite_rtcp(p: &[u8], out: &mut [u8], map: &RtcpMap<'_>) -> usize {
    let mut w = Out { buf: out, at: 0 };
    let mut rest = p;
    while rest.len() >= 4 {
        if rest[0] >> 6 != 2 {
            break;
        }
        let size = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        let Some(pkt) = rest.get(..size) else { break };
        rest = &rest[size..];
        // Padding is only allowed on the last packet; its count is dropped
        // with it (we never write padding).
        let pad = if pkt[0] & 0x20 != 0 {
            usize::from(pkt[size - 1])
        } else {
            0
        };
        let Some(body) = pkt.get(..size.saturating_sub(pad)) else {
            break;
        };
        let count = pkt[0] & 0x1f;
        match pkt[1] {
            SR => report(&mut w, body, count, 28, map),
            RR => report(&mut w, body, count, 8, map),
            SDES => sdes(&mut w, map.to),
            BYE => {
                let start = w.at;
                w.put(&[0x81, BYE, 0, 1]);
                w.put(&map.to.ssrc.to_be_bytes());
                w.done(start);
            }
            RTPFB | PSFB => feedback(&mut w, body, count, map),
            _ => {}
        }
    }
    if w.overflow() {
        return 0;
    }
    w.at
}

/// Writes into a buffer, remembering whether it ran out.
struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(d) = self.buf.get_mut(self.at..self.at + b.len()) {
            d.copy_from_slice(b);
        }
        self.at += b.len();
    }

    fn overflow(&self) -> bool {
        self.at > self.buf.len()
    }

    /// Sets the length field of the packet started at `start`.
    fn done(&mut self, start: usize) {
        let words = ((self.at - start) / 4).saturating_sub(1) as u16;
        if let Some(d) = self.buf.get_mut(start + 2..start + 4) {
            d.copy_from_slice(&words.to_be_bytes());
        }
    }

    fn set_count(&mut self, start: usize, count: u8) {
        if let Some(b) = self.buf.get_mut(start) {
            *b = (*b & 0xe0) | (count & 0x1f);
        }
    }
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// A sender or receiver report: the sender's SSRC ours, the RTP timestamp
/// (SR) in the receiver's leg's timeline, report blocks only about the
/// receiving party's stream, mapped back to its own SSRC and numbers.
fn report(w: &mut Out<'_>, body: &[u8], count: u8, fixed: usize, map: &RtcpMap<'_>) {
    if body.len() < fixed {
        return;
    }
    let start = w.at;
    w.put(&[0x80, body[1], 0, 0]);
    w.put(&map.to.ssrc.to_be_bytes());
    if fixed == 28 {
        // Our clock, never the device's; what it stood for is kept so the
        // other party's reception reports can be mapped back (LSR).
        let theirs = u64::from(u32_at(body, 8).unwrap_or(0)) << 32
            | u64::from(u32_at(body, 12).unwrap_or(0));
        w.put(&map.ntp.to_be_bytes());
        map.from_sr.store(
            u64::from(mid(map.ntp)) << 32 | u64::from(mid(theirs)),
            std::sync::atomic::Ordering::Relaxed,
        );
        let ts = u32_at(body, 16).unwrap_or(0).wrapping_add(map.to.ts);
        w.put(&ts.to_be_bytes());
        w.put(&body[20..28]);
    }
    let mut kept = 0u8;
    for i in 0..usize::from(count) {
        let Some(block) = body.get(fixed + 24 * i..fixed + 24 * (i + 1)) else {
            break;
        };
        let (Some(src), Some(theirs)) = (u32_at(block, 0), map.their_ssrc) else {
            continue;
        };
        if src != map.from.ssrc {
            continue;
        }
        w.put(&theirs.to_be_bytes());
        w.put(&block[4..10]);
        let seq = u16::from_be_bytes([block[10], block[11]]).wrapping_sub(map.from.seq);
        w.put(&seq.to_be_bytes());
        w.put(&block[12..16]);
        // LSR names the receiving party's last SR as we showed it: given
        // back as the party sent it, or zero (no SR) with DLSR.
        let lsr = u32_at(block, 16).unwrap_or(0);
        if lsr != 0 && lsr == (map.to_sr >> 32) as u32 {
            w.put(&(map.to_sr as u32).to_be_bytes());
            w.put(&block[20..24]);
        } else {
            w.put(&[0; 8]);
        }
        kept += 1;
    }
    w.set_count(start, kept);
    w.done(start);
}

/// SDES: one chunk, the leg's SSRC and CNAME; a party's items never cross.
fn sdes(w: &mut Out<'_>, to: &Shown) {
    let start = w.at;
    w.put(&[0x81, SDES, 0, 0]);
    w.put(&to.ssrc.to_be_bytes());
    let name = &to.cname.as_bytes()[..to.cname.len().min(255)];
    w.put(&[1, name.len() as u8]);
    w.put(name);
    // The item list ends with a zero octet, and the chunk on a word.
    let used = 4 + 2 + name.len();
    let end = (used + 1).div_ceil(4) * 4;
    w.put(&[0u8; 4][..end - used]);
    w.done(start);
}

/// NACK (205/1) and PLI (206/1): sender and media SSRC mapped; NACK's
/// sequence numbers back into the receiver's own numbering.
fn feedback(w: &mut Out<'_>, body: &[u8], fmt: u8, map: &RtcpMap<'_>) {
    let nack = body[1] == RTPFB && fmt == 1;
    let pli = body[1] == PSFB && fmt == 1;
    if !(nack || pli) || body.len() < 12 {
        return;
    }
    let (Some(media), Some(theirs)) = (u32_at(body, 8), map.their_ssrc) else {
        return;
    };
    if media != map.from.ssrc {
        return;
    }
    let start = w.at;
    w.put(&body[..4]);
    w.put(&map.to.ssrc.to_be_bytes());
    w.put(&theirs.to_be_bytes());
    if nack {
        for fci in body[12..].chunks_exact(4) {
            let pid = u16::from_be_bytes([fci[0], fci[1]]).wrapping_sub(map.from.seq);
            w.put(&pid.to_be_bytes());
            w.put(&fci[2..4]);
        }
    }
    w.done(start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cname_is_sixteen_hex_digits() {
        for n in [0u64, 0xab, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(cname(n), format!("{n:016x}@sipmask"));
        }
    }

    fn shown(ssrc: u32, seq: u16, ts: u32) -> Shown {
        Shown {
            ssrc,
            seq,
            ts,
            cname: "leg@sipmask".into(),
        }
    }

    #[test]
    fn rtp_gets_the_legs_identity_and_loses_csrcs_and_extensions() {
        // V=2 X=1 CC=1, PT 0, seq 10, ts 1000, SSRC 0xAABBCCDD, CSRC, ext(1 word), payload.
        let mut p = vec![0x91, 0x00, 0, 10, 0, 0, 0x03, 0xe8, 0xaa, 0xbb, 0xcc, 0xdd];
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]);
        p.extend_from_slice(b"audio");
        let len = p.len();
        let (n, heard) = rewrite_rtp(&mut p, len, &shown(7, 5, 100)).expect("rtp");
        assert_eq!(heard.ssrc, 0xaabbccdd);
        assert_eq!(heard.pt, 0);
        assert_eq!(
            &p[..n],
            &[0x80, 0, 0, 15, 0, 0, 0x04, 0x4c, 0, 0, 0, 7, b'a', b'u', b'd', b'i', b'o']
        );
    }

    #[test]
    fn what_is_not_rtp_is_refused() {
        for bad in [
            &[0x80u8; 4][..],
            &[0x40; 20],
            &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200],
        ] {
            let mut b = bad.to_vec();
            assert!(rewrite_rtp(&mut b, bad.len(), &shown(1, 0, 0)).is_none());
        }
    }

    #[test]
    fn rtcp_reports_are_mapped_and_sdes_rebuilt() {
        let to = shown(0x11111111, 0, 50);
        let from = shown(0x22222222, 3, 0);
        let sr = std::sync::atomic::AtomicU64::new(0);
        let map = RtcpMap {
            to: &to,
            from: &from,
            their_ssrc: Some(0x33333333),
            ntp: 0x0102_0304_0506_0708,
            to_sr: 0xaaaa_bbbb_cccc_dddd,
            from_sr: &sr,
        };
        // SR with one block about 0x22222222, then SDES with a number in it, then APP.
        let mut p = vec![0x81, SR, 0, 12, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(&0x1111_2222_3333_4444u64.to_be_bytes()); // the device's NTP
        p.extend_from_slice(&100u32.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&0x22222222u32.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 13]);
        p.extend_from_slice(&[0; 4]); // jitter
        p.extend_from_slice(&0xaaaa_bbbbu32.to_be_bytes()); // LSR: our NTP as shown
        p.extend_from_slice(&16u32.to_be_bytes()); // DLSR
        let cname = b"sip:13800000000@10.0.0.5";
        let mut sd = vec![
            0x81,
            SDES,
            0,
            0,
            0xde,
            0xad,
            0xbe,
            0xef,
            1,
            cname.len() as u8,
        ];
        sd.extend_from_slice(cname);
        while sd.len() % 4 != 0 {
            sd.push(0);
        }
        let words = (sd.len() / 4 - 1) as u16;
        sd[2..4].copy_from_slice(&words.to_be_bytes());
        p.extend_from_slice(&sd);
        p.extend_from_slice(&[
            0x80, 204, 0, 2, 0xde, 0xad, 0xbe, 0xef, b'n', b'a', b'm', b'e',
        ]);
        let mut out = [0u8; 1500];
        let n = rewrite_rtcp(&p, &mut out, &map);
        let o = &out[..n];
        assert_eq!(&o[4..8], &0x11111111u32.to_be_bytes());
        assert_eq!(
            &o[8..16],
            &map.ntp.to_be_bytes(),
            "our clock, not the device's"
        );
        assert_eq!(
            sr.load(std::sync::atomic::Ordering::Relaxed),
            0x0304_0506_2222_3333,
            "what our NTP stood for"
        );
        assert_eq!(&o[44..48], &0xcccc_ddddu32.to_be_bytes(), "LSR given back");
        assert_eq!(&o[48..52], &16u32.to_be_bytes());
        assert_eq!(&o[16..20], &150u32.to_be_bytes());
        assert_eq!(&o[28..32], &0x33333333u32.to_be_bytes());
        assert_eq!(&o[36..40], &[0, 0, 0, 10]);
        assert_eq!(o[52 + 1], SDES);
        let text = String::from_utf8_lossy(o);
        assert!(text.contains("leg@sipmask"));
        for leak in [
            &b"13800000000"[..],
            b"10.0.0.5",
            &[0xde, 0xad, 0xbe, 0xef],
            b"name",
        ] {
            assert!(!o.windows(leak.len()).any(|w| w == leak), "{leak:?}");
        }
        // Every packet's length field adds up to the whole.
        let mut at = 0;
        while at < n {
            at += 4 * (usize::from(u16::from_be_bytes([o[at + 2], o[at + 3]])) + 1);
        }
        assert_eq!(at, n);
    }

    #[test]
    fn truncated_rtcp_yields_nothing_that_overruns() {
        let to = shown(1, 0, 0);
        let sr = std::sync::atomic::AtomicU64::new(0);
        let map = RtcpMap {
            to: &to,
            from: &to,
            their_ssrc: None,
            ntp: 0,
            to_sr: 0,
            from_sr: &sr,
        };
        let mut out = [0u8; 64];
        for bad in [
            &[0x81u8, SR, 0, 40][..],
            &[0x80, RR, 0, 0],
            &[0x81, RR, 0, 1, 0, 0, 0, 1],
        ] {
            let n = rewrite_rtcp(bad, &mut out, &map);
            assert!(n <= out.len());
        }
        assert!(is_rtcp(&[0x80, 200, 0, 1, 0, 0, 0, 0]));
        assert!(!is_rtcp(&[0x80, 0, 0, 1, 0, 0, 0, 0]));
    }
}
