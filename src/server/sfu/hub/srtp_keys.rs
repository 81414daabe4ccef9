//! The SRTP master key of an egress leg, so the hub can encrypt media itself.
//!
//! `rtc` 0.21.1 derives each connection's SRTP keys from its DTLS handshake
//! and keeps the contexts crate-private: media written through the core goes
//! through its whole handler pipeline (about half of the hub's CPU at 200
//! subscribers, `docs/PERFORMANCE.md` §3). The library does take a pluggable
//! crypto provider per connection (`SettingEngineBuilder::with_crypto_provider`)
//! and builds the SRTP contexts with it. [`KeyCapture`] is that provider: it
//! forwards every operation to the library's default provider and records the
//! inputs of the SRTP key derivation, from which [`KeyCapture::local_keys`]
//! recovers the master key and salt the leg encrypts with (much as
//! `SSLKEYLOGFILE` does for TLS). The hub then builds its own
//! `srtp::context::Context` from them and sends media without the core.
//!
//! What is recognised, and why it is safe to rely on:
//!
//! * Only the AEAD AES-GCM profiles (RFC 7714), and an egress leg offers
//!   nothing else in its DTLS handshake (`leg::srtp_profiles`, pinned with
//!   `SettingEngineBuilder::with_srtp_protection_profiles`): there is no
//!   AES-CM derivation on these connections to mistake for a GCM one. The
//!   one exception, a WHEP leg whose player asked for AES-CM, never uses a
//!   captured key: it always sends through its core. A GCM
//!   context's setup runs the AES-CM key derivation (RFC 3711 §4.3.3) for
//!   labels 0, 3, 2, 5 in that order; the first block of each label is
//!   `master_salt ‖ 0…` with the label XORed into byte 7, encrypted under the
//!   master key. Four such blocks under one key, with exactly these label
//!   differences and nothing else differing, identify a context and give its
//!   key and salt.
//! * `rtc` builds the local context before the remote one
//!   (`DtlsHandler::update_srtp_contexts`, version pinned in `Cargo.toml`), so
//!   of the last two contexts derived, the first is ours.
//! * Anything else (an unexpected call pattern after an upgrade of `rtc`)
//!   yields `None`: the leg then sends through its core, and the hub says so
//!   loudly (an error in the log, `egressKeyFailures` in `/metrics`). A wrong
//!   key cannot go unnoticed either: the subscriber would fail to
//!   authenticate every packet, which the hub's tests would catch.

use std::sync::{Arc, Mutex};

use rtc::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher, CryptoAlgorithm,
    CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac, PublicKey, RTCCrypto,
    RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher, StreamCipherAlgorithm,
};
use rtc::srtp::protection_profile::ProtectionProfile;

/// Most key-derivation blocks remembered per connection: one handshake
/// derives 8 (AES-128) or 12 (AES-256) blocks for its two contexts.
const MAX_RECORDED: usize = 64;

/// AES-GCM SRTP master salt length (RFC 7714 §12).
const GCM_SALT_LEN: usize = 12;

/// SRTP labels, in the order `rtc-srtp` derives them for an AEAD context:
/// RTP encryption, RTCP encryption, RTP salt, RTCP salt (RFC 3711 §4.3.2).
const AEAD_LABEL_ORDER: [u8; 4] = [0x00, 0x03, 0x02, 0x05];

/// The master key and salt of one SRTP context.
#[derive(Clone)]
pub struct MasterKeys {
    pub profile: ProtectionProfile,
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
}

impl PartialEq for MasterKeys {
    fn eq(&self, other: &Self) -> bool {
        // `ProtectionProfile` has no `PartialEq`.
        std::mem::discriminant(&self.profile) == std::mem::discriminant(&other.profile)
            && self.key == other.key
            && self.salt == other.salt
    }
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("MasterKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// One `block_encrypt` call: algorithm, key, and the block before encryption.
struct Block {
    algorithm: BlockCipherAlgorithm,
    key: Vec<u8>,
    input: [u8; 16],
}

/// A crypto provider that delegates to another and remembers the SRTP key
/// derivation's inputs (see the module docs).
pub struct KeyCapture {
    inner: Arc<dyn RTCCryptoProvider>,
    blocks: Mutex<Vec<Block>>,
}

impl KeyCapture {
    /// Wraps the library's default provider.
    pub fn new() -> Result<Arc<Self>, CryptoError> {
        Ok(Self::wrapping(rtc::crypto::default_provider()?))
    }

    pub fn wrapping(inner: Arc<dyn RTCCryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            blocks: Mutex::new(Vec::new()),
        })
    }

    /// The operations of the wrapped provider (to build our own context with).
    pub fn inner(&self) -> &dyn RTCCrypto {
        self.inner.crypto()
    }

    /// Drops what was recorded (key material has no business lingering).
    pub fn forget(&self) {
        self.blocks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The keys of the local (sending) SRTP context of the latest handshake,
    /// if it used an AEAD AES-GCM profile.
    pub fn local_keys(&self) -> Option<MasterKeys> {
        let blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        let contexts = aead_contexts(&blocks);
        // The latest handshake derived [local, remote].
        match contexts.as_slice() {
            [.., local, _remote] => Some(local.clone()),
            _ => None,
        }
    }
}

/// Every AEAD context derivation found in `blocks`, in order.
fn aead_contexts(blocks: &[Block]) -> Vec<MasterKeys> {
    // First blocks of a label only: byte 14..16 is the block counter.
    let firsts: Vec<&Block> = blocks.iter().filter(|b| b.input[14..] == [0, 0]).collect();
    let mut found = Vec::new();
    let mut at = 0;
    while at + AEAD_LABEL_ORDER.len() <= firsts.len() {
        let group = &firsts[at..at + AEAD_LABEL_ORDER.len()];
        match context_of(group) {
            Some(keys) => {
                found.push(keys);
                at += AEAD_LABEL_ORDER.len();
            }
            None => at += 1,
        }
    }
    found
}

/// The keys if `group` is exactly one AEAD context's four label blocks.
fn context_of(group: &[&Block]) -> Option<MasterKeys> {
    let first = group.first()?;
    let profile = match (first.algorithm, first.key.len()) {
        (BlockCipherAlgorithm::Aes128, 16) => ProtectionProfile::AeadAes128Gcm,
        (BlockCipherAlgorithm::Aes256, 32) => ProtectionProfile::AeadAes256Gcm,
        _ => return None,
    };
    // The salt is 12 bytes: the block is zero after it (apart from byte 14..16,
    // the counter, already known to be zero).
    if first.input[GCM_SALT_LEN..14] != [0, 0] {
        return None;
    }
    for (block, label) in group.iter().zip(AEAD_LABEL_ORDER) {
        if block.algorithm != first.algorithm || block.key != first.key {
            return None;
        }
        for (i, (a, b)) in block.input.iter().zip(&first.input).enumerate() {
            let expected = if i == 7 { b ^ label } else { *b };
            if *a != expected {
                return None;
            }
        }
    }
    Some(MasterKeys {
        profile,
        key: first.key.clone(),
        salt: first.input[..GCM_SALT_LEN].to_vec(),
    })
}

impl RTCCryptoProvider for KeyCapture {
    fn name(&self) -> &'static str {
        "huddle key capture"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self
    }

    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl RTCCrypto for KeyCapture {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        if let Ok(input) = <[u8; 16]>::try_from(&*block) {
            let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            if blocks.len() == MAX_RECORDED {
                blocks.remove(0);
            }
            blocks.push(Block {
                algorithm,
                key: key.to_vec(),
                input,
            });
        }
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        self.inner.crypto().new_aead(algorithm, key)
    }

    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn rtc::crypto::ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }

    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::{Header, Packet};
    use rtc::shared::marshal::Marshal;
    use rtc::srtp::context::Context;

    fn keys(profile: ProtectionProfile, seed: u8) -> (Vec<u8>, Vec<u8>) {
        let key = (0..profile.key_len() as u8).map(|i| i ^ seed).collect();
        let salt = (0..profile.salt_len() as u8)
            .map(|i| i.wrapping_mul(7) ^ seed)
            .collect();
        (key, salt)
    }

    fn context(capture: &KeyCapture, profile: ProtectionProfile, seed: u8) -> Context {
        let (key, salt) = keys(profile, seed);
        Context::new(&key, &salt, profile, None, None, capture).expect("context")
    }

    fn sealed(context: &mut Context, seq: u16) -> Vec<u8> {
        let packet = Packet {
            header: Header {
                version: 2,
                payload_type: 102,
                sequence_number: seq,
                timestamp: 9000,
                ssrc: 0x1234_5678,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(b"some media payload"),
        };
        let plain = packet.marshal().expect("marshal");
        context
            .encrypt_rtp_with_header(&plain, &packet.header)
            .expect("encrypt")
            .to_vec()
    }

    /// The local context's keys come back, and a context built from them
    /// encrypts exactly as the library's own.
    #[test]
    fn recovers_the_local_context_of_each_aead_profile() {
        for profile in [
            ProtectionProfile::AeadAes128Gcm,
            ProtectionProfile::AeadAes256Gcm,
        ] {
            let capture = KeyCapture::new().expect("provider");
            // As `rtc` does after a handshake: local, then remote.
            let mut local = context(&capture, profile, 0x11);
            let _remote = context(&capture, profile, 0x22);
            let got = capture.local_keys().expect("keys recovered");
            let (key, salt) = keys(profile, 0x11);
            assert_eq!(got, MasterKeys { profile, key, salt }, "{profile:?}");

            let mut ours = Context::new(&got.key, &got.salt, profile, None, None, capture.inner())
                .expect("our context");
            for seq in [1, 2, 65535, 0] {
                assert_eq!(sealed(&mut ours, seq), sealed(&mut local, seq));
            }
        }
    }

    #[test]
    fn a_later_handshake_wins() {
        let profile = ProtectionProfile::AeadAes128Gcm;
        let capture = KeyCapture::new().expect("provider");
        context(&capture, profile, 1);
        context(&capture, profile, 2);
        context(&capture, profile, 3);
        context(&capture, profile, 4);
        assert_eq!(capture.local_keys().expect("keys").key, keys(profile, 3).0);
        capture.forget();
        assert!(capture.local_keys().is_none(), "forgotten");
    }

    #[test]
    fn nothing_without_two_aead_contexts() {
        let capture = KeyCapture::new().expect("provider");
        assert!(capture.local_keys().is_none());
        context(&capture, ProtectionProfile::AeadAes128Gcm, 1);
        assert!(
            capture.local_keys().is_none(),
            "one context is not a handshake"
        );

        // AES-CM profiles derive differently: not recognised.
        let capture = KeyCapture::new().expect("provider");
        context(&capture, ProtectionProfile::Aes128CmHmacSha1_80, 1);
        context(&capture, ProtectionProfile::Aes128CmHmacSha1_80, 2);
        assert!(capture.local_keys().is_none());
    }

    #[test]
    fn debug_output_hides_the_key() {
        let profile = ProtectionProfile::AeadAes128Gcm;
        let (key, salt) = keys(profile, 9);
        let shown = format!("{:?}", MasterKeys { profile, key, salt });
        assert!(
            !shown.contains("key:") && !shown.contains("salt"),
            "{shown}"
        );
    }
}
