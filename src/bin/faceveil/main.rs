// SPDX-License-Identifier: MIT
//! `faceveil`: manage watch lists. Thin over `gstfaceveil::engine`; photos and videos are read through
//! GStreamer with the same elements (and models) as the pipelines.
//!
//! Exit codes (docs/WATCHLIST.md): 0 ok, 1 other error, 2 usage or bad value, 3 I/O, 4 corrupt,
//! truncated, oversized or non-regular list file, 5 tampered list, 6 wrong or missing key (or altered
//! key check), 7 newer format, or no descriptors of the embedder model in use, 8 unusable input (no
//! face, several faces, unreadable file), 9 no such identity, 10 timed out waiting for the lock, 11
//! the audit log fails verification or does not continue from the head the list recorded.
//!
//! One module per subcommand group: `list` (init, list, remove, verify, rekey, purge-expired),
//! `enroll`, `edit` (edit, suspend, resume), `export`, `identify`, `audit`, `restore`; `faces`
//! reads photos and videos, `shared` holds the error, key, passphrase, lock and audit-log handling
//! the others use.

mod audit;
mod edit;
mod enroll;
mod export;
mod faces;
mod identify;
mod list;
mod restore;
mod shared;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use audit::AuditCommand;
use edit::EditArgs;
use enroll::EnrollArgs;
use export::ExportArgs;
use identify::IdentifyArgs;
use restore::StateDirArg;
use shared::Fail;

#[derive(Parser)]
#[command(
    name = "faceveil",
    version,
    about = "Manage faceveil watch lists: encrypted descriptors, never photos"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Watch-list file [default: $FACEVEIL_WATCHLIST, else ./watchlist.fvl]
    #[arg(
        long,
        global = true,
        env = "FACEVEIL_WATCHLIST",
        default_value = "watchlist.fvl"
    )]
    list: PathBuf,
    /// Key file [default: $FACEVEIL_KEY (64 hex digits) when set, else <list>.key]
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Protect the list with a passphrase read from this environment variable instead of a key
    #[arg(long, global = true, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Unencrypted list (not recommended; prints a warning)
    #[arg(long, global = true)]
    plaintext: bool,
    /// Embedder model: a file, or the name of one in the model dirs (dlib_resnet-int8.onnx).
    /// enroll takes it several times [default: sface.onnx from $FACEVEIL_MODEL_DIR or the
    /// installed data dir; enroll: every embedder model installed there]
    #[arg(long, global = true, value_name = "MODEL")]
    model: Vec<PathBuf>,
    /// Seconds a writer waits for another writer's lock before it gives up (exit code 10)
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    wait: u64,
    /// Accept a new passphrase shorter than 12 characters
    #[arg(long, global = true)]
    weak_passphrase: bool,
    /// Audit log that every change of the list is appended to [default: <list>.audit]
    #[arg(long, global = true, env = "FACEVEIL_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Start a new audit log (the old file is kept, renamed aside) instead of refusing to write
    /// after a gap
    #[arg(long, global = true)]
    new_audit_log: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new, empty watch list and its key file (mode 0600). Over a list (--force), or
    /// after one was deleted, it is a generation above the old one, which running matchers take
    Init {
        /// Replace an existing list (and key file)
        #[arg(long)]
        force: bool,
        /// Retention: people enrolled without --expires or --no-expiry expire this long after
        /// enrolment (e.g. 90d, 12w)
        #[arg(long, value_name = "DURATION")]
        default_expiry: Option<String>,
        #[command(flatten)]
        state_dir: StateDirArg,
    },
    /// Add a person from photos or videos (any format decodebin reads), with descriptors of every
    /// installed embedder model (or of each --model); with --known, a known person who is never
    /// alerted on. Enrolling someone already on the list again adds to their descriptors: how a
    /// list gains a model
    Enroll(EnrollArgs),
    /// For each face in photos or videos: the best identity on the list, its score, the margin to
    /// the second best, the known person it is closest to when they hold it back, and whether the
    /// faceveil element would count it as a match
    Identify(IdentifyArgs),
    /// Change a person's label, note, expiry or role (listed or known), without a photo (audited)
    Edit(EditArgs),
    /// Stop alerts for a person: they stay on the list but never match until resumed (a known
    /// person: faces are no longer held back for them) (audited)
    Suspend {
        /// The person: their identity id, or their label
        #[arg(long, value_name = "ID|LABEL")]
        identity: String,
    },
    /// Restart alerts for a suspended person (audited)
    Resume {
        /// The person: their identity id, or their label
        #[arg(long, value_name = "ID|LABEL")]
        identity: String,
    },
    /// Everything held about one person, as one JSON document (an access request): their entry
    /// (never descriptor values), the audit entries about them, their matches in events files.
    /// Audited
    Export(ExportArgs),
    /// Show who is on the list (labels, ids, counts, dates, the models of their descriptors; never
    /// descriptors)
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Remove a person. Copies of the list made before (backups) still hold them under the same
    /// key: --rekey re-encrypts the list under a new key in the same locked step, so that those
    /// copies cannot be opened with the key in use any more
    Remove {
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        label: Option<String>,
        #[arg(long)]
        id: Option<String>,
        /// Then re-encrypt under a new key (or, with --new-passphrase-env, a new passphrase)
        #[arg(long)]
        rekey: bool,
        /// With --rekey: read the new passphrase from this environment variable
        #[arg(long, value_name = "VAR", requires = "rekey")]
        new_passphrase_env: Option<String>,
    },
    /// Check the list's integrity and that the key opens it; show its generation, last write and
    /// the embedder models it covers (and that the one in use, or --model, is among them)
    Verify,
    /// Re-encrypt the list with a new key (written to the key file) or a new passphrase
    Rekey {
        /// Read the new passphrase from this environment variable instead of making a new key
        #[arg(long, value_name = "VAR")]
        new_passphrase_env: Option<String>,
    },
    /// Remove every identity whose expiry has passed
    PurgeExpired,
    /// Put a backup of the list back on purpose, as a new generation that running matchers accept
    /// (they refuse an older copy copied into place)
    Restore {
        /// The backup (a copy of the list, under the key in use)
        backup: PathBuf,
        #[command(flatten)]
        state_dir: StateDirArg,
    },
    /// The audit log: check its chain, or show it
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

fn run(cli: Cli) -> Result<(), Fail> {
    let g = &cli.global;
    match cli.command {
        Command::Init {
            force,
            default_expiry,
            state_dir,
        } => list::cmd_init(g, force, default_expiry, &state_dir),
        Command::Enroll(a) => enroll::cmd_enroll(g, a),
        Command::Identify(a) => identify::cmd_identify(g, a),
        Command::Edit(a) => edit::cmd_edit(g, a),
        Command::Suspend { identity } => edit::cmd_suspend(g, &identity, true),
        Command::Resume { identity } => edit::cmd_suspend(g, &identity, false),
        Command::Export(a) => export::cmd_export(g, a),
        Command::List { json } => list::cmd_list(g, json),
        Command::Remove {
            label,
            id,
            rekey,
            new_passphrase_env,
        } => list::cmd_remove(g, label, id, rekey, new_passphrase_env),
        Command::Verify => list::cmd_verify(g),
        Command::Rekey { new_passphrase_env } => list::cmd_rekey(g, new_passphrase_env),
        Command::PurgeExpired => list::cmd_purge_expired(g),
        Command::Restore { backup, state_dir } => restore::cmd_restore(g, &backup, &state_dir),
        Command::Audit(a) => audit::cmd_audit(g, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "faceveil",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // Before any thread exists (ONNX Runtime is loaded later, by the elements).
    gstfaceveil::engine::runtime::disable_telemetry();
    // `faceveil list | head -1`: a closed pipe ends the command quietly, as it does any Unix tool,
    // instead of a panic in println! (Rust ignores SIGPIPE by default).
    // SAFETY: restoring the default disposition of a signal, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    if let Err(e) = gst::init()
        .map_err(|e| e.to_string())
        .and_then(|_| gstfaceveil::plugin_register_static().map_err(|e| e.to_string()))
    {
        eprintln!("faceveil: GStreamer: {e}");
        return ExitCode::from(1);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            eprintln!("faceveil: {msg}");
            ExitCode::from(code as u8)
        }
    }
}
