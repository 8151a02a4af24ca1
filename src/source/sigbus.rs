//! A file that shrinks while it is mapped must not kill the process.
//!
//! Why this exists: touching a mapped page past the end of a file that
//! another process has just truncated raises SIGBUS, whose default action
//! ends the process at once: no message, no report, temporary files left
//! behind. Checking the file's size before each window is mapped catches
//! almost every case, but not a truncation between the check and the copy.
//!
//! So each window is registered here ([`Guard`]) while it is read, and a
//! SIGBUS handler, installed once, looks the faulting address up: inside a
//! registered window, it maps a page of zeros over the vanished page (so
//! the copy completes, with zeros) and marks the window; the reader then
//! sees the mark and reports the shrunken file as an error (see
//! `mmap.rs`). A fault anywhere else goes to the handler that was there
//! before (the standard library's stack-overflow handler), or to the
//! default action.
//!
//! The handler does only what is safe in one: atomic loads and stores and
//! one `mmap` system call. Supported on Linux, Android and macOS (where the
//! fault address is known); elsewhere no guard is taken and the size check
//! alone applies.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// How many windows may be guarded at once (one per reader thread is
/// enough; a reader that finds no free slot reads with `pread` instead).
const SLOTS: usize = 64;

/// One registered window: `[start, end)` of its mapped bytes.
struct Slot {
    /// Claimed by a guard.
    taken: AtomicBool,
    /// Whether the handler should look at it (set once start/end are).
    active: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    /// A fault was repaired in it.
    faulted: AtomicBool,
}

#[expect(
    clippy::declare_interior_mutable_const,
    reason = "only used to initialise the static array below"
)]
const FREE: Slot = Slot {
    taken: AtomicBool::new(false),
    active: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
/// Whether the handler is in place.
static INSTALLED: AtomicBool = AtomicBool::new(false);
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// The action that was in place before ours (leaked, written once).
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());

/// A registered window; dropping it unregisters the window.
#[derive(Debug)]
pub(super) struct Guard {
    slot: usize,
}

impl Guard {
    /// Registers the `len` mapped bytes at `ptr`, installing the handler on
    /// first use. `None` when no guard can be taken (unsupported platform,
    /// no free slot): the caller then must not touch the map.
    pub(super) fn new(ptr: *const u8, len: usize) -> Option<Guard> {
        if !install() {
            return None;
        }
        let slot = TABLE.iter().position(|s| {
            s.taken
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })?;
        let s = &TABLE[slot];
        s.start.store(ptr as usize, Ordering::Relaxed);
        s.end.store(ptr as usize + len, Ordering::Relaxed);
        s.faulted.store(false, Ordering::Relaxed);
        s.active.store(true, Ordering::Release);
        Some(Guard { slot })
    }

    /// Whether part of the window vanished (and was read as zeros).
    pub(super) fn faulted(&self) -> bool {
        TABLE[self.slot].faulted.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        s.active.store(false, Ordering::Release);
        s.taken.store(false, Ordering::Release);
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
fn install() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else {
            return;
        };
        if !page.is_power_of_two() {
            return;
        }
        PAGE.store(page, Ordering::Relaxed);
        // SAFETY: both sigaction structs are valid for the calls (zeroed is
        // a valid sigaction: empty mask, no flags); the previous action is
        // stored (leaked, so it lives for ever) before ours can run; our
        // handler has the SA_SIGINFO signature.
        unsafe {
            let previous: &'static mut libc::sigaction = Box::leak(Box::new(std::mem::zeroed()));
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), previous) != 0 {
                return;
            }
            PREVIOUS.store(previous, Ordering::Release);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    INSTALLED.load(Ordering::Acquire)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
fn install() -> bool {
    let _ = (&INSTALL, &PAGE, &PREVIOUS);
    false
}

#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    // SAFETY: the kernel passes a valid siginfo for SIGBUS, which carries
    // the faulting address.
    unsafe { (*info).si_addr() as usize }
}

#[cfg(target_os = "macos")]
unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    // SAFETY: as above.
    unsafe { (*info).si_addr as usize }
}

/// The SIGBUS handler (see the module docs).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: called by the kernel with a valid siginfo.
    let addr = unsafe { fault_address(info) };
    let page = PAGE.load(Ordering::Relaxed);
    for s in &TABLE {
        if !s.active.load(Ordering::Acquire) {
            continue;
        }
        let (start, end) = (
            s.start.load(Ordering::Relaxed),
            s.end.load(Ordering::Relaxed),
        );
        if addr < start || addr >= end {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at` is a page inside a window this process mapped
        // read-only and still holds (the guard outlives every access to
        // it); replacing that page with a private page of zeros changes
        // nothing else. mmap is a plain system call, safe in a handler.
        let mapped = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            s.faulted.store(true, Ordering::Release);
            // Returning retries the read, which now finds zeros.
            return;
        }
    }
    // Not ours: what was there before.
    let previous = PREVIOUS.load(Ordering::Acquire);
    // SAFETY: `previous` was stored before this handler was installed and
    // is never freed; calling the previous handler with the arguments we
    // got is what the kernel would have done; resetting to the default
    // action and returning makes the fault happen again, fatally, as it
    // would have without us.
    unsafe {
        let prev = &*previous;
        let handler = prev.sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

#[cfg(all(
    test,
    any(target_os = "linux", target_os = "android", target_os = "macos")
))]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_window_truncated_under_us_reads_as_zeros_and_is_marked() {
        let page = 4096 * 4;
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&vec![7u8; 3 * page]).unwrap();
        // SAFETY: the test owns the file; the truncation below is the point.
        let map = unsafe { memmap2::MmapOptions::new().len(3 * page).map(tmp.as_file()) }.unwrap();
        let guard = Guard::new(map.as_ptr(), map.len()).expect("a guard on this platform");
        assert!(!guard.faulted());
        tmp.as_file().set_len(page as u64).unwrap();
        // The first page is still the file's; the rest vanished: without
        // the guard, reading it kills the test with SIGBUS.
        let sum: u64 = map.iter().map(|&b| u64::from(b)).sum();
        assert!(guard.faulted());
        assert_eq!(sum, 7 * page as u64, "only the first page still holds data");
        drop(guard);
        // A second window, untouched by any truncation, is not marked.
        // SAFETY: as above, within the file's new length.
        let map2 = unsafe { memmap2::MmapOptions::new().len(page).map(tmp.as_file()) }.unwrap();
        let guard2 = Guard::new(map2.as_ptr(), map2.len()).unwrap();
        assert_eq!(map2.iter().filter(|&&b| b == 7).count(), page);
        assert!(!guard2.faulted());
    }
}
