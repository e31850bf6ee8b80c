//! KEKs inside a PKCS#11 token (an HSM, or SoftHSM2 for testing). Keys are generated in the
//! token as non-extractable AES-256 keys; data keys are wrapped and unwrapped by the token
//! with AES-GCM, so the KEK never enters phivault's memory.
//!
//! cryptoki loads the vendor's module with `dlopen`; the unsafe code that requires lives in
//! cryptoki, not here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use phivault_crypto::{CryptoError, ExternalKek, KekProvider, random_bytes};

const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

/// A logged-in session on one token. PKCS#11 sessions are not thread-safe: one at a time.
struct Token {
    session: Mutex<Session>,
    // Keeps the library loaded and initialised as long as the session lives.
    _context: Pkcs11,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token")
    }
}

/// KEKs in a PKCS#11 token, found by label.
#[derive(Debug, Clone)]
pub struct Pkcs11Provider {
    token: Arc<Token>,
    module: String,
    token_label: String,
}

fn hsm_error(what: &'static str) -> impl Fn(cryptoki::error::Error) -> CryptoError {
    move |e| {
        tracing::error!(error = %e, operation = what, "PKCS#11 call failed");
        CryptoError::Primitive
    }
}

/// A PKCS#11 module may be initialised once per process (PKCS#11 §5.4: C_Initialize twice
/// fails, and C_Finalize ends every session): one shared context per module path.
fn context_for(module: &Path) -> Result<Pkcs11, CryptoError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS.get_or_init(Default::default).lock().map_err(|_| CryptoError::Primitive)?;
    if let Some(context) = contexts.get(module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(module).map_err(hsm_error("load module"))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(hsm_error("initialize")(e)),
    }
    contexts.insert(module.to_owned(), context.clone());
    Ok(context)
}

impl Pkcs11Provider {
    /// Loads `module`, finds the token labelled `token_label` and logs in with `pin`.
    pub fn open(module: &Path, token_label: &str, pin: &str) -> Result<Self, CryptoError> {
        let context = context_for(module)?;
        let slot = context
            .get_slots_with_token()
            .map_err(hsm_error("list slots"))?
            .into_iter()
            .find(|slot| context.get_token_info(*slot).is_ok_and(|info| info.label().trim() == token_label))
            .ok_or(CryptoError::MalformedKeyFile("no PKCS#11 token with that label"))?;
        let session = context.open_rw_session(slot).map_err(hsm_error("open session"))?;
        match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            // Login state is per application and token: a second provider in this process
            // shares the first one's login.
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(_) => return Err(CryptoError::WrongPassphrase),
        }
        Ok(Self {
            token: Arc::new(Token { session: Mutex::new(session), _context: context }),
            module: module.display().to_string(),
            token_label: token_label.to_owned(),
        })
    }

    fn find(&self, label: &str) -> Result<Vec<ObjectHandle>, CryptoError> {
        let session = self.token.session.lock().map_err(|_| CryptoError::Primitive)?;
        session
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())])
            .map_err(hsm_error("find key"))
    }
}

/// One KEK in the token.
#[derive(Debug)]
struct Pkcs11Kek {
    token: Arc<Token>,
    handle: ObjectHandle,
}

impl ExternalKek for Pkcs11Kek {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut iv = random_bytes::<IV_LEN>()?;
        let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(hsm_error("GCM parameters"))?;
        let session = self.token.session.lock().map_err(|_| CryptoError::Primitive)?;
        let sealed =
            session.encrypt(&Mechanism::AesGcm(params), self.handle, plaintext).map_err(hsm_error("encrypt"))?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < IV_LEN + 16 {
            return Err(CryptoError::TamperedCiphertext);
        }
        let (iv, body) = sealed.split_at(IV_LEN);
        let mut iv = iv.to_vec();
        let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(hsm_error("GCM parameters"))?;
        let session = self.token.session.lock().map_err(|_| CryptoError::Primitive)?;
        // A failed tag check is the token's CKR_ENCRYPTED_DATA_INVALID: report tampering.
        session.decrypt(&Mechanism::AesGcm(params), self.handle, body).map_err(|_| CryptoError::TamperedCiphertext)
    }
}

impl KekProvider for Pkcs11Provider {
    fn create_kek(&self, label: &str) -> Result<Arc<dyn ExternalKek>, CryptoError> {
        if !self.find(label)?.is_empty() {
            return Err(CryptoError::MalformedKeyFile("the token already holds a key with that label"));
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let session = self.token.session.lock().map_err(|_| CryptoError::Primitive)?;
        let handle = session.generate_key(&Mechanism::AesKeyGen, &template).map_err(hsm_error("generate key"))?;
        Ok(Arc::new(Pkcs11Kek { token: self.token.clone(), handle }))
    }

    fn open_kek(&self, label: &str) -> Result<Arc<dyn ExternalKek>, CryptoError> {
        match self.find(label)?.as_slice() {
            [handle] => Ok(Arc::new(Pkcs11Kek { token: self.token.clone(), handle: *handle })),
            [] => Err(CryptoError::UnknownKek(label.to_owned())),
            _ => Err(CryptoError::MalformedKeyFile("the token holds several keys with one KEK label")),
        }
    }

    fn destroy_kek(&self, label: &str) -> Result<(), CryptoError> {
        for handle in self.find(label)? {
            let session = self.token.session.lock().map_err(|_| CryptoError::Primitive)?;
            session.destroy_object(handle).map_err(hsm_error("destroy key"))?;
        }
        Ok(())
    }

    fn describe(&self) -> (String, String) {
        (self.module.clone(), self.token_label.clone())
    }
}
