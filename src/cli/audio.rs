//! WAV files as audio frames: 16-bit PCM, 20 ms per frame, little-endian
//! samples as the (opaque to the switch) payload.

use std::path::Path;

use anyhow::{bail, Context};

/// Frames per second at low sample rates: one frame every 20 ms.
pub const FRAMES_PER_SECOND: u32 = 50;

/// Largest payload sent in one datagram: QUIC datagrams must fit a packet
/// (about 1,200 bytes on the safe side), header and overhead included.
pub const MAX_PAYLOAD: usize = 1000;

/// A WAV file cut into payloads of 20 ms (or less at high sample rates, so
/// that a frame fits a datagram).
pub struct WavFrames {
    pub sample_rate: u32,
    pub samples_per_frame: u32,
    pub frames: Vec<Vec<u8>>,
}

impl WavFrames {
    /// Time between frames.
    pub fn frame_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            self.samples_per_frame as f64 / self.sample_rate.max(1) as f64,
        )
    }
}

/// Samples per frame: 20 ms, halved until a frame fits `MAX_PAYLOAD`.
pub fn samples_per_frame(sample_rate: u32) -> u32 {
    let mut n = (sample_rate / FRAMES_PER_SECOND).max(1);
    while n as usize * 2 > MAX_PAYLOAD && n > 1 {
        n /= 2;
    }
    n
}

/// Reads a mono (or first-channel of a multi-channel) 16-bit PCM WAV.
pub fn read_wav(path: &Path) -> anyhow::Result<WavFrames> {
    let mut reader =
        hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        bail!(
            "{}: only 16-bit PCM WAV files are supported",
            path.display()
        );
    }
    let channels = spec.channels.max(1) as usize;
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .step_by(channels)
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", path.display()))?;
    let per_frame = samples_per_frame(spec.sample_rate);
    let frames = samples
        .chunks(per_frame as usize)
        .map(|chunk| chunk.iter().flat_map(|s| s.to_le_bytes()).collect())
        .collect();
    Ok(WavFrames {
        sample_rate: spec.sample_rate,
        samples_per_frame: per_frame,
        frames,
    })
}

/// Writes received payloads as a mono 16-bit WAV.
pub struct WavRecorder {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
}

impl WavRecorder {
    pub fn create(path: &Path, sample_rate: u32) -> anyhow::Result<Self> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(WavRecorder { writer })
    }

    pub fn write_payload(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        for pair in payload.chunks_exact(2) {
            self.writer
                .write_sample(i16::from_le_bytes([pair[0], pair[1]]))?;
        }
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<()> {
        self.writer.finalize()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_fit_a_datagram_at_any_rate() {
        assert_eq!(samples_per_frame(8000), 160);
        assert_eq!(samples_per_frame(16000), 320);
        for rate in [8000, 16000, 44100, 48000, 96000] {
            assert!(
                samples_per_frame(rate) as usize * 2 <= MAX_PAYLOAD,
                "{rate}"
            );
        }
    }
}
