//! SIGINT, SIGTERM and SIGHUP: remove every temporary file, then exit with
//! 128 + the signal's number (130, 143, 129), as a shell does.
//!
//! Why a thread that waits with `sigwait` rather than a signal handler: the
//! signals are blocked in every thread (the mask is set here, first thing
//! in `main`, and every thread started later inherits it), and one thread
//! takes them synchronously. The cleanup then runs as ordinary code (it
//! takes a lock, removes files, prints), which a handler could not do
//! safely. Child processes get an empty mask back (the standard library
//! resets it when it spawns one).
//!
//! Elsewhere than Unix, Ctrl-C ends the process at once; the temporary
//! files it leaves are named `.sigstream-<pid>-*.tmp` (see the README).

/// Blocks the signals in this thread (and so in every thread started after
/// it) and starts the thread that takes them. Call it before any other
/// thread starts.
#[cfg(unix)]
pub fn install() {
    use std::mem::MaybeUninit;

    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` is initialised by sigemptyset before it is read, and
    // the calls only read and write the set we own; pthread_sigmask only
    // changes this thread's mask.
    let set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for sig in SIGNALS {
            libc::sigaddset(set.as_mut_ptr(), sig);
        }
        let set = set.assume_init();
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            // Not blocked: the signals keep their default action.
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("sigstream-signals".into())
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid signal set and `sig` a valid out
            // pointer; sigwait blocks until one of the set is pending.
            while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
            let removed = sigstream::sink::abandon_all();
            let name = match sig {
                libc::SIGINT => "SIGINT",
                libc::SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            let files = if removed == 1 { "file" } else { "files" };
            eprintln!("sigstream: interrupted ({name}): removed {removed} temporary {files}; no output was written");
            // SAFETY: _exit ends the process at once, without running
            // atexit handlers or destructors that other threads (a GPU
            // driver's among them) may be using at this moment.
            unsafe { libc::_exit(128 + sig) }
        });
    if spawned.is_err() {
        // No thread to take them: give the signals back their default action.
        // SAFETY: as above; unblocking only changes this thread's mask.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// Nothing to install elsewhere.
#[cfg(not(unix))]
pub fn install() {}
