//! Staff JWT verification and permissions (SYSTEM.md §2 "Staff API" and "Permissions").
//!
//! The CRM signs staff tokens with an asymmetric key (EdDSA/Ed25519 or RS256); we hold only public
//! keys, by `kid`, several at once so keys can be rotated. Rules enforced by [`JwtVerifier::verify`]:
//! - header `kid` required and known; the algorithm is pinned to that key's configured `alg` — a
//!   header `alg` that differs is rejected, `none` and every `HS*` always are (so the classic
//!   "HMAC with the public key as secret" confusion cannot work), as are tokens carrying `crit`;
//! - `exp`, `iss`, `aud` required and checked, `nbf` honoured if present, leeway [`LEEWAY_SECS`];
//! - `sub` required and non-empty (a JSON integer is accepted and read as its decimal string);
//! - `admin` is a boolean (or 0/1), absent = false; `perms` an array of `resource:action` strings,
//!   unknown entries ignored.
//!
//! [`generate_ed25519`] and [`sign_ed25519`] are a dev signer for the local runner and tests.
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// Longest token accepted; a staff token is well under 2 KB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token expired")]
    Expired,
    #[error("missing permission: {0}")]
    Forbidden(String),
    #[error("authentication is misconfigured: {0}")]
    Config(String),
}

impl AuthError {
    /// HTTP status: 401 for missing/invalid/expired tokens, 403 for a missing permission, 500 for
    /// configuration errors.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) | AuthError::Expired => 401,
            AuthError::Forbidden(_) => 403,
            AuthError::Config(_) => 500,
        }
    }

    /// The `error.code` of the API error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) | AuthError::Expired => {
                "unauthorized"
            }
            AuthError::Forbidden(_) => "forbidden",
            AuthError::Config(_) => "config",
        }
    }
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::InvalidToken(msg.into())
}

// ---------------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    WhatsappChat,
    WhatsappBot,
    WhatsappTemplate,
    WhatsappCampaign,
    WhatsappNumbers,
    WhatsappContacts,
    WhatsappGroups,
    WhatsappLogActivity,
    Quickreplies,
}

impl Resource {
    pub const ALL: [Resource; 9] = [
        Resource::WhatsappChat,
        Resource::WhatsappBot,
        Resource::WhatsappTemplate,
        Resource::WhatsappCampaign,
        Resource::WhatsappNumbers,
        Resource::WhatsappContacts,
        Resource::WhatsappGroups,
        Resource::WhatsappLogActivity,
        Resource::Quickreplies,
    ];

    /// The CRM's name (`whatsapp_chat`, …, `quickreplies`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Resource::WhatsappChat => "whatsapp_chat",
            Resource::WhatsappBot => "whatsapp_bot",
            Resource::WhatsappTemplate => "whatsapp_template",
            Resource::WhatsappCampaign => "whatsapp_campaign",
            Resource::WhatsappNumbers => "whatsapp_numbers",
            Resource::WhatsappContacts => "whatsapp_contacts",
            Resource::WhatsappGroups => "whatsapp_groups",
            Resource::WhatsappLogActivity => "whatsapp_log_activity",
            Resource::Quickreplies => "quickreplies",
        }
    }

    /// The actions the CRM defines for this resource (SYSTEM.md §2 "Permissions").
    pub const fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Resource::WhatsappChat => &[View],
            Resource::WhatsappTemplate => &[View, LoadTemplate],
            Resource::WhatsappNumbers => &[View, Edit],
            Resource::WhatsappLogActivity => &[View, ClearLog],
            Resource::WhatsappBot
            | Resource::WhatsappCampaign
            | Resource::WhatsappContacts
            | Resource::WhatsappGroups
            | Resource::Quickreplies => &[View, Create, Edit, Delete],
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Resource {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resource::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| invalid(format!("unknown resource {s:?}")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    View,
    Create,
    Edit,
    Delete,
    LoadTemplate,
    ClearLog,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::View,
        Action::Create,
        Action::Edit,
        Action::Delete,
        Action::LoadTemplate,
        Action::ClearLog,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Create => "create",
            Action::Edit => "edit",
            Action::Delete => "delete",
            Action::LoadTemplate => "load_template",
            Action::ClearLog => "clear_log",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| invalid(format!("unknown action {s:?}")))
    }
}

/// One CRM permission, written `resource:action` (`whatsapp_chat:view`). Serialised as that string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    pub const fn new(resource: Resource, action: Action) -> Self {
        Self { resource, action }
    }

    /// Whether the CRM defines this combination (e.g. `whatsapp_chat:delete` does not exist).
    pub fn is_defined(self) -> bool {
        self.resource.actions().contains(&self.action)
    }

    /// Every permission the CRM defines, in order.
    pub fn all() -> impl Iterator<Item = Permission> {
        Resource::ALL
            .into_iter()
            .flat_map(|r| r.actions().iter().map(move |a| Permission::new(r, *a)))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

/// Parses `resource:action` exactly as the CRM writes it (lower case, no spaces). Only combinations
/// the CRM defines are accepted ([`Permission::is_defined`]).
impl FromStr for Permission {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (r, a) = s
            .split_once(':')
            .ok_or_else(|| invalid(format!("permission {s:?} is not resource:action")))?;
        let p = Permission::new(r.parse()?, a.parse()?);
        if !p.is_defined() {
            return Err(invalid(format!(
                "permission {s:?} is not defined by the CRM"
            )));
        }
        Ok(p)
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Principal
// ---------------------------------------------------------------------------------------------

/// The authenticated staff member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub staff_id: String,
    pub admin: bool,
    pub perms: BTreeSet<Permission>,
}

impl Principal {
    /// Admins can do everything; others need the permission.
    pub fn can(&self, p: Permission) -> bool {
        self.admin || self.perms.contains(&p)
    }

    /// `Err(Forbidden("whatsapp_chat:view"))` unless [`Principal::can`].
    pub fn require(&self, p: Permission) -> Result<(), AuthError> {
        if self.can(p) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(p.to_string()))
        }
    }

    /// `Err(Forbidden("admin"))` unless admin (connection and chat-widget settings).
    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.admin {
            Ok(())
        } else {
            Err(AuthError::Forbidden("admin".to_owned()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------------------------

/// One trusted public key, as configured (e.g. a JSON array in an environment variable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyConfig {
    pub kid: String,
    /// `"EdDSA"` (Ed25519) or `"RS256"`.
    pub alg: String,
    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`); for RS256 a PKCS#1 `RSA PUBLIC KEY` also works.
    pub pem: String,
}

struct TrustedKey {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

/// Verifies staff JWTs against a set of public keys. Cheap to share (`Arc`) across requests.
pub struct JwtVerifier {
    keys: HashMap<String, TrustedKey>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("JwtVerifier").field("kids", &kids).finish()
    }
}

fn config(msg: impl Into<String>) -> AuthError {
    AuthError::Config(msg.into())
}

impl JwtVerifier {
    /// Builds a verifier trusting every key in `keys` (at least one; `kid`s unique).
    pub fn new(keys: &[PublicKeyConfig], issuer: &str, audience: &str) -> Result<Self, AuthError> {
        if keys.is_empty() {
            return Err(config("no JWT public keys configured"));
        }
        if issuer.trim().is_empty() {
            return Err(config("JWT issuer is empty"));
        }
        if audience.trim().is_empty() {
            return Err(config("JWT audience is empty"));
        }
        let mut map = HashMap::with_capacity(keys.len());
        for k in keys {
            if k.kid.is_empty() {
                return Err(config("a JWT key has an empty kid"));
            }
            let trusted = trusted_key(k, issuer, audience)?;
            if map.insert(k.kid.clone(), trusted).is_some() {
                return Err(config(format!("JWT kid {:?} is configured twice", k.kid)));
            }
        }
        Ok(Self { keys: map })
    }

    /// The configured key ids.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Verifies a compact JWT (without `Bearer `) and returns the staff principal.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too large"));
        }
        let (alg, kid) = peek_header(token)?;
        if alg.eq_ignore_ascii_case("none") || alg.to_ascii_uppercase().starts_with("HS") {
            return Err(invalid(format!("algorithm {alg:?} is not accepted")));
        }
        let kid = kid.ok_or_else(|| invalid("token header has no kid"))?;
        let trusted = self
            .keys
            .get(&kid)
            .ok_or_else(|| invalid("unknown signing key (kid)"))?;
        if alg != alg_name(trusted.alg) {
            return Err(invalid(format!(
                "algorithm {alg:?} does not match the key's {:?}",
                alg_name(trusted.alg)
            )));
        }
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &trusted.key, &trusted.validation)
                .map_err(map_jwt_error)?;
        principal_from_claims(&data.claims)
    }

    /// Verifies an `Authorization` header value: `Bearer <jwt>` (scheme case-insensitive).
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let value = authorization.map(str::trim).unwrap_or_default();
        if value.is_empty() {
            return Err(AuthError::MissingToken);
        }
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid("authorization scheme must be Bearer"));
        }
        let token = rest.trim();
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        self.verify(token)
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
        // Only the two above are ever configured.
        _ => "unsupported",
    }
}

fn trusted_key(k: &PublicKeyConfig, issuer: &str, audience: &str) -> Result<TrustedKey, AuthError> {
    if k.pem.contains("PRIVATE KEY") {
        return Err(config(format!(
            "JWT key {:?} is a private key; configure only the public key",
            k.kid
        )));
    }
    let (alg, key) = match k.alg.as_str() {
        "EdDSA" => {
            let key = DecodingKey::from_ed_pem(k.pem.as_bytes()).map_err(|e| {
                config(format!(
                    "JWT key {:?} is not an Ed25519 public key PEM: {e}",
                    k.kid
                ))
            })?;
            let raw = key
                .try_get_as_bytes()
                .map_err(|e| config(format!("JWT key {:?}: {e}", k.kid)))?;
            if raw.len() != 32 {
                return Err(config(format!("JWT key {:?} is not an Ed25519 key", k.kid)));
            }
            (Algorithm::EdDSA, key)
        }
        "RS256" => {
            let key = DecodingKey::from_rsa_pem(k.pem.as_bytes()).map_err(|e| {
                config(format!(
                    "JWT key {:?} is not an RSA public key PEM: {e}",
                    k.kid
                ))
            })?;
            let der = key
                .try_get_as_bytes()
                .map_err(|e| config(format!("JWT key {:?}: {e}", k.kid)))?;
            let public = aws_lc_rs::rsa::PublicKey::from_der(der).map_err(|e| {
                config(format!(
                    "JWT key {:?} is not a valid RSA public key: {e}",
                    k.kid
                ))
            })?;
            if rsa_modulus_bits(&public) < 2048 {
                return Err(config(format!(
                    "JWT key {:?} is an RSA key under 2048 bits",
                    k.kid
                )));
            }
            (Algorithm::RS256, key)
        }
        other => {
            return Err(config(format!(
                "JWT key {:?} has unsupported alg {other:?} (expected \"EdDSA\" or \"RS256\")",
                k.kid
            )));
        }
    };
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    Ok(TrustedKey {
        alg,
        key,
        validation,
    })
}

fn rsa_modulus_bits(public: &aws_lc_rs::rsa::PublicKey) -> usize {
    let components = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(public);
    let n = &components.n;
    match n.iter().position(|b| *b != 0) {
        Some(i) => (n.len() - i - 1) * 8 + (8 - n[i].leading_zeros() as usize),
        None => 0,
    }
}

/// Reads `alg` and `kid` from the (unverified) header, to pick the key before any crypto.
fn peek_header(token: &str) -> Result<(String, Option<String>), AuthError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a compact JWT (header.payload.signature)"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| invalid("token header is not base64url"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| invalid("token header is not JSON"))?;
    let obj = header
        .as_object()
        .ok_or_else(|| invalid("token header is not a JSON object"))?;
    if obj.contains_key("crit") {
        return Err(invalid("critical header extensions are not supported"));
    }
    let alg = obj
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| invalid("token header has no alg"))?
        .to_owned();
    let kid = match obj.get("kid") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("token header kid is not a string")),
    };
    Ok((alg, kid))
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => invalid("token is not valid yet (nbf)"),
        ErrorKind::InvalidIssuer => invalid("wrong issuer"),
        ErrorKind::InvalidAudience => invalid("wrong audience"),
        ErrorKind::MissingRequiredClaim(c) => invalid(format!("missing required claim {c}")),
        ErrorKind::InvalidClaimFormat(c) => invalid(format!("claim {c} has an invalid format")),
        ErrorKind::InvalidSignature => invalid("signature does not verify"),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            invalid("algorithm not allowed for this key")
        }
        ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidToken => invalid("malformed token"),
        _ => invalid("token rejected"),
    }
}

fn principal_from_claims(claims: &serde_json::Value) -> Result<Principal, AuthError> {
    use serde_json::Value;
    let obj = claims
        .as_object()
        .ok_or_else(|| invalid("claims are not a JSON object"))?;
    let staff_id = match obj.get("sub") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(Value::String(_)) => return Err(invalid("claim sub is empty")),
        None | Some(Value::Null) => return Err(invalid("missing required claim sub")),
        Some(_) => return Err(invalid("claim sub has an invalid format")),
    };
    let admin = match obj.get("admin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_u64() == Some(0) => false,
        Some(Value::Number(n)) if n.as_u64() == Some(1) => true,
        Some(_) => return Err(invalid("claim admin must be a boolean")),
    };
    let perms = match obj.get("perms") {
        None | Some(Value::Null) => BTreeSet::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|s| s.parse::<Permission>().ok())
            .collect(),
        Some(_) => return Err(invalid("claim perms must be an array of strings")),
    };
    Ok(Principal {
        staff_id,
        admin,
        perms,
    })
}

// ---------------------------------------------------------------------------------------------
// Dev signer (local runner, tests)
// ---------------------------------------------------------------------------------------------

/// An Ed25519 key pair in PEM: PKCS#8 v1 `PRIVATE KEY` and SPKI `PUBLIC KEY` (OpenSSL-compatible).
#[derive(Clone, PartialEq, Eq)]
pub struct DevKeyPair {
    pub kid: String,
    pub private_pem: String,
    pub public_pem: String,
}

impl fmt::Debug for DevKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKeyPair")
            .field("kid", &self.kid)
            .field("private_pem", &"[redacted]")
            .field("public_pem", &self.public_pem)
            .finish()
    }
}

impl DevKeyPair {
    /// The verifier configuration for this key.
    pub fn public_config(&self) -> PublicKeyConfig {
        PublicKeyConfig {
            kid: self.kid.clone(),
            alg: "EdDSA".to_owned(),
            pem: self.public_pem.clone(),
        }
    }
}

/// PEM-encodes DER under `label` (base64 lines of 64 characters).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Generates a fresh Ed25519 key pair (aws-lc-rs) for `kid`.
pub fn generate_ed25519(kid: &str) -> Result<DevKeyPair, AuthError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    // PKCS#8 v1 (what `openssl genpkey -algorithm ED25519` writes) for the widest compatibility.
    let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&rng)
        .map_err(|_| config("Ed25519 key generation failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| config(format!("generated Ed25519 key rejected: {e}")))?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| config("Ed25519 public key encoding failed"))?;
    Ok(DevKeyPair {
        kid: kid.to_owned(),
        private_pem: pem_encode("PRIVATE KEY", pkcs8.as_ref()),
        public_pem: pem_encode("PUBLIC KEY", spki.as_ref()),
    })
}

/// Claims of a staff token as the CRM issues them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffClaims {
    pub sub: String,
    pub admin: bool,
    pub perms: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
}

impl StaffClaims {
    /// Claims issued now and valid for `ttl_secs`.
    pub fn new(
        sub: &str,
        admin: bool,
        perms: &[&str],
        iss: &str,
        aud: &str,
        ttl_secs: i64,
    ) -> Self {
        let now = unix_now();
        Self {
            sub: sub.to_owned(),
            admin,
            perms: perms.iter().map(|s| (*s).to_owned()).collect(),
            iss: iss.to_owned(),
            aud: aud.to_owned(),
            exp: now + ttl_secs,
            iat: now,
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Signs `claims` with an Ed25519 PKCS#8 PEM private key; the header carries `alg: EdDSA`, `kid`.
pub fn sign_ed25519(
    kid: &str,
    private_pem: &str,
    claims: &StaffClaims,
) -> Result<String, AuthError> {
    let key = EncodingKey::from_ed_pem(private_pem.as_bytes())
        .map_err(|e| config(format!("not an Ed25519 private key PEM: {e}")))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| config(format!("signing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use serde_json::json;
    use std::sync::OnceLock;

    const ISS: &str = "https://crm.example.com";
    const AUD: &str = "whatsapp-api";

    struct Rsa {
        private_pem: String,
        public_pem: String,
    }

    fn rsa() -> &'static Rsa {
        static KEY: OnceLock<Rsa> = OnceLock::new();
        KEY.get_or_init(|| {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
            let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
            let spki = pair.public_key().as_der().unwrap();
            Rsa {
                private_pem: pem_encode("PRIVATE KEY", pkcs8.as_ref()),
                public_pem: pem_encode("PUBLIC KEY", spki.as_ref()),
            }
        })
    }

    fn ed(kid: &str) -> DevKeyPair {
        generate_ed25519(kid).unwrap()
    }

    fn now() -> i64 {
        unix_now()
    }

    fn claims() -> serde_json::Value {
        json!({
            "sub": "17",
            "admin": false,
            "perms": ["whatsapp_chat:view", "whatsapp_bot:create", "quickreplies:edit"],
            "iss": ISS,
            "aud": AUD,
            "exp": now() + 600,
            "iat": now(),
        })
    }

    fn sign_json(
        alg: Algorithm,
        kid: Option<&str>,
        key: &EncodingKey,
        c: &serde_json::Value,
    ) -> String {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, c, key).unwrap()
    }

    fn ed_sign(k: &DevKeyPair, c: &serde_json::Value) -> String {
        let key = EncodingKey::from_ed_pem(k.private_pem.as_bytes()).unwrap();
        sign_json(Algorithm::EdDSA, Some(&k.kid), &key, c)
    }

    fn rsa_sign(kid: &str, c: &serde_json::Value) -> String {
        let key = EncodingKey::from_rsa_pem(rsa().private_pem.as_bytes()).unwrap();
        sign_json(Algorithm::RS256, Some(kid), &key, c)
    }

    fn rsa_config(kid: &str) -> PublicKeyConfig {
        PublicKeyConfig {
            kid: kid.into(),
            alg: "RS256".into(),
            pem: rsa().public_pem.clone(),
        }
    }

    fn verifier(keys: &[PublicKeyConfig]) -> JwtVerifier {
        JwtVerifier::new(keys, ISS, AUD).unwrap()
    }

    fn raw_token(header: serde_json::Value, c: &serde_json::Value, sig: &str) -> String {
        format!(
            "{}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(c.to_string())
        )
    }

    fn is_invalid(r: Result<Principal, AuthError>, needle: &str) {
        match r {
            Err(AuthError::InvalidToken(m)) => {
                assert!(m.contains(needle), "{m:?} lacks {needle:?}")
            }
            other => panic!("expected InvalidToken({needle:?}), got {other:?}"),
        }
    }

    // --- happy paths ------------------------------------------------------------------------

    #[test]
    fn eddsa_token_verifies() {
        let k = ed("ed-1");
        let v = verifier(&[k.public_config()]);
        let p = v.verify(&ed_sign(&k, &claims())).unwrap();
        assert_eq!(p.staff_id, "17");
        assert!(!p.admin);
        assert_eq!(
            p.perms,
            BTreeSet::from([
                Permission::new(Resource::WhatsappChat, Action::View),
                Permission::new(Resource::WhatsappBot, Action::Create),
                Permission::new(Resource::Quickreplies, Action::Edit),
            ])
        );
    }

    #[test]
    fn dev_signer_round_trip() {
        let k = ed("dev");
        assert!(k.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(k.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(k.public_pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(!format!("{k:?}").contains(&k.private_pem[30..60]));
        let c = StaffClaims::new("5", true, &["whatsapp_campaign:delete"], ISS, AUD, 300);
        let token = sign_ed25519(&k.kid, &k.private_pem, &c).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some("dev"));
        let p = verifier(&[k.public_config()]).verify(&token).unwrap();
        assert_eq!(p.staff_id, "5");
        assert!(p.admin);
        assert!(
            p.perms
                .contains(&"whatsapp_campaign:delete".parse().unwrap())
        );
        // Two generations differ.
        assert_ne!(ed("dev").public_pem, k.public_pem);
        // Signing with garbage fails as a configuration error.
        assert!(matches!(
            sign_ed25519("x", "nope", &c),
            Err(AuthError::Config(_))
        ));
        assert!(matches!(
            sign_ed25519("x", &rsa().private_pem, &c),
            Err(AuthError::Config(_))
        ));
    }

    #[test]
    fn rs256_token_verifies() {
        let v = verifier(&[rsa_config("rsa-1")]);
        let p = v.verify(&rsa_sign("rsa-1", &claims())).unwrap();
        assert_eq!(p.staff_id, "17");
        assert_eq!(p.perms.len(), 3);
    }

    #[test]
    fn key_rotation_accepts_every_configured_kid() {
        let old = ed("2024-01");
        let new = ed("2025-01");
        let v = verifier(&[old.public_config(), new.public_config(), rsa_config("rsa")]);
        let mut kids: Vec<_> = v.kids().collect();
        kids.sort();
        assert_eq!(kids, ["2024-01", "2025-01", "rsa"]);
        assert!(v.verify(&ed_sign(&old, &claims())).is_ok());
        assert!(v.verify(&ed_sign(&new, &claims())).is_ok());
        assert!(v.verify(&rsa_sign("rsa", &claims())).is_ok());
        // Signed by the new key but labelled with the old kid: the old key checks it and fails.
        let mislabelled = DevKeyPair {
            kid: old.kid.clone(),
            ..new.clone()
        };
        is_invalid(v.verify(&ed_sign(&mislabelled, &claims())), "signature");
        // Once the old key is removed, its tokens stop working.
        let v2 = verifier(&[new.public_config()]);
        is_invalid(v2.verify(&ed_sign(&old, &claims())), "unknown signing key");
    }

    #[test]
    fn leeway_and_nbf() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        let mut c = claims();
        c["exp"] = json!(now() - 10); // expired 10 s ago: inside the 30 s leeway
        assert!(v.verify(&ed_sign(&k, &c)).is_ok());
        c["exp"] = json!(now() + 600);
        c["nbf"] = json!(now() - 5);
        assert!(v.verify(&ed_sign(&k, &c)).is_ok());
        c["nbf"] = json!(now() + 10); // within leeway
        assert!(v.verify(&ed_sign(&k, &c)).is_ok());
        c["nbf"] = json!(now() + 600);
        is_invalid(v.verify(&ed_sign(&k, &c)), "not valid yet");
    }

    #[test]
    fn audience_array_containing_ours_is_accepted() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        let mut c = claims();
        c["aud"] = json!(["other", AUD]);
        assert!(v.verify(&ed_sign(&k, &c)).is_ok());
        c["aud"] = json!(["other"]);
        is_invalid(v.verify(&ed_sign(&k, &c)), "audience");
        c["aud"] = json!([]);
        is_invalid(v.verify(&ed_sign(&k, &c)), "audience");
    }

    // --- rejections -------------------------------------------------------------------------

    #[test]
    fn unknown_and_missing_kid() {
        let k = ed("known");
        let v = verifier(&[k.public_config()]);
        let other = DevKeyPair {
            kid: "unknown".into(),
            ..k.clone()
        };
        is_invalid(v.verify(&ed_sign(&other, &claims())), "unknown signing key");
        let key = EncodingKey::from_ed_pem(k.private_pem.as_bytes()).unwrap();
        is_invalid(
            v.verify(&sign_json(Algorithm::EdDSA, None, &key, &claims())),
            "no kid",
        );
        // kid of the wrong type.
        let t = raw_token(json!({"alg": "EdDSA", "kid": 7}), &claims(), "AAAA");
        is_invalid(v.verify(&t), "kid is not a string");
    }

    #[test]
    fn rs256_token_for_an_eddsa_kid_is_rejected() {
        let k = ed("ed");
        let v = verifier(&[k.public_config(), rsa_config("rsa")]);
        is_invalid(v.verify(&rsa_sign("ed", &claims())), "does not match");
        // And the other way round.
        let t = ed_sign(
            &DevKeyPair {
                kid: "rsa".into(),
                ..k
            },
            &claims(),
        );
        is_invalid(v.verify(&t), "does not match");
    }

    #[test]
    fn hs256_with_the_public_key_as_secret_is_rejected() {
        // The classic confusion attack: the attacker knows the public key and uses it as an HMAC
        // secret, hoping the verifier feeds the same bytes to HMAC.
        let k = ed("ed");
        let v = verifier(&[k.public_config(), rsa_config("rsa")]);
        for (kid, pem) in [("ed", &k.public_pem), ("rsa", &rsa().public_pem)] {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let t = sign_json(
                    alg,
                    Some(kid),
                    &EncodingKey::from_secret(pem.as_bytes()),
                    &claims(),
                );
                is_invalid(v.verify(&t), "not accepted");
            }
        }
    }

    #[test]
    fn alg_none_is_rejected() {
        let k = ed("ed");
        let v = verifier(&[k.public_config()]);
        for alg in ["none", "None", "NONE"] {
            let t = raw_token(
                json!({"alg": alg, "kid": "ed", "typ": "JWT"}),
                &claims(),
                "",
            );
            is_invalid(v.verify(&t), "not accepted");
        }
        // Header with a different spelling of a known alg.
        let t = raw_token(json!({"alg": "eddsa", "kid": "ed"}), &claims(), "AAAA");
        is_invalid(v.verify(&t), "does not match");
        // No alg at all.
        let t = raw_token(json!({"kid": "ed"}), &claims(), "AAAA");
        is_invalid(v.verify(&t), "no alg");
    }

    #[test]
    fn crit_header_is_rejected() {
        let k = ed("ed");
        let v = verifier(&[k.public_config()]);
        let t = raw_token(
            json!({"alg": "EdDSA", "kid": "ed", "crit": ["exp"]}),
            &claims(),
            "AAAA",
        );
        is_invalid(v.verify(&t), "critical");
    }

    #[test]
    fn expired() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        let mut c = claims();
        c["exp"] = json!(now() - 120);
        let err = v.verify(&ed_sign(&k, &c)).unwrap_err();
        assert_eq!(err, AuthError::Expired);
        assert_eq!(err.status(), 401);
        assert_eq!(err.code(), "unauthorized");
    }

    #[test]
    fn wrong_issuer_and_audience() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        let mut c = claims();
        c["iss"] = json!("https://evil.example.com");
        is_invalid(v.verify(&ed_sign(&k, &c)), "issuer");
        let mut c = claims();
        c["aud"] = json!("another-api");
        is_invalid(v.verify(&ed_sign(&k, &c)), "audience");
    }

    #[test]
    fn missing_required_claims() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        for claim in ["exp", "iss", "aud"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(claim);
            is_invalid(
                v.verify(&ed_sign(&k, &c)),
                &format!("missing required claim {claim}"),
            );
        }
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        is_invalid(v.verify(&ed_sign(&k, &c)), "missing required claim sub");
        for bad in [json!(""), json!("  ")] {
            let mut c = claims();
            c["sub"] = bad;
            is_invalid(v.verify(&ed_sign(&k, &c)), "sub is empty");
        }
        // Wrong types: rejected either by our claims parser or already by jsonwebtoken's.
        for bad in [json!(true), json!(1.5), json!(["a"]), json!({"id": 1})] {
            let mut c = claims();
            c["sub"] = bad.clone();
            match v.verify(&ed_sign(&k, &c)) {
                Err(AuthError::InvalidToken(m)) => assert!(
                    m == "claim sub has an invalid format" || m == "malformed token",
                    "{bad}: {m}"
                ),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let mut c = claims();
        c["exp"] = json!("tomorrow");
        is_invalid(v.verify(&ed_sign(&k, &c)), "exp");
    }

    #[test]
    fn numeric_sub_is_read_as_a_string() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        let mut c = claims();
        c["sub"] = json!(42);
        assert_eq!(v.verify(&ed_sign(&k, &c)).unwrap().staff_id, "42");
    }

    #[test]
    fn tampered_tokens_are_rejected() {
        let k = ed("k");
        let v = verifier(&[k.public_config(), rsa_config("rsa")]);
        for token in [ed_sign(&k, &claims()), rsa_sign("rsa", &claims())] {
            let (head, sig) = token.rsplit_once('.').unwrap();
            // Flip a character in the middle of the signature.
            let mut s = sig.as_bytes().to_vec();
            let i = s.len() / 2;
            s[i] = if s[i] == b'A' { b'B' } else { b'A' };
            let t = format!("{head}.{}", String::from_utf8(s).unwrap());
            is_invalid(v.verify(&t), "signature");
            // Escalate privileges in the payload, keep the signature.
            let (h, _) = head.split_once('.').unwrap();
            let mut c = claims();
            c["admin"] = json!(true);
            let t = format!("{h}.{}.{sig}", URL_SAFE_NO_PAD.encode(c.to_string()));
            is_invalid(v.verify(&t), "signature");
            // Signature stripped.
            is_invalid(v.verify(&format!("{head}.")), "");
        }
    }

    #[test]
    fn malformed_tokens() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        assert_eq!(v.verify(""), Err(AuthError::MissingToken));
        for bad in [
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.AAAA",
            "e30.e30.AAAA",
            "W10.e30.AAAA",
        ] {
            assert!(
                matches!(v.verify(bad), Err(AuthError::InvalidToken(_))),
                "{bad}"
            );
        }
        is_invalid(v.verify(&"a".repeat(MAX_TOKEN_LEN + 1)), "too large");
        // Signed, but claims of the wrong types.
        let mut c = claims();
        c["admin"] = json!("yes");
        is_invalid(v.verify(&ed_sign(&k, &c)), "admin");
        let mut c = claims();
        c["perms"] = json!("whatsapp_chat:view");
        is_invalid(v.verify(&ed_sign(&k, &c)), "perms");
    }

    #[test]
    fn bearer_header() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        let t = ed_sign(&k, &claims());
        for h in [
            format!("Bearer {t}"),
            format!("bearer {t}"),
            format!("BEARER   {t} "),
            format!("Bearer\t{t}"),
        ] {
            assert_eq!(v.verify_header(Some(&h)).unwrap().staff_id, "17", "{h}");
        }
        assert_eq!(v.verify_header(None), Err(AuthError::MissingToken));
        assert_eq!(v.verify_header(Some("")), Err(AuthError::MissingToken));
        assert_eq!(v.verify_header(Some("   ")), Err(AuthError::MissingToken));
        assert_eq!(
            v.verify_header(Some("Bearer")),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            v.verify_header(Some("Bearer   ")),
            Err(AuthError::MissingToken)
        );
        is_invalid(v.verify_header(Some(&format!("Basic {t}"))), "Bearer");
        is_invalid(v.verify_header(Some(&t)), "Bearer");
        is_invalid(v.verify_header(Some("Bearer a b")), "compact JWT");
    }

    // --- configuration ----------------------------------------------------------------------

    #[test]
    fn config_errors() {
        let k = ed("k");
        let cfg = |kid: &str, alg: &str, pem: &str| PublicKeyConfig {
            kid: kid.into(),
            alg: alg.into(),
            pem: pem.into(),
        };
        let err = |keys: &[PublicKeyConfig]| match JwtVerifier::new(keys, ISS, AUD) {
            Err(e @ AuthError::Config(_)) => {
                assert_eq!(e.status(), 500);
                assert_eq!(e.code(), "config");
                e.to_string()
            }
            other => panic!("expected Config, got {other:?}"),
        };
        assert!(err(&[]).contains("no JWT public keys"));
        assert!(err(&[k.public_config(), k.public_config()]).contains("twice"));
        assert!(err(&[cfg("", "EdDSA", &k.public_pem)]).contains("empty kid"));
        for alg in ["HS256", "none", "RS512", "ES256", "eddsa", ""] {
            assert!(
                err(&[cfg("x", alg, &k.public_pem)]).contains("unsupported alg"),
                "{alg}"
            );
        }
        assert!(err(&[cfg("x", "EdDSA", "not a pem")]).contains("Ed25519"));
        assert!(err(&[cfg("x", "EdDSA", &rsa().public_pem)]).contains("Ed25519"));
        assert!(err(&[cfg("x", "RS256", &k.public_pem)]).contains("RSA"));
        assert!(err(&[cfg("x", "EdDSA", &k.private_pem)]).contains("private key"));
        assert!(err(&[cfg("x", "RS256", &rsa().private_pem)]).contains("private key"));
        assert!(matches!(
            JwtVerifier::new(&[k.public_config()], "", AUD),
            Err(AuthError::Config(_))
        ));
        assert!(matches!(
            JwtVerifier::new(&[k.public_config()], ISS, " "),
            Err(AuthError::Config(_))
        ));
        // The config is plain JSON.
        let json = serde_json::to_string(&[k.public_config()]).unwrap();
        let back: Vec<PublicKeyConfig> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![k.public_config()]);
        assert!(format!("{:?}", verifier(&back)).contains("\"k\""));
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        // A 1024-bit modulus (odd, top bit set) with e = 65537, encoded as SPKI.
        let mut n = vec![0xC5u8; 128];
        n[127] = 0xC7;
        let components = aws_lc_rs::rsa::PublicKeyComponents {
            n: n.as_slice(),
            e: [1u8, 0, 1].as_slice(),
        };
        let spki = components.as_der().unwrap();
        let r = JwtVerifier::new(
            &[PublicKeyConfig {
                kid: "small".into(),
                alg: "RS256".into(),
                pem: pem_encode("PUBLIC KEY", spki.as_ref()),
            }],
            ISS,
            AUD,
        );
        match r {
            Err(AuthError::Config(m)) => assert!(m.contains("under 2048 bits"), "{m}"),
            other => panic!("expected Config, got {other:?}"),
        }
        // And the 2048-bit test key measures as such.
        let der = rsa_public_der(&rsa().public_pem);
        let public = aws_lc_rs::rsa::PublicKey::from_der(&der).unwrap();
        assert_eq!(rsa_modulus_bits(&public), 2048);
    }

    fn rsa_public_der(pem: &str) -> Vec<u8> {
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.decode(b64).unwrap()
    }

    // --- permissions ------------------------------------------------------------------------

    #[test]
    fn permission_parsing_and_display() {
        let cases = [
            ("whatsapp_chat:view", Resource::WhatsappChat, Action::View),
            ("whatsapp_bot:create", Resource::WhatsappBot, Action::Create),
            (
                "whatsapp_template:load_template",
                Resource::WhatsappTemplate,
                Action::LoadTemplate,
            ),
            (
                "whatsapp_campaign:delete",
                Resource::WhatsappCampaign,
                Action::Delete,
            ),
            (
                "whatsapp_numbers:edit",
                Resource::WhatsappNumbers,
                Action::Edit,
            ),
            (
                "whatsapp_contacts:create",
                Resource::WhatsappContacts,
                Action::Create,
            ),
            (
                "whatsapp_groups:delete",
                Resource::WhatsappGroups,
                Action::Delete,
            ),
            (
                "whatsapp_log_activity:clear_log",
                Resource::WhatsappLogActivity,
                Action::ClearLog,
            ),
            ("quickreplies:edit", Resource::Quickreplies, Action::Edit),
        ];
        for (s, r, a) in cases {
            let p: Permission = s.parse().unwrap();
            assert_eq!(p, Permission::new(r, a));
            assert_eq!(p.to_string(), s);
            assert_eq!(serde_json::to_value(p).unwrap(), json!(s));
            assert_eq!(serde_json::from_value::<Permission>(json!(s)).unwrap(), p);
        }
        for bad in [
            "",
            "whatsapp_chat",
            "whatsapp_chat:",
            ":view",
            "whatsapp_chat:view:x",
            "WHATSAPP_CHAT:VIEW",
            " whatsapp_chat:view",
            "whatsapp_chats:view",
            "whatsapp_chat:read",
            "whatsapp_chat:delete",       // not defined by the CRM
            "whatsapp_template:create",   // not defined by the CRM
            "quickreplies:load_template", // not defined by the CRM
        ] {
            assert!(bad.parse::<Permission>().is_err(), "{bad:?}");
        }
        assert!(serde_json::from_value::<Permission>(json!("nope")).is_err());
        // The CRM's list: 1 + 4 + 2 + 4 + 2 + 4 + 4 + 2 + 4.
        assert_eq!(Permission::all().count(), 27);
        for p in Permission::all() {
            assert_eq!(p.to_string().parse::<Permission>().unwrap(), p);
        }
    }

    #[test]
    fn unknown_perms_in_claims_are_ignored() {
        let k = ed("k");
        let v = verifier(&[k.public_config()]);
        let mut c = claims();
        c["perms"] = json!([
            "whatsapp_chat:view",
            "leads:view",
            "bogus",
            3,
            null,
            "whatsapp_chat:view"
        ]);
        let p = v.verify(&ed_sign(&k, &c)).unwrap();
        assert_eq!(
            p.perms,
            BTreeSet::from([Permission::new(Resource::WhatsappChat, Action::View)])
        );
        // Absent perms and admin.
        let mut c = claims();
        c.as_object_mut().unwrap().remove("perms");
        c.as_object_mut().unwrap().remove("admin");
        let p = v.verify(&ed_sign(&k, &c)).unwrap();
        assert!(p.perms.is_empty());
        assert!(!p.admin);
        // admin as 1.
        c["admin"] = json!(1);
        assert!(v.verify(&ed_sign(&k, &c)).unwrap().admin);
    }

    #[test]
    fn can_and_require() {
        let view_chat = Permission::new(Resource::WhatsappChat, Action::View);
        let edit_bot = Permission::new(Resource::WhatsappBot, Action::Edit);
        let staff = Principal {
            staff_id: "3".into(),
            admin: false,
            perms: BTreeSet::from([view_chat]),
        };
        assert!(staff.can(view_chat));
        assert!(!staff.can(edit_bot));
        assert_eq!(staff.require(view_chat), Ok(()));
        let err = staff.require(edit_bot).unwrap_err();
        assert_eq!(err, AuthError::Forbidden("whatsapp_bot:edit".into()));
        assert_eq!(err.status(), 403);
        assert_eq!(err.code(), "forbidden");
        assert_eq!(err.to_string(), "missing permission: whatsapp_bot:edit");
        assert_eq!(
            staff.require_admin(),
            Err(AuthError::Forbidden("admin".into()))
        );

        let admin = Principal {
            staff_id: "1".into(),
            admin: true,
            perms: BTreeSet::new(),
        };
        for p in Permission::all() {
            assert!(admin.can(p));
            assert_eq!(admin.require(p), Ok(()));
        }
        assert_eq!(admin.require_admin(), Ok(()));
    }

    #[test]
    fn error_status_and_codes() {
        for (e, status, code) in [
            (AuthError::MissingToken, 401, "unauthorized"),
            (AuthError::InvalidToken("x".into()), 401, "unauthorized"),
            (AuthError::Expired, 401, "unauthorized"),
            (AuthError::Forbidden("admin".into()), 403, "forbidden"),
            (AuthError::Config("x".into()), 500, "config"),
        ] {
            assert_eq!(e.status(), status, "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
        }
    }
}
