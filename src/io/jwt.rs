//! etcd's JWT tokens (`--auth-token jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...`):
//! claims `username`, `revision` and `exp`, signed with the member's private key and
//! verified with the public key, so any member holding the same keys accepts a token any of
//! them issued, and a restart does not end them. A member given only the public key verifies
//! and refuses to sign, as etcd's verify-only mode.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use std::path::PathBuf;
use std::time::Duration;

/// etcd's JWT options, parsed from the flag by the api layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtOptions {
    pub sign_method: String,
    pub public_key: PathBuf,
    pub private_key: Option<PathBuf>,
    pub ttl: Duration,
}

pub struct JwtKeys {
    algorithm: Algorithm,
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    ttl: Duration,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    username: String,
    revision: u64,
    exp: u64,
}

enum Family {
    Rsa,
    Ec,
    Ed,
}

fn algorithm(sign_method: &str) -> Option<(Algorithm, Family)> {
    Some(match sign_method {
        "RS256" => (Algorithm::RS256, Family::Rsa),
        "RS384" => (Algorithm::RS384, Family::Rsa),
        "RS512" => (Algorithm::RS512, Family::Rsa),
        "PS256" => (Algorithm::PS256, Family::Rsa),
        "PS384" => (Algorithm::PS384, Family::Rsa),
        "PS512" => (Algorithm::PS512, Family::Rsa),
        "ES256" => (Algorithm::ES256, Family::Ec),
        "ES384" => (Algorithm::ES384, Family::Ec),
        "EdDSA" => (Algorithm::EdDSA, Family::Ed),
        _ => return None,
    })
}

impl JwtKeys {
    /// Loads the keys; the error names the file or option at fault (etcd's wording).
    pub fn load(options: &JwtOptions) -> Result<JwtKeys, String> {
        let (algorithm, family) = algorithm(&options.sign_method).ok_or_else(|| {
            format!(
                "auth: invalid auth signature method {:?} (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA)",
                options.sign_method
            )
        })?;
        let read = |path: &PathBuf| {
            std::fs::read(path)
                .map_err(|error| format!("auth: reading {}: {error}", path.display()))
        };
        let public = read(&options.public_key)?;
        let verifying = match family {
            Family::Rsa => DecodingKey::from_rsa_pem(&public),
            Family::Ec => DecodingKey::from_ec_pem(&public),
            Family::Ed => DecodingKey::from_ed_pem(&public),
        }
        .map_err(|error| format!("auth: {}: {error}", options.public_key.display()))?;
        let signing = match &options.private_key {
            None => None,
            Some(path) => {
                let private = read(path)?;
                let key = match family {
                    Family::Rsa => EncodingKey::from_rsa_pem(&private),
                    Family::Ec => EncodingKey::from_ec_pem(&private),
                    Family::Ed => EncodingKey::from_ed_pem(&private),
                }
                .map_err(|error| format!("auth: {}: {error}", path.display()))?;
                Some(key)
            }
        };
        let keys = JwtKeys {
            algorithm,
            signing,
            verifying,
            ttl: options.ttl,
        };
        // etcd refuses a pair whose halves do not match; a token signed now must verify.
        if keys.signing.is_some() {
            let probe = keys.sign("probe", 0)?;
            if keys.verify(&probe).is_none() {
                return Err("auth: public and private keys don't match".to_string());
            }
        }
        Ok(keys)
    }

    /// A token for `user` at auth revision `revision`, valid for the TTL from now.
    pub fn sign(&self, user: &str, revision: u64) -> Result<String, String> {
        let key = self
            .signing
            .as_ref()
            .ok_or_else(|| "auth: token signing attempted with verify-only key".to_string())?;
        let claims = Claims {
            username: user.to_string(),
            revision,
            exp: super::clock::wall_seconds() + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|error| format!("auth: signing a token: {error}"))
    }

    /// The user and auth revision of a token signed with these keys and not yet expired.
    pub fn verify(&self, token: &str) -> Option<(String, u64)> {
        let mut validation = Validation::new(self.algorithm);
        // Expiry is checked below by io's clock (madsim's in simulation), not the crate's.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &self.verifying, &validation).ok()?;
        if data.claims.exp <= super::clock::wall_seconds() {
            return None;
        }
        Some((data.claims.username, data.claims.revision))
    }
}
