//! `cassette repo init` (an encrypted or compressed repository) and `cassette key generate`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use cassette_format::encoding::{AGE_X25519, Compression, Encryption, KeyRecord, RepositoryEncoding, ZSTD};
use cassette_repo::RepositoryFormat;
use cassette_seal::Keyring;

use crate::cli::{KeyCommand, RepoArgs, RepoCommand};
use crate::exit;

pub async fn run(cmd: RepoCommand, json: bool) -> anyhow::Result<ExitCode> {
    let (repo, encrypt, compress, compress_level) = match cmd {
        RepoCommand::Init { repo, encrypt, compress, compress_level } => (repo, encrypt, compress, compress_level),
        RepoCommand::RotateKey { repo, new_key_file } => return rotate_key(repo, &new_key_file, json).await,
    };
    if !encrypt && !compress {
        return Err(exit::InvalidInput(
            "nothing to set up: give --encrypt (with --key-file) and/or --compress; a plain repository is made by its first backup".into(),
        )
        .into());
    }
    let encryption = match (repo.keyring(), encrypt) {
        (Some(k), true) => {
            let key = k.fingerprints()[0].clone();
            let keys = vec![KeyRecord { fingerprint: key.clone(), since: chrono::Utc::now() }];
            Some(Encryption { scheme: AGE_X25519.into(), key, keys })
        }
        _ => None,
    };
    let encoding = RepositoryEncoding {
        compression: compress.then(|| Compression { algorithm: ZSTD.into(), level: compress_level }),
        encryption,
    };
    let format = RepositoryFormat::encoded(encoding.clone());
    // The key file is not needed to write the format file; it is checked by the first backup.
    let transfer = cassette_store::Transfer { keyring: None, ..repo.transfer() };
    cassette_store::init(&repo.backup_dir, transfer, &format).await?;
    if json {
        super::print_json(&serde_json::json!({"location": repo.backup_dir, "format": format}));
    } else {
        println!(
            "repository {} made: {}{}",
            repo.backup_dir.display(),
            match &encoding.encryption {
                Some(e) => format!("encrypted for key {}", e.key),
                None => "not encrypted".into(),
            },
            match &encoding.compression {
                Some(c) => format!(", compressed (zstd level {})", c.level),
                None => String::new(),
            }
        );
        if encoding.encryption.is_some() {
            println!("every command that reads or writes it needs --key-file (or CASSETTE_KEY_FILE)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate_key(repo: RepoArgs, new_key: &Keyring, json: bool) -> anyhow::Result<ExitCode> {
    let key = new_key.fingerprints()[0].clone();
    let format = cassette_store::rotate_key(&repo.backup_dir, repo.transfer(), &key).await?;
    if json {
        super::print_json(&serde_json::json!({"location": repo.backup_dir, "format": format}));
    } else {
        println!(
            "repository {}: new objects are encrypted for key {key}; what is stored stays readable with its own key (keep the old key file, and give both with --key-file)",
            repo.backup_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn key(cmd: KeyCommand, json: bool) -> anyhow::Result<ExitCode> {
    let KeyCommand::Generate { file } = cmd;
    let (keyring, text) = Keyring::generate();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .map_err(|e| exit::InvalidInput(format!("cannot create the key file {}: {e}", file.display())))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    let fingerprint = keyring.fingerprints()[0].clone();
    let public = keyring.recipient(&fingerprint).expect("its own key").to_string();
    if json {
        super::print_json(&serde_json::json!({"file": file, "fingerprint": fingerprint, "public_key": public}));
    } else {
        println!("key {fingerprint} written to {} (public key {public})", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
