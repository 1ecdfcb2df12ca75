//! The users file: who may log in over OUCH, with which password, as which account.
//!
//! Kept apart from the main configuration so that credentials can be readable by the engine
//! alone (mode 0600 or 0640) and reloaded on SIGHUP without touching risk or instruments.
//! Passwords are stored as argon2 PHC strings (`petrel-engine hash-password` makes one).
//!
//! ```toml
//! [[users]]
//! name = "TRADE1"                # SoupBinTCP username: 1 to 6 letters or digits
//! password_hash = "$argon2id$v=19$m=8192,t=1,p=1$..."
//! account = "desk1"              # an [[accounts]] name in the engine configuration
//! cancel_on_disconnect = true    # cancel the account's orders when its session drops
//! ```

use crate::config::Config;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use petrel_core::AccountId;
use serde::Deserialize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read users file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "users file {path} has mode {mode:04o}: it holds credentials, so it must not be writable by its group or readable by others (chmod 0600 or 0640)"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    password_hash: String,
    account: String,
    #[serde(default = "default_true")]
    cancel_on_disconnect: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug)]
pub struct User {
    /// Upper-case, as SoupBinTCP carries it (trimmed of padding).
    pub name: String,
    pub account: AccountId,
    pub cancel_on_disconnect: bool,
    password_hash: String,
}

impl User {
    /// Checks a password against the stored hash. Slow on purpose (argon2): call it off the
    /// data plane.
    pub fn verify_password(&self, password: &str) -> bool {
        PasswordHash::new(&self.password_hash)
            .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
    }
}

/// The users the gateway accepts, indexed by account (one user per account, so that an
/// account's sequenced message stream belongs to exactly one SoupBinTCP session).
#[derive(Clone, Debug, Default)]
pub struct Users {
    users: Vec<User>,
}

impl Users {
    pub fn load(path: &Path, config: &Config) -> Result<Users, UsersError> {
        let metadata =
            std::fs::metadata(path).map_err(|source| UsersError::Read { path: path.into(), source })?;
        let mode = metadata.permissions().mode() & 0o777;
        let forbidden = if config.gateway.allow_readable_users_file { 0o022 } else { 0o027 };
        if mode & forbidden != 0 {
            return Err(UsersError::Permissions { path: path.into(), mode });
        }
        let text =
            std::fs::read_to_string(path).map_err(|source| UsersError::Read { path: path.into(), source })?;
        Users::parse(&text, path, config)
    }

    pub fn parse(text: &str, path: &Path, config: &Config) -> Result<Users, UsersError> {
        let invalid = |message: String| UsersError::Invalid { path: path.into(), message };
        let file: UsersFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let line = text[..span.start].matches('\n').count() + 1;
                    let column = span.start - text[..span.start].rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("{line}:{column}: ")
                })
                .unwrap_or_default();
            invalid(format!("{at}{}", e.message()))
        })?;
        let mut users: Vec<User> = Vec::with_capacity(file.users.len());
        for (i, entry) in file.users.into_iter().enumerate() {
            let what = format!("users[{i}] ({:?})", entry.name);
            let name = entry.name.to_ascii_uppercase();
            if name.is_empty() || name.len() > 6 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(format!(
                    "{what}: name must be 1 to 6 letters or digits (SoupBinTCP usernames are 6 characters)"
                )));
            }
            if users.iter().any(|u| u.name == name) {
                return Err(invalid(format!("{what}: user {name} appears twice")));
            }
            let account = config.account_id(&entry.account).ok_or_else(|| {
                invalid(format!("{what}: account {:?} is not in {}", entry.account, config.path.display()))
            })?;
            if let Some(other) = users.iter().find(|u| u.account == account) {
                return Err(invalid(format!(
                    "{what}: account {:?} already belongs to user {} (one user per account: an account's messages form one session)",
                    entry.account, other.name
                )));
            }
            PasswordHash::new(&entry.password_hash).map_err(|e| {
                invalid(format!("{what}: password_hash is not an argon2 PHC string ({e}); make one with `petrel-engine hash-password`"))
            })?;
            users.push(User {
                name,
                account,
                cancel_on_disconnect: entry.cancel_on_disconnect,
                password_hash: entry.password_hash,
            });
        }
        Ok(Users { users })
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        let name = name.trim();
        self.users.iter().find(|u| u.name.eq_ignore_ascii_case(name))
    }

    pub fn by_account(&self, account: AccountId) -> Option<&User> {
        self.users.iter().find(|u| u.account == account)
    }

    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.iter()
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Hashes a password for the users file: argon2id with a fresh random salt and parameters
/// sized so that one login check costs a few milliseconds of a housekeeping core.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let params = argon2::Params::new(8 * 1024, 1, 1, None).expect("valid argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters")
        .to_string()
}
