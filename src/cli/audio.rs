//! WAV files as audio frames: 16-bit PCM, 20 ms per frame, little-endian
//! samples as the (opaque to the switch) payload.

use std::path::Path;

use anyhow::{bail, Context};

/// Frames per second: one frame every 20 ms.
pub const FRAMES_PER_SECOND: u32 = 50;

/// A WAV file cut into 20 ms payloads.
pub struct WavFrames {
    pub sample_rate: u32,
    pub frames: Vec<Vec<u8>>,
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
    let per_frame = (spec.sample_rate / FRAMES_PER_SECOND).max(1) as usize;
    let frames = samples
        .chunks(per_frame)
        .map(|chunk| chunk.iter().flat_map(|s| s.to_le_bytes()).collect())
        .collect();
    Ok(WavFrames {
        sample_rate: spec.sample_rate,
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
