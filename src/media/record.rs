//! Call recordings: what each party sends, decoded from G.711, written at
//! its place in time into a raw file per party while the call lasts (a
//! positional write per packet; gaps stay silence), then joined into one
//! stereo WAV, the caller left and the callee right.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::audio;

/// Samples per second.
const RATE: u64 = 8000;
/// A timestamp further than this from the last is a new stream, not a gap.
const JUMP: u64 = RATE * 60;

/// A recording in progress.
#[derive(Debug)]
pub struct Recorder {
    /// The finished file.
    path: PathBuf,
    raw: [PathBuf; 2],
    files: [File; 2],
    /// When recording started (coarse ms).
    start_ms: u64,
    /// Per party: (RTP timestamp, sample position) of the stream's anchor.
    base: [Mutex<Option<(u32, u64)>>; 2],
}

impl Recorder {
    /// Starts recording into `dir/name.wav`.
    pub fn start(dir: &Path, name: &str, start_ms: u64) -> std::io::Result<Recorder> {
        std::fs::create_dir_all(dir)?;
        let raw = [
            dir.join(format!(".{name}.a.raw")),
            dir.join(format!(".{name}.b.raw")),
        ];
        let files = [File::create(&raw[0])?, File::create(&raw[1])?];
        Ok(Recorder {
            path: dir.join(format!("{name}.wav")),
            raw,
            files,
            start_ms,
            base: Default::default(),
        })
    }

    /// Writes one packet's audio from party `party` (0: A, 1: B), with
    /// its RTP timestamp, arrived at `now_ms`.
    pub fn write(&self, party: usize, pt: u8, ts: u32, payload: &[u8], now_ms: u64) {
        if !audio::is_g711(pt) || payload.is_empty() {
            return;
        }
        let here = now_ms.saturating_sub(self.start_ms) * RATE / 1000;
        let pos = {
            let mut base = self.base[party].lock().unwrap_or_else(|e| e.into_inner());
            let pos = base.map(|(t, p)| p + u64::from(ts.wrapping_sub(t)));
            match pos {
                // Within reach of where it arrived: the timestamp places it.
                Some(pos) if pos.abs_diff(here) < JUMP => pos,
                // First packet, or the sender restarted its clock.
                _ => {
                    *base = Some((ts, here));
                    here
                }
            }
        };
        let mut pcm = [0u8; 2 * 2048];
        let n = payload.len().min(2048);
        for (i, b) in payload[..n].iter().enumerate() {
            pcm[2 * i..2 * i + 2].copy_from_slice(&audio::decode(pt, *b).to_le_bytes());
        }
        if let Err(e) = self.files[party].write_at(&pcm[..2 * n], pos * 2) {
            tracing::warn!(error = %e, "recording write failed");
        }
    }

    /// Joins the parties into the stereo WAV; returns its path and length
    /// in seconds. Blocking: run it off the relay's tasks.
    pub fn finish(&self) -> std::io::Result<(PathBuf, f64)> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: RATE as u32,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let io = |e: hound::Error| std::io::Error::other(e.to_string());
        let mut w = hound::WavWriter::create(&self.path, spec).map_err(io)?;
        let lens = [
            self.files[0].metadata()?.len(),
            self.files[1].metadata()?.len(),
        ];
        let frames = lens[0].max(lens[1]) / 2;
        let mut readers = [
            BufReader::new(File::open(&self.raw[0])?),
            BufReader::new(File::open(&self.raw[1])?),
        ];
        for i in 0..frames {
            for (c, r) in readers.iter_mut().enumerate() {
                let mut s = [0u8; 2];
                // The shorter party is silent past its end.
                if i * 2 < lens[c] {
                    r.read_exact(&mut s)?;
                }
                w.write_sample(i16::from_le_bytes(s)).map_err(io)?;
            }
        }
        w.finalize().map_err(io)?;
        for r in &self.raw {
            let _ = std::fs::remove_file(r);
        }
        Ok((self.path.clone(), frames as f64 / RATE as f64))
    }
}

/// Deletes recordings in `dir` last written more than `keep` ago (and
/// raw files a crash left behind); returns how many went.
pub fn sweep(dir: &Path, keep: std::time::Duration) -> std::io::Result<usize> {
    let mut gone = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        let path = e.path();
        let ours = path.extension().is_some_and(|x| x == "wav" || x == "raw");
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > keep);
        if ours && old && std::fs::remove_file(&path).is_ok() {
            gone += 1;
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_parties_become_two_channels_in_their_place_in_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Recorder::start(dir.path(), "call1", 1000).expect("start");
        let loud = [audio::encode(audio::PCMU, 8000); 160];
        // A talks for 1 s from the start; B for 0.5 s from 0.5 s on.
        for i in 0..50u32 {
            r.write(0, audio::PCMU, 7 + i * 160, &loud, 1000 + u64::from(i) * 20);
        }
        for i in 0..25u32 {
            r.write(
                1,
                audio::PCMA,
                99 + i * 160,
                &[audio::encode(audio::PCMA, -8000); 160],
                1500 + u64::from(i) * 20,
            );
        }
        let (path, secs) = r.finish().expect("finish");
        assert!((secs - 1.0).abs() < 0.01, "{secs}");
        let mut rd = hound::WavReader::open(path).expect("wav");
        assert_eq!(rd.spec().channels, 2);
        let s: Vec<i16> = rd.samples::<i16>().map(|s| s.expect("sample")).collect();
        let (a, b): (Vec<i16>, Vec<i16>) = (
            s.iter().step_by(2).copied().collect(),
            s.iter().skip(1).step_by(2).copied().collect(),
        );
        assert!(a[..8000].iter().all(|v| *v > 7000));
        assert!(b[..4000].iter().all(|v| *v == 0), "B was silent at first");
        assert!(b[4000..8000].iter().all(|v| *v < -7000));
        assert!(!dir.path().join(".call1.a.raw").exists());
        // Retention: nothing is older than a day yet; everything is older than 0.
        assert_eq!(
            sweep(dir.path(), std::time::Duration::from_secs(86400)).expect("sweep"),
            0
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            sweep(dir.path(), std::time::Duration::from_millis(1)).expect("sweep"),
            1
        );
        assert_eq!(
            sweep(&dir.path().join("none"), std::time::Duration::ZERO).expect("sweep"),
            0
        );
    }
}
