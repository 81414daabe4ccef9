//! Codec throughput through the product's code path (`huddle::media`): OpenH264
//! 720p encode/decode frames per second and Opus encode/decode real-time factor.
//!
//! `cargo bench --bench codecs` (release profile). Prints a markdown table and
//! writes JSON to `$BENCH_OUT/codecs.json` (default `target/bench-results`).
//! Frames are generated before the clock starts: only the codec is timed.

use std::time::Instant;

use huddle::media::{
    AudioSource, H264Decoder, H264Encoder, OpusDecoder, OpusEncoder, SyntheticAudio,
    SyntheticVideo, VideoSource,
};

const VIDEO_FRAMES: usize = 300;
const VIDEO_W: u32 = 1280;
const VIDEO_H: u32 = 720;
const VIDEO_FPS: u32 = 30;
const VIDEO_BPS: u32 = 1_500_000;
/// 60 s of 20 ms frames.
const AUDIO_FRAMES: usize = 3_000;

/// Encode then decode `frames`; returns (encode fps, decode fps, decoded, kbit/s at 30 fps).
fn h264(
    frames: &[huddle::media::I420Frame],
) -> Result<(f64, f64, usize, f64), Box<dyn std::error::Error>> {
    let mut encoder = H264Encoder::new(VIDEO_W, VIDEO_H, VIDEO_FPS, VIDEO_BPS)?;
    let mut units = Vec::with_capacity(frames.len());
    let start = Instant::now();
    for (i, frame) in frames.iter().enumerate() {
        units.push(encoder.encode(frame, i == 0)?.data);
    }
    let encode_s = start.elapsed().as_secs_f64();
    let bytes: usize = units.iter().map(Vec::len).sum::<usize>();

    let mut decoder = H264Decoder::new()?;
    let mut decoded = 0usize;
    let start = Instant::now();
    for unit in units.iter().filter(|u| !u.is_empty()) {
        if decoder.decode(unit)?.is_some() {
            decoded += 1;
        }
    }
    let decode_s = start.elapsed().as_secs_f64();
    Ok((
        frames.len() as f64 / encode_s,
        decoded as f64 / decode_s,
        decoded,
        bytes as f64 * 8.0 / (frames.len() as f64 / 30.0) / 1000.0,
    ))
}

/// Adds fresh pseudo-random luma noise (as `huddle bot --noise` does), so the
/// encoder works at its bitrate cap instead of on a mostly static picture.
fn add_noise(frame: &mut huddle::media::I420Frame, state: &mut u64) {
    for chunk in frame.y.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        for (px, byte) in chunk.iter_mut().zip(state.to_le_bytes()) {
            *px = px.saturating_add(byte >> 3);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut source = SyntheticVideo::new(VIDEO_W, VIDEO_H, VIDEO_FPS);
    let mut frames = Vec::with_capacity(VIDEO_FRAMES);
    for _ in 0..VIDEO_FRAMES {
        frames.push(source.next_frame()?.ok_or("video source ended")?);
    }
    let (encode_fps, decode_fps, decoded, kbps) = h264(&frames)?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for frame in &mut frames {
        add_noise(frame, &mut state);
    }
    let (noisy_encode_fps, noisy_decode_fps, noisy_decoded, noisy_kbps) = h264(&frames)?;

    let mut audio = SyntheticAudio::new(440.0, 48_000, 1);
    let mut pcm = Vec::with_capacity(AUDIO_FRAMES);
    for _ in 0..AUDIO_FRAMES {
        pcm.push(audio.next_frame()?.ok_or("audio source ended")?);
    }
    let mut opus_enc = OpusEncoder::new(48_000, 1, 40_000)?;
    let start = Instant::now();
    let mut packets = Vec::with_capacity(AUDIO_FRAMES);
    for frame in &pcm {
        packets.push(opus_enc.encode(frame)?);
    }
    let opus_encode_s = start.elapsed().as_secs_f64();
    let mut opus_dec = OpusDecoder::new(48_000, 1)?;
    let start = Instant::now();
    for packet in &packets {
        opus_dec.decode(packet)?;
    }
    let opus_decode_s = start.elapsed().as_secs_f64();
    let audio_s = AUDIO_FRAMES as f64 * 0.020;

    let result = serde_json::json!({
        "h264_pattern": {
            "width": VIDEO_W, "height": VIDEO_H, "frames": VIDEO_FRAMES,
            "target_bitrate_bps": VIDEO_BPS, "encoded_kbit_per_s_at_30fps": kbps,
            "encode_fps": encode_fps, "decoded_frames": decoded, "decode_fps": decode_fps,
        },
        "h264_pattern_with_noise": {
            "width": VIDEO_W, "height": VIDEO_H, "frames": VIDEO_FRAMES,
            "target_bitrate_bps": VIDEO_BPS, "encoded_kbit_per_s_at_30fps": noisy_kbps,
            "encode_fps": noisy_encode_fps, "decoded_frames": noisy_decoded,
            "decode_fps": noisy_decode_fps,
        },
        "opus": {
            "sample_rate": 48_000, "channels": 1, "bitrate_bps": 40_000,
            "audio_seconds": audio_s,
            "encode_rtf": opus_encode_s / audio_s,
            "decode_rtf": opus_decode_s / audio_s,
        },
    });
    println!("| codec | input | operation | result |");
    println!("|---|---|---|---|");
    println!(
        "| OpenH264 1280×720, {VIDEO_FRAMES} frames, {} kbit/s target | test pattern ({kbps:.0} kbit/s at 30 fps) | encode | {encode_fps:.1} fps |",
        VIDEO_BPS / 1000
    );
    println!(
        "| OpenH264 1280×720 | test pattern | decode | {decode_fps:.1} fps ({decoded} frames) |"
    );
    println!(
        "| OpenH264 1280×720, {VIDEO_FRAMES} frames, {} kbit/s target | pattern + luma noise ({noisy_kbps:.0} kbit/s at 30 fps) | encode | {noisy_encode_fps:.1} fps |",
        VIDEO_BPS / 1000
    );
    println!(
        "| OpenH264 1280×720 | pattern + luma noise | decode | {noisy_decode_fps:.1} fps ({noisy_decoded} frames) |"
    );
    println!(
        "| Opus 48 kHz mono 40 kbit/s | {audio_s:.0} s tone | encode | RTF {:.4} |",
        opus_encode_s / audio_s
    );
    println!(
        "| Opus 48 kHz mono | {audio_s:.0} s tone | decode | RTF {:.4} |",
        opus_decode_s / audio_s
    );
    let dir = std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench-results".into());
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        format!("{dir}/codecs.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    Ok(())
}
