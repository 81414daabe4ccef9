//! Signature renewal, the actor's side (seed `signature-expired`,
//! `renewSignature`): [`Session::renew_signature`] for the application's own
//! renewals, [`Session::on_signature_expired`] for the server's warning,
//! which an app-key credential answers by itself.
//!
//! The session's [`Credential`] is kept current: a renewal the application
//! made replaces a signature credential, so whatever signs again later (a
//! role switch, a rejoin) does not present the expired one.

use super::{Session, signed};
use crate::client::{ClientResult, Credential, RoomEvent};
use crate::protocol::{ErrorCode, Reply, Request};

impl Session {
    /// `renew-signature` with the given pair; on success it becomes the
    /// session's credential (an app key stays an app key).
    pub(super) async fn renew_signature(
        &mut self,
        ctime: u64,
        signature: String,
    ) -> ClientResult<()> {
        let signal = self.signal()?;
        self.identity()?;
        let reply = signal
            .request(Request::RenewSignature {
                ctime,
                signature: signature.clone(),
                room_id: None,
            })
            .await?;
        if !matches!(reply, Reply::Ok) {
            return Err(super::unexpected(&reply));
        }
        if let Some(identity) = &mut self.identity
            && let Credential::Signature { .. } = identity.credential
        {
            identity.credential = Credential::Signature { ctime, signature };
        }
        Ok(())
    }

    /// The server warned that the signature runs out at `ctime`. With an app
    /// key a fresh signature is made and sent at once (in a task: the actor
    /// goes on); the application hears of the warning either way, and of a
    /// failed automatic renewal as [`RoomEvent::Error`].
    pub(super) fn on_signature_expired(&mut self, code: ErrorCode, message: String, ctime: u64) {
        let renewal = match (&self.identity, self.signal.clone()) {
            (Some(identity), Some(signal))
                if matches!(
                    identity.credential,
                    Credential::AppKey { .. } | Credential::DirectorKey { .. }
                ) =>
            {
                Some((
                    signal,
                    signed(
                        &identity.credential,
                        &identity.app_id,
                        &identity.room_id,
                        &identity.me.user_id,
                    ),
                ))
            }
            _ => None,
        };
        // A key whose validity is no longer than what is left cannot help,
        // and its signature would be warned about again at once.
        let too_short = renewal
            .as_ref()
            .map(|(_, (fresh, _))| *fresh)
            .filter(|fresh| *fresh <= ctime);
        let renewal = renewal.filter(|_| too_short.is_none());
        self.emit(RoomEvent::SignatureExpired {
            code,
            message,
            ctime,
            renewing: renewal.is_some(),
        });
        if let Some(fresh) = too_short {
            self.emit(RoomEvent::Error {
                code: ErrorCode::SignatureExpired,
                message: format!(
                    "cannot renew: a signature made now with the app key expires at {fresh}, \
                     not after the current one ({ctime}); give the key a longer valid_for"
                ),
            });
        }
        let Some((signal, (ctime, signature))) = renewal else {
            return;
        };
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = signal
                .request(Request::RenewSignature {
                    ctime,
                    signature,
                    room_id: None,
                })
                .await;
            match result {
                Ok(_) => tracing::debug!(ctime, "signature renewed"),
                Err(e) => {
                    tracing::warn!("automatic signature renewal failed: {e}");
                    let event = RoomEvent::Error {
                        code: e.code(),
                        message: format!("automatic signature renewal failed: {e}"),
                    };
                    // Full: the application stopped draining; the ban that
                    // follows at ctime still reaches it as a state change.
                    events.try_send(event).ok();
                }
            }
        });
    }
}
