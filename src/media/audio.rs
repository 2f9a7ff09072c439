//! Audio the relay itself handles: G.711 (payload types 0 and 8) decoded
//! for recordings and encoded for prompts, and prompts loaded from WAV
//! files.

use std::path::Path;
use std::sync::Arc;

/// PCMU's static payload type.
pub const PCMU: u8 = 0;
/// PCMA's static payload type.
pub const PCMA: u8 = 8;
/// Samples in 20 ms at 8 kHz: one packet.
pub const FRAME: usize = 160;

/// Whether the relay can decode and encode payload type `pt`.
pub fn is_g711(pt: u8) -> bool {
    pt == PCMU || pt == PCMA
}

/// One G.711 byte as a linear sample.
pub fn decode(pt: u8, b: u8) -> i16 {
    if pt == PCMA {
        audio_codec_algorithms::decode_alaw(b)
    } else {
        audio_codec_algorithms::decode_ulaw(b)
    }
}

/// One linear sample as a G.711 byte.
pub fn encode(pt: u8, s: i16) -> u8 {
    if pt == PCMA {
        audio_codec_algorithms::encode_alaw(s)
    } else {
        audio_codec_algorithms::encode_ulaw(s)
    }
}

/// Why a prompt cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// Unreadable or not WAV.
    #[error("{0}")]
    Wav(#[from] hound::Error),
    /// Not what the relay plays.
    #[error("must be 8000 Hz mono 16-bit PCM (sox in.wav -r 8000 -c 1 -b 16 out.wav), is {0} Hz, {1} channel(s), {2}-bit")]
    Format(u32, u16, u16),
    /// No sound in it.
    #[error("has no samples")]
    Empty,
}

/// A prompt: 8 kHz linear samples, shared by every call that plays it.
#[derive(Clone, Debug)]
pub struct Prompt(pub Arc<[i16]>);

impl Prompt {
    /// Loads an 8 kHz mono 16-bit WAV file.
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let mut r = hound::WavReader::open(path)?;
        let s = r.spec();
        if s.sample_rate != 8000
            || s.channels != 1
            || s.bits_per_sample != 16
            || s.sample_format != hound::SampleFormat::Int
        {
            return Err(PromptError::Format(
                s.sample_rate,
                s.channels,
                s.bits_per_sample,
            ));
        }
        let samples = r.samples::<i16>().collect::<Result<Vec<_>, _>>()?;
        if samples.is_empty() {
            return Err(PromptError::Empty);
        }
        Ok(Prompt(samples.into()))
    }

    /// How long it plays.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.len() as u64 / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_round_trips_within_its_quantisation() {
        for pt in [PCMU, PCMA] {
            for s in [0i16, 100, -100, 1000, -1000, 12000, -32000] {
                let back = decode(pt, encode(pt, s));
                assert!((i32::from(back) - i32::from(s)).abs() <= i32::from(s).abs() / 16 + 16);
            }
        }
    }

    #[test]
    fn only_8khz_mono_16bit_wav_is_a_prompt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, rate: u32, ch: u16, n: usize| {
            let p = dir.path().join(name);
            let spec = hound::WavSpec {
                channels: ch,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(&p, spec).expect("create");
            for i in 0..n {
                w.write_sample((i % 100) as i16).expect("write");
            }
            w.finalize().expect("finalize");
            p
        };
        let ok = Prompt::load(&write("ok.wav", 8000, 1, 8000)).expect("loads");
        assert_eq!(ok.duration(), std::time::Duration::from_secs(1));
        assert!(matches!(
            Prompt::load(&write("cd.wav", 44100, 2, 100)),
            Err(PromptError::Format(44100, 2, 16))
        ));
        assert!(matches!(
            Prompt::load(&write("empty.wav", 8000, 1, 0)),
            Err(PromptError::Empty)
        ));
        std::fs::write(dir.path().join("junk.wav"), b"not a wav").expect("write");
        assert!(Prompt::load(&dir.path().join("junk.wav")).is_err());
    }
}
