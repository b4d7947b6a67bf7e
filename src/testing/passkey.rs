//! A software passkey authenticator: what a browser and a platform authenticator send back to a
//! WebAuthn ceremony, computed for real (a P-256 key, CBOR, SHA-256, ECDSA signatures), so tests
//! can register a passkey and sign in with it without a browser.
//!
//! It answers the JSON options [`crate::accounts::Accounts`] gives the browser with the JSON a
//! browser's `PublicKeyCredential.toJSON()` gives back, and it verifies the user (the flags say the
//! PIN or fingerprint was checked), as a platform authenticator does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ciborium::Value;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

/// A discoverable passkey kept by a software authenticator, for one site.
pub struct SoftPasskey {
    key: SigningKey,
    credential_id: Vec<u8>,
    origin: String,
    user_handle: Option<Vec<u8>>,
    counter: u32,
}

/// What went wrong answering options (they did not have the shape a browser needs).
#[derive(Debug, thiserror::Error)]
#[error("the passkey options are not usable: {0}")]
pub struct SoftPasskeyError(String);

fn bad(what: impl Into<String>) -> SoftPasskeyError {
    SoftPasskeyError(what.into())
}

fn text<'a>(options: &'a serde_json::Value, pointer: &str) -> Result<&'a str, SoftPasskeyError> {
    options
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad(format!("no {pointer}")))
}

impl SoftPasskey {
    /// A new key for the site at `origin` (`http://localhost:3000`), not registered yet.
    pub fn new(origin: &str) -> Self {
        let key = loop {
            let mut scalar = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut scalar);
            // A random 256-bit number is a valid P-256 scalar but for a 2^-32 chance.
            if let Ok(key) = SigningKey::from_slice(&scalar) {
                break key;
            }
        };
        let mut credential_id = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut credential_id);
        Self {
            key,
            credential_id,
            origin: origin.to_owned(),
            user_handle: None,
            counter: 0,
        }
    }

    /// The credential id, base64url as in the JSON.
    pub fn credential_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.credential_id)
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    /// rpIdHash, flags (user present and verified, plus `extra`), signature counter.
    fn authenticator_data(&mut self, rp_id: &str, extra_flags: u8) -> Vec<u8> {
        self.counter += 1;
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(0x01 | 0x04 | extra_flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }

    /// The public key as a COSE_Key (EC2, ES256, P-256).
    fn cose_key(&self) -> Result<Vec<u8>, SoftPasskeyError> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(bad("no point"));
        };
        let key = Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(2.into())),
            (Value::Integer(3.into()), Value::Integer((-7).into())),
            (Value::Integer((-1).into()), Value::Integer(1.into())),
            (Value::Integer((-2).into()), Value::Bytes(x.to_vec())),
            (Value::Integer((-3).into()), Value::Bytes(y.to_vec())),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&key, &mut bytes).map_err(|e| bad(e.to_string()))?;
        Ok(bytes)
    }

    /// Answers `navigator.credentials.create` options (the JSON of a `CreationChallengeResponse`)
    /// as a browser would: the JSON of the new credential, with a "none" attestation. Refuses, as
    /// an authenticator does, when the options exclude this very credential.
    pub fn register(&mut self, options: &str) -> Result<String, SoftPasskeyError> {
        let options: serde_json::Value =
            serde_json::from_str(options).map_err(|e| bad(e.to_string()))?;
        let challenge = text(&options, "/publicKey/challenge")?;
        let rp_id = text(&options, "/publicKey/rp/id")?;
        let handle = URL_SAFE_NO_PAD
            .decode(text(&options, "/publicKey/user/id")?)
            .map_err(|e| bad(e.to_string()))?;
        let mine = self.credential_id();
        let excluded = options
            .pointer("/publicKey/excludeCredentials")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|list| list.iter().any(|c| c["id"].as_str() == Some(mine.as_str())));
        if excluded {
            return Err(bad("this authenticator holds an excluded credential"));
        }
        let client_data = self.client_data("webauthn.create", challenge);
        // Attested credential data follows (0x40).
        let mut auth_data = self.authenticator_data(rp_id, 0x40);
        auth_data.extend_from_slice(&[0u8; 16]);
        let id_len = u16::try_from(self.credential_id.len()).map_err(|e| bad(e.to_string()))?;
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key()?);
        let attestation = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(auth_data)),
        ]);
        let mut attestation_object = Vec::new();
        ciborium::into_writer(&attestation, &mut attestation_object)
            .map_err(|e| bad(e.to_string()))?;
        self.user_handle = Some(handle);
        Ok(json!({
            "id": mine,
            "rawId": mine,
            "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation_object),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
        .to_string())
    }

    /// Answers `navigator.credentials.get` options (the JSON of a `RequestChallengeResponse`) as
    /// a browser would: the JSON of the signed assertion, with the user handle (a discoverable
    /// passkey gives it). It signs whatever it is asked, allowed credentials or not, so tests can
    /// offer the wrong passkey.
    pub fn sign(&mut self, options: &str) -> Result<String, SoftPasskeyError> {
        let options: serde_json::Value =
            serde_json::from_str(options).map_err(|e| bad(e.to_string()))?;
        let challenge = text(&options, "/publicKey/challenge")?;
        let rp_id = text(&options, "/publicKey/rpId")?;
        let client_data = self.client_data("webauthn.get", challenge);
        let auth_data = self.authenticator_data(rp_id, 0);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        let mine = self.credential_id();
        Ok(json!({
            "id": mine,
            "rawId": mine,
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes()),
                "userHandle": self.user_handle.as_ref().map(|h| URL_SAFE_NO_PAD.encode(h)),
            },
            "clientExtensionResults": {},
        })
        .to_string())
    }

    /// Sets the signature counter, as a cloned authenticator that fell behind would have it.
    pub fn set_counter(&mut self, counter: u32) {
        self.counter = counter;
    }
}
