//! Opus audio encoding/decoding via libopus, configured for voice calls.
//!
//! Why this exists: WebRTC audio is Opus; the client encodes the microphone
//! (or [`super::ToneSource`]) and the receiving side decodes, concealing lost
//! packets. Invariants: encoder and decoder are bound to one sample rate
//! (8/12/16/24/48 kHz) and 1 or 2 channels for their lifetime; the encoder uses
//! the VOIP application (low-delay speech/music mix) at a fixed target bitrate;
//! packet-loss concealment produces one frame of the last packet's duration
//! ([`super::AUDIO_FRAME_MS`] if nothing was decoded yet).

use super::MediaError;
use super::frame::{AudioFrame, samples_per_frame};
use opus::{Application, Bitrate, Channels};

/// Maximum Opus packet size recommended by libopus.
const MAX_PACKET: usize = 4000;

fn opus_err(op: &'static str) -> impl FnOnce(opus::Error) -> MediaError {
    move |e| MediaError::Opus {
        op,
        message: e.to_string(),
    }
}

fn check_format(sample_rate: u32, channels: u16) -> Result<Channels, MediaError> {
    if !matches!(sample_rate, 8000 | 12_000 | 16_000 | 24_000 | 48_000) {
        return Err(MediaError::InvalidParameter(format!(
            "opus sample rate {sample_rate} not in 8/12/16/24/48 kHz"
        )));
    }
    match channels {
        1 => Ok(Channels::Mono),
        2 => Ok(Channels::Stereo),
        _ => Err(MediaError::InvalidParameter(format!(
            "opus supports 1 or 2 channels, got {channels}"
        ))),
    }
}

/// Opus encoder (VOIP application).
pub struct OpusEncoder {
    inner: opus::Encoder,
    sample_rate: u32,
    channels: u16,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// The loss the encoder plans its in-band FEC for, percent. Above 0 libopus
/// puts a low-rate copy of each frame in the next packet; at 10 % it spends
/// roughly a fifth of the bitrate on it at the profiles' rates.
pub const EXPECTED_LOSS_PERCENT: i32 = 10;

impl OpusEncoder {
    /// Creates an encoder at `bitrate_bps` (e.g. 40 000 for the `standard` profile).
    ///
    /// # Errors
    /// [`MediaError::InvalidParameter`] for unsupported rates/channels,
    /// [`MediaError::Opus`] if libopus rejects the configuration.
    pub fn new(sample_rate: u32, channels: u16, bitrate_bps: u32) -> Result<Self, MediaError> {
        let ch = check_format(sample_rate, channels)?;
        let bps = i32::try_from(bitrate_bps)
            .map_err(|_| MediaError::InvalidParameter(format!("bitrate {bitrate_bps}")))?;
        let mut inner =
            opus::Encoder::new(sample_rate, ch, Application::Voip).map_err(opus_err("create"))?;
        inner
            .set_bitrate(Bitrate::Bits(bps))
            .map_err(opus_err("set_bitrate"))?;
        // In-band FEC lets a receiver rebuild a lost packet from the next one
        // ([`OpusDecoder::decode_fec`]). libopus only adds it when it expects
        // loss, so it is told to expect some.
        inner
            .set_inband_fec(true)
            .map_err(opus_err("set_inband_fec"))?;
        inner
            .set_packet_loss_perc(EXPECTED_LOSS_PERCENT)
            .map_err(opus_err("set_packet_loss_perc"))?;
        Ok(Self {
            inner,
            sample_rate,
            channels,
        })
    }

    /// Changes the loss (percent, 0–100) the in-band FEC is planned for;
    /// 0 turns FEC off.
    ///
    /// # Errors
    /// [`MediaError::Opus`] if libopus rejects the value.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), MediaError> {
        let percent = percent.min(100);
        self.inner
            .set_inband_fec(percent > 0)
            .map_err(opus_err("set_inband_fec"))?;
        self.inner
            .set_packet_loss_perc(i32::from(percent))
            .map_err(opus_err("set_packet_loss_perc"))
    }

    /// Changes the target bitrate.
    ///
    /// # Errors
    /// [`MediaError::Opus`] if libopus rejects the value.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), MediaError> {
        let bps = i32::try_from(bitrate_bps)
            .map_err(|_| MediaError::InvalidParameter(format!("bitrate {bitrate_bps}")))?;
        self.inner
            .set_bitrate(Bitrate::Bits(bps))
            .map_err(opus_err("set_bitrate"))
    }

    /// Encodes one frame (2.5-60 ms; normally [`super::AUDIO_FRAME_MS`]) to an Opus packet.
    ///
    /// # Errors
    /// [`MediaError::FrameMismatch`] if the frame's rate/channels differ from
    /// the encoder's; [`MediaError::Opus`] for invalid durations.
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<u8>, MediaError> {
        if frame.sample_rate != self.sample_rate || frame.channels != self.channels {
            return Err(MediaError::FrameMismatch(format!(
                "audio {} Hz x{} into encoder {} Hz x{}",
                frame.sample_rate, frame.channels, self.sample_rate, self.channels
            )));
        }
        if !frame
            .samples
            .len()
            .is_multiple_of(usize::from(self.channels))
        {
            return Err(MediaError::FrameMismatch(
                "sample count not a multiple of channels".into(),
            ));
        }
        self.inner
            .encode_vec(&frame.samples, MAX_PACKET)
            .map_err(opus_err("encode"))
    }
}

/// Whether an Opus packet carries in-band FEC (LBRR) data for the frame
/// before it.
pub fn has_fec(packet: &[u8]) -> bool {
    // libopus reads the TOC byte before it looks at the length.
    let Ok(len @ 1..) = i32::try_from(packet.len()) else {
        return false;
    };
    // SAFETY: libopus reads at most `len` bytes from `packet`, which lives
    // for the call; it returns 1, 0 or a negative error code.
    unsafe { opusic_sys::opus_packet_has_lbrr(packet.as_ptr(), len) == 1 }
}

/// Opus decoder with packet-loss concealment.
pub struct OpusDecoder {
    inner: opus::Decoder,
    sample_rate: u32,
    channels: u16,
    /// Samples per channel of the last decoded packet (PLC length).
    last_frame: usize,
    buf: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// Creates a decoder producing `sample_rate` Hz, `channels`-channel PCM.
    ///
    /// # Errors
    /// [`MediaError::InvalidParameter`] or [`MediaError::Opus`].
    pub fn new(sample_rate: u32, channels: u16) -> Result<Self, MediaError> {
        let ch = check_format(sample_rate, channels)?;
        let inner = opus::Decoder::new(sample_rate, ch).map_err(opus_err("create"))?;
        // 120 ms is the longest possible Opus packet.
        let max = sample_rate as usize * 120 / 1000 * usize::from(channels);
        Ok(Self {
            inner,
            sample_rate,
            channels,
            last_frame: samples_per_frame(sample_rate),
            buf: vec![0; max],
        })
    }

    /// Decodes one packet.
    ///
    /// # Errors
    /// [`MediaError::Opus`] for corrupt packets (an empty packet is also
    /// rejected: use [`OpusDecoder::decode_lost`] for losses).
    pub fn decode(&mut self, packet: &[u8]) -> Result<AudioFrame, MediaError> {
        if packet.is_empty() {
            return Err(MediaError::Opus {
                op: "decode",
                message: "empty packet (use decode_lost for a lost packet)".into(),
            });
        }
        let n = self
            .inner
            .decode(packet, &mut self.buf, false)
            .map_err(opus_err("decode"))?;
        self.last_frame = n;
        Ok(self.frame(n))
    }

    /// Rebuilds the frame lost just before `next` from the in-band FEC data
    /// `next` carries (an encoder with FEC on and an expected loss above 0
    /// adds it, see [`has_fec`]); without such data libopus conceals as
    /// [`Self::decode_lost`]. Decode `next` itself afterwards as usual.
    ///
    /// # Errors
    /// [`MediaError::Opus`] for a corrupt packet.
    pub fn decode_fec(&mut self, next: &[u8]) -> Result<AudioFrame, MediaError> {
        let len = (self.last_frame * usize::from(self.channels)).min(self.buf.len());
        let n = self
            .inner
            .decode(next, &mut self.buf[..len], true)
            .map_err(opus_err("decode_fec"))?;
        Ok(self.frame(n))
    }

    /// Synthesises one frame for a lost packet (packet-loss concealment).
    ///
    /// # Errors
    /// [`MediaError::Opus`] if libopus fails.
    pub fn decode_lost(&mut self) -> Result<AudioFrame, MediaError> {
        let len = (self.last_frame * usize::from(self.channels)).min(self.buf.len());
        let n = self
            .inner
            .decode(&[], &mut self.buf[..len], false)
            .map_err(opus_err("decode_lost"))?;
        Ok(self.frame(n))
    }

    fn frame(&self, per_channel: usize) -> AudioFrame {
        let len = (per_channel * usize::from(self.channels)).min(self.buf.len());
        AudioFrame {
            sample_rate: self.sample_rate,
            channels: self.channels,
            samples: self.buf[..len].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analysis::{dominant_frequency, rms_level};
    use crate::media::tone::ToneSource;

    fn round_trip(freq: f32, rate: u32, channels: u16, bps: u32) -> f32 {
        let mut tone = ToneSource::new(freq, rate, channels, 0.5);
        let mut enc = OpusEncoder::new(rate, channels, bps).expect("enc");
        let mut dec = OpusDecoder::new(rate, channels).expect("dec");
        let mut out = Vec::new();
        for i in 0..75 {
            let pkt = enc.encode(&tone.next_frame()).expect("encode");
            assert!(!pkt.is_empty() && pkt.len() < 1000);
            let f = dec.decode(&pkt).expect("decode");
            assert_eq!(
                f.samples.len(),
                samples_per_frame(rate) * usize::from(channels)
            );
            // Skip the first 500 ms (codec warm-up), keep 1 s.
            if i >= 25 {
                out.extend_from_slice(&f.samples);
            }
        }
        assert!(rms_level(&out) > 0.2, "level {}", rms_level(&out));
        dominant_frequency(&out, channels, rate).unwrap_or(0.0)
    }

    #[test]
    fn tone_survives_opus() {
        for (f, rate, ch, bps) in [
            (440.0, 48_000, 1, 40_000),
            (1000.0, 48_000, 1, 40_000),
            (1000.0, 16_000, 1, 24_000),
            (440.0, 48_000, 2, 64_000),
        ] {
            let got = round_trip(f, rate, ch, bps);
            eprintln!("opus {f} Hz @ {rate} Hz x{ch}, {bps} bit/s -> {got} Hz");
            assert!((got - f).abs() <= 2.0, "{f} Hz @ {rate}/{ch} -> {got}");
        }
    }

    /// A frame lost where the sound changes: concealment extrapolates the old
    /// tone, the in-band FEC copy in the next packet has the new one.
    #[test]
    fn fec_rebuilds_a_lost_frame_that_concealment_cannot() {
        let mut enc = OpusEncoder::new(48_000, 1, 40_000).expect("enc");
        let mut low = ToneSource::new(440.0, 48_000, 1, 0.5);
        let mut high = ToneSource::new(1500.0, 48_000, 1, 0.5);
        let mut packets: Vec<Vec<u8>> = (0..50)
            .map(|_| enc.encode(&low.next_frame()).expect("encode"))
            .collect();
        packets.extend((0..5).map(|_| enc.encode(&high.next_frame()).expect("encode")));
        let lost = 50; // the first frame of the new tone
        let rebuilt = |fec: bool| {
            let mut dec = OpusDecoder::new(48_000, 1).expect("dec");
            for p in &packets[..lost] {
                dec.decode(p).expect("decode");
            }
            let frame = if fec {
                dec.decode_fec(&packets[lost + 1]).expect("fec")
            } else {
                dec.decode_lost().expect("plc")
            };
            assert_eq!(frame.samples.len(), 960);
            dominant_frequency(&frame.samples, 1, 48_000).unwrap_or(0.0)
        };
        assert!(has_fec(&packets[lost + 1]), "FEC data in the packet after");
        assert!(!has_fec(&[]));
        let (fec, plc) = (rebuilt(true), rebuilt(false));
        eprintln!("lost frame: FEC {fec} Hz, concealment {plc} Hz");
        assert!((fec - 1500.0).abs() <= 100.0, "FEC gave {fec} Hz");
        assert!((plc - 1500.0).abs() > 100.0, "concealment gave {plc} Hz");
    }

    #[test]
    fn plc_and_errors() {
        let mut enc = OpusEncoder::new(48_000, 1, 40_000).expect("enc");
        let mut dec = OpusDecoder::new(48_000, 1).expect("dec");
        let mut tone = ToneSource::new(440.0, 48_000, 1, 0.5);
        let pkt = enc.encode(&tone.next_frame()).expect("encode");
        dec.decode(&pkt).expect("decode");
        let lost = dec.decode_lost().expect("plc");
        assert_eq!(lost.samples.len(), 960);
        assert!(dec.decode(&[]).is_err());
        assert!(enc.encode(&AudioFrame::silence(16_000, 1)).is_err());
        assert!(OpusEncoder::new(44_100, 1, 40_000).is_err());
        assert!(OpusDecoder::new(48_000, 3).is_err());
    }
}
